"""streamfit.train, load_model, Model.predict and generate agree with the command line."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streamfit


MEASURED = ("seconds", "rows_per_s", "stall", "peak_rss", "queue_", "profile")


def without_measurements(report):
    """The report less what is measured (times, rates, memory): what a run determines."""
    if isinstance(report, dict):
        return {k: without_measurements(v) for k, v in report.items()
                if not any(m in k for m in MEASURED)}
    if isinstance(report, list):
        return [without_measurements(v) for v in report]
    return report


def test_train_returns_the_report_and_saves_the_model_the_cli_saves(dataset, cli, tmp_path):
    options = dict(batch_size=100, epochs=2, lr=0.5, seed=4, shuffle_buffer=800, threads=1,
                   features=["f1", "f2"])
    report = streamfit.train(dataset, save_model=tmp_path / "py.json", report=tmp_path / "py-report.json",
                             **options)
    cli("train", dataset, "--batch-size", 100, "--epochs", 2, "--lr", 0.5, "--seed", 4,
        "--shuffle-buffer", 800, "--threads", 1, "--features", "f1,f2", "-q",
        "--save-model", tmp_path / "cli.json", "--report", tmp_path / "cli-report.json")
    cli_report = json.loads((tmp_path / "cli-report.json").read_text())
    assert report == json.loads((tmp_path / "py-report.json").read_text())
    assert report["iterations"] == cli_report["iterations"] == 100  # 2 × ceil(5000 / 100)
    assert without_measurements(report) == without_measurements(cli_report)
    py_model = json.loads((tmp_path / "py.json").read_text())
    cli_model = json.loads((tmp_path / "cli.json").read_text())
    assert py_model["weights"] == cli_model["weights"] and py_model["bias"] == cli_model["bias"]

    model = streamfit.load_model(tmp_path / "py.json")
    assert model.kind == "logistic" and model.feature_names == ["f1", "f2"]
    np.testing.assert_array_equal(model.weights, np.array(cli_model["weights"], dtype=np.float32))


def test_validation_options_and_the_full_loss_match_the_command_line(dataset, cli, tmp_path):
    options = dict(batch_size=100, epochs=2, seed=3, threads=1, valid_fraction=0.5,
                   eval_every=20, early_stop=3, full_loss=True)
    report = streamfit.train(dataset, save_model=tmp_path / "py.json", **options)
    cli("train", dataset, "--batch-size", 100, "--epochs", 2, "--seed", 3, "--threads", 1,
        "--valid-fraction", 0.5, "--eval-every", 20, "--early-stop", 3, "--full-loss", "-q",
        "--save-model", tmp_path / "cli.json", "--report", tmp_path / "cli-report.json")
    cli_report = json.loads((tmp_path / "cli-report.json").read_text())
    assert without_measurements(report) == without_measurements(cli_report)
    assert report["held_out"]["rows"] + report["rows_per_epoch"] == 5000
    assert "full_loss" in report and "train_loss" in report
    assert (json.loads((tmp_path / "py.json").read_text())["weights"]
            == json.loads((tmp_path / "cli.json").read_text())["weights"])


def test_predict_agrees_with_the_command_line(dataset, cli, tmp_path):
    streamfit.train(dataset, batch_size=64, epochs=1, standardize=True, save_model=tmp_path / "m.json")
    cli("predict", "--model", tmp_path / "m.json", dataset / "part-1.parquet", "--out", tmp_path / "p.parquet", "-q")
    expected = pq.read_table(tmp_path / "p.parquet")["probability"].to_numpy()
    table = pq.read_table(dataset / "part-1.parquet")
    model = streamfit.load_model(tmp_path / "m.json")
    np.testing.assert_allclose(model.predict(table), expected, rtol=1e-6, atol=1e-7)
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    else:
        np.testing.assert_allclose(model.predict(table.to_pandas()), expected, rtol=1e-6, atol=1e-7)
    x = np.stack([table[n].to_numpy() for n in model.feature_names], axis=1)
    np.testing.assert_array_equal(model.predict_features(x), model.predict(table))
    # Format 6: the weights are stored as learned and apply to the standardised features.
    saved = model.to_dict()
    assert saved["version"] == 6
    mean, std = (np.asarray(saved["standardization"][k], np.float32).astype(np.float64)
                 for k in ("mean", "std"))
    z = (x.astype(np.float64) - mean) / std @ model.weights.astype(np.float64) + model.bias
    np.testing.assert_allclose(1 / (1 + np.exp(-z)), expected, rtol=0, atol=1e-6)


def test_predict_refuses_a_table_without_the_features(dataset, tmp_path):
    streamfit.train(dataset, epochs=1, no_eval=True, save_model=tmp_path / "m.json")
    model = streamfit.load_model(tmp_path / "m.json")
    table = pq.read_table(dataset / "part-0.parquet").drop_columns(["f1"])
    with pytest.raises(streamfit.DataError, match="the table: column `f1` not found") as error:
        model.predict(table)
    assert "streamfit-predict-" not in str(error.value)


def test_predict_applies_fills_indicators_categories_and_centres_as_the_command_line(cli, tmp_path):
    # A raw table: a float with NaN, a string column with nulls, a timestamp far from zero.
    rng = np.random.default_rng(0)
    n = 2000
    city = rng.choice(np.array(["Paris", "Lyon", "Nice", None], dtype=object), n)
    x = rng.normal(size=n)
    label = (x + (city == "Paris") + rng.normal(size=n) * 0.5 > 0.5).astype(np.float32)
    x[::17] = np.nan
    seconds = (1.7e9 + rng.integers(0, 1000, n)).astype(np.int64)
    table = pa.table({
        "x": x,
        "city": city,
        "ts": pa.array(seconds * 1_000_000, pa.timestamp("us", tz="UTC")),
        "label": label,
    })
    data = tmp_path / "t.parquet"
    pq.write_table(table, data)
    streamfit.train(data, epochs=2, categorical="auto", fill_nulls="mean", null_indicators=True,
                    standardize=True, save_model=tmp_path / "m.json")
    model = streamfit.load_model(tmp_path / "m.json")
    assert "city=Paris" in model.feature_names and "x_is_null" in model.feature_names
    cli("predict", "--model", tmp_path / "m.json", data, "--out", tmp_path / "p.parquet")
    expected = pq.read_table(tmp_path / "p.parquet").column("probability").to_numpy()
    np.testing.assert_array_equal(model.predict(table), expected)
    np.testing.assert_array_equal(model.predict(table.to_pandas()), expected)
    # The label is not needed.
    np.testing.assert_array_equal(model.predict(table.drop_columns(["label"])), expected)


def test_train_errors_name_options_as_keyword_arguments(dataset):
    with pytest.raises(TypeError, match="'learning_rate'"):
        streamfit.train(dataset, learning_rate=0.1)
    with pytest.raises(ValueError, match="invalid checkpoint_every: needs checkpoint_dir"):
        streamfit.train(dataset, checkpoint_every=10)
    with pytest.raises(ValueError, match="invalid model: `tree`"):
        streamfit.train(dataset, model="tree")


def test_generate_writes_the_dataset_the_cli_writes(cli, tmp_path):
    streamfit.generate(tmp_path / "py", rows=3000, features=4, shards=2, row_group_rows=500, seed=9)
    cli("generate", "--out", tmp_path / "cli", "--rows", 3000, "--features", 4, "--shards", 2,
        "--row-group-rows", 500, "--seed", 9, "-q")
    for name in ["part-00000.parquet", "part-00001.parquet", "truth.json"]:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    loader = streamfit.Loader(tmp_path / "py", batch_size=1000)
    assert loader.num_rows == 3000 and len(loader) == 3
