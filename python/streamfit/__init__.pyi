"""streamfit: mini-batch gradient descent on Parquet datasets larger than RAM.

`Loader` streams Parquet files (or a streamfit shard dataset) through streamfit's bounded,
deterministic, resumable pipeline and yields numpy batches ready for PyTorch; `train` runs the
command line's trainer; `load_model` reads a saved model; `generate` writes a demo dataset.
"""

import os
import pathlib
from typing import Any, Dict, Iterator, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "os.PathLike[str]"]
_Paths = Union[_Path, Sequence[_Path]]

__all__ = ["DataError", "Loader", "Model", "generate", "load_model", "train"]

class DataError(ValueError):
    """The data cannot be used: a corrupt or changed file, a schema mismatch, a missing
    column, a null or non-finite value, a refused label. The message names the file (and the
    row group, row and column where known). I/O failures are `OSError` instead, a bad option
    value `ValueError`, an unknown option `TypeError`."""

class Loader:
    """streamfit's pipeline as an iterator of batches.

    Iterating yields one epoch of `(x, y)`, or `(x, y, ids)` with `return_ids=True`:
    `x` float32 `(rows, features)` C-contiguous, `y` float32 `(rows,)`, `ids` int64 `(rows,)`,
    each row's global id (its position in the dataset, files in the order given, rows in file
    order). The batches are exactly those `streamfit train` trains on with the same settings.
    Each new `iter()` starts the next epoch (the first is `epoch`), unless `set_epoch` or
    `load_state_dict` was called since.

    Lifetime: every batch is a fresh set of arrays that owns its memory; nothing the loader
    does later changes a batch you keep, and `torch.from_numpy(x)` shares it without a copy.

    Memory is bounded by the settings (shuffle buffer, prefetch, readers), not by the data.
    The readers and the shuffle run on Rust threads and the GIL is released while `__next__`
    waits, so a Python training step overlaps with loading. Ctrl-C raises KeyboardInterrupt
    out of a waiting `__next__` (it checks every 50 ms) without losing the batch: the next
    call yields it.
    Breaking out of a loop leaves the epoch's threads waiting until the next `iter()`,
    `close()` or the loader's deletion, which stop and join them.

    Args:
        paths: Parquet files and/or directories of them (files ending in `.parquet`/`.parq`,
            sorted by name), or one shard dataset directory (`streamfit convert`).
        batch_size: rows per batch (an int, or `"full"`: one batch of all rows). Per rank
            when `world_size > 1`, as in a PyTorch `DataLoader`.
        features: feature columns, in order (default: every numeric or boolean column but
            the label).
        label: the label column.
        shuffle_buffer: rows held by the shuffle buffer (memory: rows × (4·features + 12) B).
        shuffle_lanes: independent reservoirs the shuffle buffer is split into, run on up to
            that many threads; part of the batch order (1 keeps the one-buffer order).
        prefetch: batches prepared ahead of the consumer.
        readers: reader (decoder) threads; the batches do not depend on it.
        seed: seed of the unit order and the shuffle buffer.
        drop_last: drop the last partial batch of each epoch.
        epoch: the first epoch iterated (from 0; `streamfit train`'s epoch 1 is epoch 0).
        return_ids: also yield each row's global id.
        rank, world_size: this rank's share of a data-parallel run, the share the MPI
            trainer gives it (whole row groups, every `world_size`-th of the epoch's plan).
            Every row is seen once per epoch across ranks, and every rank yields `len()`
            batches; a rank whose share runs out first yields shorter batches, down to empty
            ones (0 rows). Default: from `torch.distributed` when it is imported and
            initialised, else one process.
        **options: other data options of `streamfit train`, by their long flag's name with
            `_`, with its default: `features_column=None` (one list column holding every
            feature), `exclude=None`, `filter=None`, `no_shuffle=False` (file order),
            `no_verify_checksums=False` (shard datasets), `read_mode="auto"` (`"map"`,
            `"read"`: the same rows either way), and for remote data (URLs)
            `fetch_ahead_bytes=67108864`, `io_retries=10`, `io_timeout=30.0` (seconds). The
            remote settings are the process's: a call giving any of them sets all three
            (the others at their defaults). `on_bad_file="error"` is the only choice (a bad
            file fails the epoch; `"skip"` is a `ValueError`); `memory_limit` is a
            `ValueError` (the trainer fits its budget to it; bound a loader's memory with
            `shuffle_buffer`, `prefetch`, `readers`, `batch_size`). Any other name is a
            `TypeError`.
    """

    def __init__(
        self,
        paths: _Paths,
        *,
        batch_size: Union[int, Literal["full"]] = 256,
        features: Optional[Sequence[str]] = None,
        label: str = "label",
        shuffle_buffer: int = 65536,
        shuffle_lanes: int = 1,
        prefetch: int = 4,
        readers: int = 2,
        seed: int = 0,
        drop_last: bool = False,
        epoch: int = 0,
        return_ids: bool = False,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        **options: Any,
    ) -> None: ...
    def __iter__(self) -> "Loader":
        """Starts the next epoch (stopping one still running) and returns the loader."""
    def __next__(self) -> Tuple[npt.NDArray[np.float32], ...]:
        """The next batch of the epoch: `(x, y)` or `(x, y, ids)`."""
    def __len__(self) -> int:
        """Batches per epoch (the same on every rank)."""
    @property
    def num_rows(self) -> int:
        """Rows of the whole dataset (every rank's)."""
    @property
    def feature_names(self) -> List[str]:
        """Feature names, in the column order of `x`."""
    @property
    def epoch(self) -> int:
        """The epoch being iterated, or else the one the next `iter()` starts."""
    def set_epoch(self, epoch: int) -> None:
        """Makes the next `iter()` start `epoch` at its first batch (as
        `DistributedSampler.set_epoch`)."""
    def state_dict(self) -> Dict[str, Any]:
        """Where the loader stands: the epoch, the batches of it already yielded, and the
        settings that shape the batch sequence. Plain picklable data; cheap to take after any
        batch."""
    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Makes the next `iter()` continue exactly where `state` stands: the rest of that
        epoch's batches, identical to what the loader that took it would have yielded (the
        shuffle buffer's rows are read again, O(shuffle_buffer) rows; nothing else is
        replayed). A state taken under other settings is refused with a `ValueError` naming
        the setting."""
    def profile(self) -> Dict[str, Any]:
        """Stage figures since the first epoch started: `stages` (each with `stage` = read,
        decode, shuffle, batch or wait, `threads`, `busy_seconds`, `share_of_wall`, `rows`,
        `rows_per_s`, `mb_per_s`), `stall_fraction` (the share of the time the consumer waited
        for a batch), the prefetch queue's occupancy, and a one-line `diagnosis`. Loaders
        iterated at the same time in one process share their reader and shuffle figures."""
    def close(self) -> None:
        """Stops the epoch being iterated and joins its threads."""

class Model:
    """A model saved by `train(save_model=...)` or `streamfit train --save-model`."""

    @property
    def kind(self) -> str:
        """`linear`, `logistic`, `softmax` or `mlp`."""
    @property
    def feature_names(self) -> List[str]:
        """The features it takes, in order."""
    @property
    def label(self) -> str:
        """The label column it was trained on."""
    @property
    def weights(self) -> npt.NDArray[np.float32]:
        """Linear and logistic: one weight per feature. Softmax and MLP: every parameter,
        layer by layer (each a row-major weight matrix `[outputs × inputs]`, then its
        biases). As stored: for a model trained standardised (format 6) they apply to the
        standardised features (x − mean) / std (`to_dict()["standardization"]`), not to raw
        ones."""
    @property
    def bias(self) -> Optional[float]:
        """The intercept of a linear or logistic model, else `None`."""
    def to_dict(self) -> Dict[str, Any]:
        """The model file's JSON as a dict."""
    def predict(self, table: Any) -> npt.NDArray[np.float32]:
        """Predictions for the rows of a pyarrow Table, pandas DataFrame (or anything with
        `to_arrow()`) of raw columns, exactly as `streamfit predict` computes them for the same
        rows: the table is written to a temporary Parquet file and decoded with the model's
        preprocessing (casts, fills and indicators, categorical encodings, f64 centring, the
        standardisation of a version-6 model). The label column need not be there. A missing
        column, or a null without a fill value, is a `DataError`. Returns the value
        (regression), the probability of class 1 (binary), or `(rows, K)` class
        probabilities. Needs pyarrow."""
    def predict_features(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Predictions for already-encoded rows `x`, `(rows, features)`, as training decoded
        them (filled, encoded, a centred column less its centre) but not standardised: a
        standardised model standardises them itself, as `predict` does."""

def load_model(path: _Path) -> Model:
    """Reads a model file."""

def train(paths: _Paths, **options: Any) -> Dict[str, Any]:
    """Runs `streamfit train` on `paths` and returns its report (the JSON `report=` writes).

    Options are the command line's long flags with `_`: `batch_size=512`, `epochs=3`,
    `model="mlp"`, `hidden=[64, 32]`, `optimizer="adam"`, `lr=0.001`, `valid=...`,
    `save_model="m.json"`, `checkpoint_dir=...`, `resume="auto"`, `standardize=True`
    (`False`: never; unset: when the features' scales are mixed, as the command line),
    `profile=True` (adds the stage table to the report), and so on; switches are booleans
    (`no_shuffle=True`, `drop_last=True`). Each epoch reports its running training loss
    (`train_loss`); `full_loss=True` adds the exact full-data pass (`full_loss`).
    Validation: `valid=...` or `valid_fraction=0.1`, `valid_rows=N`, `eval_every=STEPS`,
    `early_stop=K`. Data selection: `filter="year>=2023"`, `exclude=[...]`. Rows:
    `weight_column=None`, `class_weight="none"` (`"balanced"`). Reading and memory:
    `read_mode="auto"` (`"map"`, `"read"`), `memory_limit=None` (MB: shrink the reader
    blocks, the shuffle buffer, then the prefetch until the budget fits, as the command line
    does), `on_bad_file="error"` (`"skip"`), and for remote data `fetch_ahead_bytes=67108864`,
    `io_retries=10`, `io_timeout=30.0` (seconds; process-wide, as in `Loader`).
    `progress=False`: `True` prints progress on stderr; `quiet=True` is the command line's
    `-q` (no progress, the default here; with `progress=True` a `ValueError`). The GIL
    is released while it trains; Ctrl-C stops at the next step boundary (after writing a
    checkpoint when `checkpoint_dir` is set) and raises `KeyboardInterrupt`. Not available:
    `trace` (a `ValueError`: use the command line's `--trace`, or `profile=True`, or
    `Loader.profile()`), `debug_row_ids`.
    """

def generate(out: _Path, **options: Any) -> "pathlib.Path":
    """Writes a synthetic Parquet dataset into `out` as `streamfit generate` does (same files
    for the same options): `task` (linear, logistic, multiclass, circles, xor), `rows`,
    `features`, `shards`, `row_group_rows`, `compression` (none, snappy, zstd, lz4),
    `classes`, `seed`, `force`. Returns `out` as a `pathlib.Path`."""
