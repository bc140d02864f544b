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
        # The table's raw columns go through the command line's decoder, with the model's
        # preprocessing (casts, fills, indicators, categorical encodings, centres,
        # standardisation), from a temporary Parquet file: exactly what `streamfit predict`
        # computes for the same rows.
        import os
        import tempfile

        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(table, pa.Table):
            if hasattr(table, "to_arrow"):  # e.g. a polars DataFrame
                table = table.to_arrow()
            elif hasattr(table, "columns") and hasattr(table, "dtypes"):  # pandas
                table = pa.Table.from_pandas(table, preserve_index=False)
            else:
                table = pa.table(table)
        with tempfile.TemporaryDirectory(prefix="streamfit-predict-") as directory:
            path = os.path.join(directory, "rows.parquet")
            pq.write_table(table, path)
            try:
                return self._inner.predict_parquet([path])
            except ValueError as e:  # DataError too: name the table, not the temporary file
                raise type(e)(str(e).replace(path, "the table")) from None

    def __repr__(self) -> str:
        return repr(self._inner)


def load_model(path: Any) -> Model:
    return Model(_load_model(path))
