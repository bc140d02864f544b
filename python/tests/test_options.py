"""The run options that shape reading and memory, as keyword arguments of streamfit.train and
streamfit.Loader: accepted, effective, and refused with the command line's reasons."""

import json
import subprocess

import numpy as np
import pytest

import streamfit

from conftest import cli_binary
from test_train import without_measurements


def epoch_batches(loader):
    """Each batch of one epoch as (ids, x, y)."""
    return [(ids.tolist(), x.tolist(), y.tolist()) for x, y, ids in loader]


@pytest.mark.parametrize("mode", ["read", "auto"])
def test_read_mode_gives_the_batches_of_the_map(dataset, mode):
    options = dict(batch_size=64, shuffle_buffer=600, seed=2, return_ids=True)
    mapped = epoch_batches(streamfit.Loader(dataset, read_mode="map", **options))
    assert epoch_batches(streamfit.Loader(dataset, read_mode=mode, **options)) == mapped
    assert len(mapped) == 79  # ceil(5000 / 64)


def saved_weights(path):
    return json.loads(path.read_text())["weights"]


def test_read_mode_trains_the_same_model(dataset, tmp_path):
    options = dict(batch_size=100, epochs=1, seed=1, threads=1)
    mapped = streamfit.train(dataset, read_mode="map", save_model=tmp_path / "m.json", **options)
    read = streamfit.train(dataset, read_mode="READ", save_model=tmp_path / "r.json", **options)
    assert mapped["read_mode"] != read["read_mode"]
    assert saved_weights(tmp_path / "m.json") == saved_weights(tmp_path / "r.json")


def test_a_wrong_read_mode_names_the_keyword_and_the_choices(dataset):
    for call in (streamfit.Loader, streamfit.train):
        with pytest.raises(ValueError, match="invalid read_mode: `fast` is not one of auto, map, read"):
            call(dataset, read_mode="fast")
        with pytest.raises(TypeError, match="read_mode must be a str, not int"):
            call(dataset, read_mode=1)


def test_remote_options_are_accepted_and_checked_by_type(dataset):
    options = dict(fetch_ahead_bytes=1 << 20, io_retries=3, io_timeout=2.5)
    loader = streamfit.Loader(dataset, batch_size=1000, **options)
    assert sum(len(y) for _, y in loader) == 5000
    report = streamfit.train(dataset, batch_size=1000, epochs=1, **options)
    assert report["iterations"] == 5
    with pytest.raises(TypeError, match="io_timeout must be a number, not str"):
        streamfit.Loader(dataset, io_timeout="30s")
    with pytest.raises(ValueError, match="invalid io_timeout: must be a number of seconds"):
        streamfit.train(dataset, io_timeout=float("nan"))
    with pytest.raises(ValueError, match="invalid io_retries: must be at least 0"):
        streamfit.train(dataset, io_retries=-1)
    with pytest.raises(TypeError, match="fetch_ahead_bytes must be an int, not float"):
        streamfit.Loader(dataset, fetch_ahead_bytes=1.5)
    # The process's settings back at the command line's defaults.
    streamfit.Loader(dataset, fetch_ahead_bytes=64 << 20, io_retries=10, io_timeout=30)


def cli_error(*args):
    """The command line's stderr for a run that fails with exit code 2 (a bad option)."""
    binary = cli_binary()
    if binary is None:
        pytest.skip("the streamfit binary is not built (cargo build --release)")
    done = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    assert done.returncode != 0
    return done.stderr


