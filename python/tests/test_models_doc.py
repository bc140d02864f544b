"""docs/models.md's numpy example (docs/examples/predict_numpy.py, included verbatim) scores a raw
Parquet file as `streamfit predict` does, for every kind of model and encoding."""

import json
import re
import runpy
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO

SCRIPT = REPO / "docs" / "examples" / "predict_numpy.py"


def test_models_md_shows_the_example_script_verbatim():
    doc = (REPO / "docs" / "models.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert SCRIPT.read_text() in blocks, "docs/models.md must hold docs/examples/predict_numpy.py"


def customer_table(path, rows=3_000, seed=15):
    """A table as pandas writes one: a timestamp far from zero, a DECIMAL(12,2) price in the
    thousands, a float64 with NaN, an int64 with nulls, a string city with nulls, a dictionary
    plan, a boolean; a 0/1 label, a class id and a value from a known model over them."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2023, 11, 15, tzinfo=timezone.utc).timestamp()
    signup = (t0 + rng.uniform(0, 30 * 86_400, rows)) * 1e6
    price = np.round(rng.uniform(500, 5000, rows), 2)
    discount = np.where(rng.random(rows) < 0.1, np.nan, rng.uniform(0, 0.3, rows))
    visits = rng.poisson(4, rows).astype(float)
    visits_null = rng.random(rows) < 0.1
    cities = np.array(["Paris", "Lyon", "Nice", "Lille"])
    city = cities[rng.integers(0, 4, rows)].astype(object)
    city[rng.random(rows) < 0.05] = None
    plans = ["free", "pro", "team"]
    plan = rng.integers(0, 3, rows)
    active = rng.random(rows) < 0.5
    z = ((signup / 1e6 - t0) / 86_400 - 15) / 8 + (price - 2750) / 1300 \
        + 3 * np.nan_to_num(discount) - 0.2 * np.where(visits_null, 4, visits) + 0.8 \
        + np.where(city == "Paris", 1.0, 0.0) + 0.5 * plan + 0.3 * active
    z = z + 0.3 * rng.standard_normal(rows)
    pq.write_table(pa.table({
        "signup": pa.array(signup.astype(np.int64), pa.timestamp("us", tz="UTC")),
        "price": pa.array([Decimal(f"{p:.2f}") for p in price], pa.decimal128(12, 2)),
        "discount": pa.array(discount, pa.float64()),
        "visits": pa.array(np.where(visits_null, 0, visits).astype(np.int64), mask=visits_null),
        "city": pa.array(list(city), pa.string()),
        "plan": pa.DictionaryArray.from_arrays(pa.array(plan, pa.int32()), pa.array(plans)),
        "active": pa.array(active),
        "label": pa.array((z > 0).astype(np.int64)),
        "klass": pa.array(np.digitize(z, [-1.0, 1.0]).astype(np.int64)),
        "value": pa.array(z),
    }), path, row_group_size=1_000)


@pytest.mark.parametrize("args", [
    ["--model", "logistic", "--label", "label"],
    ["--model", "linear", "--label", "value", "--lr", "0.02"],
    ["--model", "softmax", "--classes", "3", "--label", "klass"],
    ["--model", "mlp", "--hidden", "8,4", "--activation", "tanh", "--task", "binary",
     "--label", "label", "--optimizer", "adam", "--lr", "0.01"],
    ["--model", "logistic", "--label", "label", "--hash-buckets", "16"],
], ids=["logistic", "linear", "softmax", "mlp", "hashed"])
def test_the_numpy_example_scores_as_streamfit_predict(cli, tmp_path, monkeypatch, args):
    customer_table(tmp_path / "train.parquet")
    customer_table(tmp_path / "data.parquet", rows=1_000, seed=16)
    categorical = "city,plan" if "--hash-buckets" in args else "auto"
    label = args[args.index("--label") + 1]
    others = ",".join(c for c in ["label", "klass", "value"] if c != label)
    cli("train", tmp_path / "train.parquet", "-q", "--epochs", 3, "--batch-size", 64,
        "--exclude", others, "--categorical", categorical, "--fill-nulls", "mean",
        "--null-indicators", "--standardize", "--save-model", tmp_path / "model.json", *args)
    model = json.loads((tmp_path / "model.json").read_text())
    assert model["version"] == 6 and model["standardization"]["centre"][0]["column"] == "signup"
    cli("predict", "-q", "--model", tmp_path / "model.json", tmp_path / "data.parquet",
        "--out", tmp_path / "p.parquet")
    written = pq.read_table(tmp_path / "p.parquet")
    if "probabilities" in written.column_names:
        expected = np.array(written["probabilities"].to_pylist())
    else:
        expected = written[written.column_names[0]].to_numpy()

    monkeypatch.chdir(tmp_path)  # the script reads model.json and data.parquet
    p = runpy.run_path(str(SCRIPT))["p"]
    assert p.shape == expected.shape
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-5)
