"""PyTorch with streamfit.Loader: batches shared with tensors, the loader's state saved beside
the model's, ranks taken from torch.distributed. Run when torch is importable (CI does not
install it)."""

import json
import subprocess
import sys

import pytest

import streamfit

torch = pytest.importorskip("torch")


def epoch_ids(loader):
    """The row ids of each batch of one epoch."""
    return [ids.tolist() for _, _, ids in loader]


def test_torch_from_numpy_shares_the_batch_and_trains(dataset):
    loader = streamfit.Loader(dataset, batch_size=128, shuffle_buffer=600, features=["f1", "f2"])
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for x, y in loader:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        assert xt.data_ptr() == x.__array_interface__["data"][0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xt).squeeze(1), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5


def test_a_state_saved_by_torch_next_to_the_model_resumes_exactly(dataset, tmp_path):
    # docs/python.md's checkpoint: torch.save of the loader's state_dict beside the model's,
    # read back by torch.load with its default (weights_only) unpickler.
    options = dict(batch_size=64, shuffle_buffer=600, seed=2, return_ids=True)
    loader = streamfit.Loader(dataset, **options)
    it = iter(loader)
    head = [next(it)[2].tolist() for _ in range(30)]
    torch.save({"model": torch.nn.Linear(3, 1).state_dict(), "loader": loader.state_dict()},
               tmp_path / "ckpt.pt")
    resumed = streamfit.Loader(dataset, **options)
    resumed.load_state_dict(torch.load(tmp_path / "ckpt.pt")["loader"])
    assert head + epoch_ids(resumed) == epoch_ids(streamfit.Loader(dataset, **options))


RANK_CHILD = """
import json, sys
import torch.distributed as dist
import streamfit

data, rendezvous, rank, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
dist.init_process_group("gloo", init_method="file://" + rendezvous, rank=rank, world_size=2)
loader = streamfit.Loader(data, batch_size=40, shuffle_buffer=500, return_ids=True)
with open(out, "w") as f:
    json.dump([ids.tolist() for _, _, ids in loader], f)
dist.destroy_process_group()
"""


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")
def test_rank_and_world_size_come_from_an_initialised_torch_distributed(dataset, tmp_path):
    children = [subprocess.Popen([sys.executable, "-c", RANK_CHILD, str(dataset),
                                  str(tmp_path / "rendezvous"), str(rank),
                                  str(tmp_path / f"rank-{rank}.json")],
                                 stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    try:
        for child in children:
            # A guard only: a rank whose peer failed waits at the rendezvous for good.
            _, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
    finally:
        for child in children:
            child.kill()
    for rank in (0, 1):
        explicit = streamfit.Loader(dataset, batch_size=40, shuffle_buffer=500, rank=rank,
                                    world_size=2, return_ids=True)
        assert json.loads((tmp_path / f"rank-{rank}.json").read_text()) == epoch_ids(explicit)