def test_memory_limit_fits_the_run_as_the_command_line_does(big_dataset, cli, tmp_path):
    # 26 MB: the command line halves the reader blocks to 1,024 rows and the shuffle buffer to
    # 32,768 rows for this run (its "memory limit" line).
    options = dict(batch_size=1000, epochs=1, seed=5, threads=1)
    report = streamfit.train(big_dataset, memory_limit=26, save_model=tmp_path / "py.json",
                             **options)
    cli("train", big_dataset, "--batch-size", 1000, "--epochs", 1, "--seed", 5, "--threads", 1,
        "--memory-limit", 26, "-q", "--report", tmp_path / "cli.json",
        "--save-model", tmp_path / "cli.json.model")
    cli_report = json.loads((tmp_path / "cli.json").read_text())
    assert without_measurements(report) == without_measurements(cli_report)
    assert report["memory_budget_bytes"] == cli_report["memory_budget_bytes"] <= 26_000_000
    assert saved_weights(tmp_path / "py.json") == saved_weights(tmp_path / "cli.json.model")
    unlimited = streamfit.train(big_dataset, **options)
    assert unlimited["memory_budget_bytes"] > 26_000_000


def test_a_memory_limit_too_small_raises_the_command_lines_reason(dataset):
    with pytest.raises(ValueError) as raised:
        streamfit.train(dataset, memory_limit=10, threads=1)
    message = str(raised.value)
    assert message.startswith("invalid memory_limit: 10.0 MB cannot hold this run")
    cli = cli_error("train", dataset, "--memory-limit", 10, "--threads", 1, "-q")
    assert cli.strip() == ("error: " + message).replace("memory_limit", "--memory-limit") \
        .replace("batch_size", "--batch-size").replace("readers", "--readers")
    with pytest.raises(ValueError, match="invalid memory_limit: must be at least 1"):
        streamfit.train(dataset, memory_limit=0)


def test_the_loader_refuses_memory_limit_and_skipping_bad_files_with_the_reason(dataset):
    with pytest.raises(ValueError, match="memory_limit: a Loader does not fit itself"):
        streamfit.Loader(dataset, memory_limit=100)
    with pytest.raises(ValueError, match="on_bad_file: a Loader supports only \"error\""):
        streamfit.Loader(dataset, on_bad_file="skip")
    with pytest.raises(ValueError, match="`ignore` is not one of error, skip"):
        streamfit.Loader(dataset, on_bad_file="ignore")
    assert len(streamfit.Loader(dataset, on_bad_file="error", batch_size=1000)) == 5


def test_trace_is_refused_with_what_to_use_instead(dataset, tmp_path):
    with pytest.raises(ValueError, match="--trace FILE.json.*profile=True.*Loader.profile"):
        streamfit.train(dataset, trace=tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()


def test_quiet_is_the_opposite_of_progress(dataset, capfd):
    report = streamfit.train(dataset, batch_size=1000, epochs=1, quiet=True)
    assert report["iterations"] == 5
    assert capfd.readouterr().err == ""
    with pytest.raises(ValueError, match="invalid quiet: cannot be combined with progress=True"):
        streamfit.train(dataset, quiet=True, progress=True)


def test_a_weight_column_of_ones_trains_the_unweighted_model(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3000, 2)).astype(np.float32)
    table = pa.table({"a": x[:, 0], "b": x[:, 1],
                      "label": (x[:, 0] + x[:, 1] > 0).astype(np.float32),
                      "w": np.ones(3000, dtype=np.float32)})
    pq.write_table(table, tmp_path / "d.parquet")
    options = dict(batch_size=100, epochs=2, seed=3, threads=1, features=["a", "b"])
    streamfit.train(tmp_path / "d.parquet", weight_column="w", save_model=tmp_path / "w.json",
                    **options)
    plain = streamfit.train(tmp_path / "d.parquet", save_model=tmp_path / "p.json", **options)
    assert saved_weights(tmp_path / "w.json") == saved_weights(tmp_path / "p.json")
    balanced = streamfit.train(tmp_path / "d.parquet", class_weight="balanced", **options)
    assert balanced["iterations"] == plain["iterations"] == 60
    with pytest.raises(ValueError, match="class_weight"):
        streamfit.train(tmp_path / "d.parquet", class_weight="heavy", **options)
