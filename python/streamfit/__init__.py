"""streamfit: mini-batch gradient descent on Parquet datasets larger than RAM.

`Loader` streams Parquet files (or a streamfit shard dataset) through streamfit's bounded,
deterministic, resumable pipeline and yields numpy batches ready for PyTorch; `train` runs
the command line's trainer; `load_model` reads a saved model; `generate` writes a demo
dataset. See docs/python.md and the stub file `__init__.pyi` for every argument.
"""

from __future__ import annotations

from typing import Any, Dict, List, Union

import numpy as np

from ._streamfit import DataError, Loader, generate, train
from ._streamfit import Model as _RustModel
from ._streamfit import load_model as _load_model

__all__ = ["DataError", "Loader", "Model", "generate", "load_model", "train"]


class Model:
    """A model saved by `train(save_model=...)` or `streamfit train --save-model`."""

    def __init__(self, inner: _RustModel) -> None:
        self._inner = inner
        # Large-magnitude columns training centred in f64 before the f32 cast (versions 5 and
        # 6); a version-6 model standardises the features itself, in predict_features.
        standardization = inner.to_dict().get("standardization") or {}
        self._centre = {c["column"]: c["value"] for c in standardization.get("centre", [])}

    @property
    def kind(self) -> str:
        return self._inner.kind

    @property
    def feature_names(self) -> List[str]:
        return self._inner.feature_names

    @property
    def label(self) -> str:
        return self._inner.label

    @property
    def weights(self) -> np.ndarray:
        return self._inner.weights

    @property
    def bias(self) -> Union[float, None]:
        return self._inner.bias

    def to_dict(self) -> Dict[str, Any]:
        return self._inner.to_dict()

    def predict_features(self, x: Any) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        return self._inner.predict_features(x)

    def predict(self, table: Any) -> np.ndarray:
        return self.predict_features(_feature_matrix(table, self.feature_names, self._centre))

    def __repr__(self) -> str:
        return repr(self._inner)


def load_model(path: Any) -> Model:
    return Model(_load_model(path))


def _column(table: Any, name: str) -> np.ndarray:
    column = table[name]
    if hasattr(column, "to_numpy"):
        try:
            values = column.to_numpy()
        except TypeError:  # a pyarrow column with nulls: nulls become NaN, refused below
            values = column.to_numpy(zero_copy_only=False)
    else:
        values = np.asarray(column)
    return values


def _has(table: Any, name: str) -> bool:
    names = getattr(table, "column_names", None)
    if names is None:
        names = list(getattr(table, "columns", []))
    return name in names


def _feature_matrix(
    table: Any, names: List[str], centre: Union[Dict[str, float], None] = None
) -> np.ndarray:
    """The model's feature columns of `table`, by name, as a float32 (rows, features) array.

    Scalar features are taken column by column; features named `NAME[i]` come from the list
    column `NAME` when the table has no column `NAME[i]`. A column in `centre` has its centre
    subtracted in float64, before the float32 cast (as training decoded it).
    """
    centre = centre or {}
    parts: List[np.ndarray] = []
    i = 0
    while i < len(names):
        name = names[i]
        if not _has(table, name) and name.endswith("]") and "[" in name:
            base = name[: name.index("[")]
            width = 0
            while i + width < len(names) and names[i + width].startswith(base + "["):
                width += 1
            if not _has(table, base):
                raise KeyError(f"the table has no column `{name}` or list column `{base}`")
            values = _column(table, base)
            rows = [np.asarray(v, dtype=np.float32) for v in values]
            block = np.stack(rows) if rows else np.zeros((0, width), dtype=np.float32)
            if block.ndim != 2 or block.shape[1] != width:
                raise DataError(f"column `{base}`: the model takes lists of {width} values")
            parts.append(block)
            i += width
            continue
        if not _has(table, name):
            raise KeyError(f"the table has no column `{name}` (the model's features: {', '.join(names)})")
        if name in centre:
            values = (np.asarray(_column(table, name), dtype=np.float64) - centre[name]).astype(
                np.float32
            )
        else:
            values = np.asarray(_column(table, name), dtype=np.float32)
        parts.append(values.reshape(-1, 1))
        i += 1
    x = np.ascontiguousarray(np.hstack(parts), dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"row {row}, column `{names[col]}`: value {x[row, col]} is null or not finite"
        )
    return x
