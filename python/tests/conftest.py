"""Shared fixtures: small Parquet datasets written with pyarrow, and the command-line binary."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]


def write_rows(path, first_id, rows, features=3, row_group_rows=700, seed=0):
    """Rows whose feature `f0` is the row's global id (its position in file order), so a batch
    names its rows; `f1`, `f2` are seeded noise, `label` a 0/1 label from them."""
    rng = np.random.default_rng(seed + first_id)
    ids = np.arange(first_id, first_id + rows, dtype=np.float32)
    columns = {"f0": ids}
    for j in range(1, features):
        columns[f"f{j}"] = rng.standard_normal(rows).astype(np.float32)
    columns["label"] = (columns[f"f{features - 1}"] > 0).astype(np.float32)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_rows, use_dictionary=False)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """5,000 rows × 3 features in 3 files of uneven size, row groups of 700 rows."""
    root = tmp_path_factory.mktemp("data")
    first = 0
    for i, rows in enumerate([2100, 1500, 1400]):
        write_rows(root / f"part-{i}.parquet", first, rows)
        first += rows
    return root


@pytest.fixture(scope="session")
def big_dataset(tmp_path_factory):
    """200,000 rows × 3 features in 2 files: more than the pipeline holds, so its threads are
    still running when a consumer stops early."""
    root = tmp_path_factory.mktemp("big")
    write_rows(root / "part-0.parquet", 0, 100_000, row_group_rows=10_000)
    write_rows(root / "part-1.parquet", 100_000, 100_000, row_group_rows=10_000)
    return root


@pytest.fixture(scope="session")
def slow_dataset(tmp_path_factory):
    """100,000 rows in row groups of 10 rows, listed twice (the second file a symlink to the
    first): 20,000 row groups that cost the pipeline about 50 µs each, so a shuffle buffer of
    all 200,000 rows keeps the first `next()` of an epoch waiting for about a second."""
    root = tmp_path_factory.mktemp("slow")
    write_rows(root / "part-0.parquet", 0, 100_000, row_group_rows=10)
    os.symlink("part-0.parquet", root / "part-1.parquet")
    return root


def cli_binary():
    """The `streamfit` binary built by `cargo build --release` (or $STREAMFIT_BIN)."""
    candidates = [os.environ.get("STREAMFIT_BIN")]
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        candidates.append(os.path.join(target, "release", "streamfit"))
    candidates.append(str(REPO / "target" / "release" / "streamfit"))
    candidates.append(shutil.which("streamfit"))
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


@pytest.fixture(scope="session")
def cli():
    """Runs the command line; skips the test when the binary has not been built."""
    binary = cli_binary()
    if binary is None:
        pytest.skip("the streamfit binary is not built (cargo build --release)")

    def run(*args):
        done = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done

    return run
