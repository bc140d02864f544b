"""streamfit.Loader: the command line's batch sequence, every row once, exact resume, batches
that never change, errors, threads joined, ranks."""

import os
import pickle

import numpy as np
import pytest

import streamfit

from conftest import write_rows


def epoch_ids(loader):
    """The row ids of each batch of one epoch."""
    return [ids.tolist() for _, _, ids in loader]


def test_batches_carry_their_rows(dataset):
    loader = streamfit.Loader(dataset, batch_size=64, shuffle_buffer=600, return_ids=True)
    assert len(loader) == 79  # ceil(5000 / 64)
    assert loader.num_rows == 5000
    assert loader.feature_names == ["f0", "f1", "f2"]
    sizes = []
    for x, y, ids in loader:
        assert x.dtype == np.float32 and y.dtype == np.float32 and ids.dtype == np.int64
        assert x.flags["C_CONTIGUOUS"] and x.shape == (len(ids), 3) and y.shape == (len(ids),)
        # f0 is each row's global id (see conftest.write_rows).
        np.testing.assert_array_equal(x[:, 0], ids.astype(np.float32))
        sizes.append(len(ids))
    assert sizes == [64] * 78 + [5000 - 78 * 64]


def test_batch_sequence_equals_the_command_lines(dataset, cli, tmp_path):
    cli("train", dataset, "--batch-size", 64, "--shuffle-buffer", 600, "--seed", 3,
        "--epochs", 2, "--no-eval", "-q", "--debug-row-ids", tmp_path)
    loader = streamfit.Loader(dataset, batch_size=64, shuffle_buffer=600, seed=3, return_ids=True)
    for epoch in (1, 2):
        lines = (tmp_path / f"rank-0-epoch-{epoch}.txt").read_text().splitlines()
        expected = [[int(v) for v in line.split()] for line in lines]
        assert epoch_ids(loader) == expected, f"epoch {epoch}"


@pytest.mark.parametrize("readers,prefetch", [(1, 1), (2, 4), (4, 2), (3, 16)])
def test_every_row_once_per_epoch_for_any_readers_and_prefetch(dataset, readers, prefetch):
    reference = epoch_ids(streamfit.Loader(dataset, batch_size=50, shuffle_buffer=900, return_ids=True))
    loader = streamfit.Loader(dataset, batch_size=50, shuffle_buffer=900, readers=readers,
                              prefetch=prefetch, return_ids=True)
    for _ in range(2):
        batches = epoch_ids(loader)
        rows = sorted(i for batch in batches for i in batch)
        assert rows == list(range(5000))
    assert epoch_ids(streamfit.Loader(dataset, batch_size=50, shuffle_buffer=900, readers=readers,
                                      prefetch=prefetch, return_ids=True)) == reference


def test_each_iteration_is_the_next_epoch_unless_set_epoch(dataset):
    loader = streamfit.Loader(dataset, batch_size=128, shuffle_buffer=600, return_ids=True)
    first, second = epoch_ids(loader), epoch_ids(loader)
    assert first != second
    loader.set_epoch(0)
    assert epoch_ids(loader) == first
    assert epoch_ids(streamfit.Loader(dataset, batch_size=128, shuffle_buffer=600, epoch=1,
                                      return_ids=True)) == second


@pytest.mark.parametrize("taken", [0, 1, 7, 40, 78, 79])
def test_resume_from_a_state_dict_equals_the_uninterrupted_epoch(dataset, taken):
    options = dict(batch_size=64, shuffle_buffer=600, seed=5, return_ids=True)
    whole = epoch_ids(streamfit.Loader(dataset, epoch=1, **options))
    loader = streamfit.Loader(dataset, **options)
    epoch_ids(loader)  # epoch 0
    it = iter(loader)  # epoch 1
    head = [next(it)[2].tolist() for _ in range(taken)]
    state = pickle.loads(pickle.dumps(loader.state_dict()))
    assert head == whole[:taken]
    resumed = streamfit.Loader(dataset, **options)
    resumed.load_state_dict(state)
    rest = epoch_ids(resumed)
    if taken == len(whole):
        # A state taken after the last batch continues with the next epoch.
        assert state["epoch"] == 2 and state["batches"] == 0
        assert rest == epoch_ids(streamfit.Loader(dataset, epoch=2, **options))
    else:
        assert rest == whole[taken:]
        # And the epoch after it follows, as it would have.
        assert epoch_ids(resumed) == epoch_ids(streamfit.Loader(dataset, epoch=2, **options))


def test_a_state_under_other_settings_is_refused(dataset):
    loader = streamfit.Loader(dataset, batch_size=64, shuffle_buffer=600)
    next(iter(loader))
    state = loader.state_dict()
    other = streamfit.Loader(dataset, batch_size=32, shuffle_buffer=600)
    with pytest.raises(ValueError, match="batch_size was 64, now 32"):
        other.load_state_dict(state)


def test_a_batch_kept_by_the_user_never_changes(dataset):
    loader = streamfit.Loader(dataset, batch_size=32, shuffle_buffer=600, prefetch=2)
    kept, copies = [], []
    for _ in range(2):
        for x, y in loader:
            kept.append((x, y))
            copies.append((x.copy(), y.copy()))
    for (x, y), (x0, y0) in zip(kept, copies):
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)
    # Each batch owns its memory.
    assert len({x.__array_interface__["data"][0] for x, _ in kept}) == len(kept)


def test_a_bad_file_raises_data_error_naming_it(dataset, tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file PAR1")
    with pytest.raises(streamfit.DataError, match="bad.parquet") as raised:
        streamfit.Loader([dataset, bad])
    assert isinstance(raised.value, ValueError)


def test_a_non_finite_value_raises_data_error_while_iterating(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.arange(3000, dtype=np.float32)
    x[2500] = np.nan
    pq.write_table(pa.table({"f0": x, "label": np.zeros(3000, dtype=np.float32)}),
                   tmp_path / "nan.parquet", row_group_size=1000)
    loader = streamfit.Loader(tmp_path, batch_size=100, shuffle_buffer=100)
    with pytest.raises(streamfit.DataError, match="nan.parquet"):
        for _ in loader:
            pass


def test_errors_name_options_as_keyword_arguments(dataset, tmp_path):
    with pytest.raises(TypeError, match="'lr', 'shuffle_bufer'"):
        streamfit.Loader(dataset, shuffle_bufer=10, lr=0.1)
    with pytest.raises(ValueError, match="invalid batch_size: must be at least 1"):
        streamfit.Loader(dataset, batch_size=0)
    with pytest.raises(ValueError, match="shuffle_buffer.*no_shuffle"):
        streamfit.Loader(dataset, shuffle_buffer=0)
    with pytest.raises(ValueError, match="invalid rank: must be less than world_size"):
        streamfit.Loader(dataset, rank=2, world_size=2)
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        streamfit.Loader(tmp_path / "missing.parquet")
    with pytest.raises(streamfit.DataError, match="nope"):
        streamfit.Loader(dataset, features=["f0", "nope"])


def threads():
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_breaking_out_and_dropping_joins_the_threads(big_dataset):
    before = threads()
    for _ in range(100):
        loader = streamfit.Loader(big_dataset, batch_size=16, shuffle_buffer=600, readers=3)
        for i, _batch in enumerate(loader):
            if i == 2:
                break
        del loader
    assert threads() == before
    loader = streamfit.Loader(big_dataset, batch_size=16, shuffle_buffer=600, readers=3)
    next(iter(loader))
    assert threads() == before + 4  # 3 readers and the shuffle thread, blocked on full queues
    loader.close()
    assert threads() == before


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_share_every_row_once_in_the_same_number_of_batches(dataset, world):
    loaders = [streamfit.Loader(dataset, batch_size=40, shuffle_buffer=500, rank=r,
                                world_size=world, return_ids=True) for r in range(world)]
    assert len({len(l) for l in loaders}) == 1
    for _ in range(2):
        shares = [epoch_ids(l) for l in loaders]
        assert all(len(s) == len(loaders[0]) for s in shares)
        rows = sorted(i for share in shares for batch in share for i in batch)
        assert rows == list(range(5000))
        assert all(len(b) <= 40 for share in shares for b in share)


def test_profile_reports_the_stages_and_the_stall(dataset):
    loader = streamfit.Loader(dataset, batch_size=64, shuffle_buffer=600)
    for _ in loader:
        pass
    profile = loader.profile()
    stages = {s["stage"]: s for s in profile["stages"]}
    assert {"read", "decode", "shuffle", "wait"} <= set(stages)
    assert stages["shuffle"]["rows"] == 5000
    assert 0.0 <= profile["stall_fraction"] <= 1.0
