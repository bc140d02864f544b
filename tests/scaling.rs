//! Automatic standardisation: raw features on mixed scales (ranges more than 100 times apart,
//! or a column centred more than 100 of its ranges from zero) are standardised by default,
//! with one line naming the columns; `--no-standardize` trains on the raw values; the
//! decision reads the footers' statistics or the first unit, whatever the reader count; 0/1
//! encoded features are left out of the check; a divergence suggests `--standardize`; a
//! timestamp far from zero is centred in f64 before the f32 cast, so its seconds are learned
//! and `predict` on the raw file applies the same centre.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampSecondArray,
};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const ROWS: usize = 4_000;

/// `small` uniform in [0, 1), `big` = 1e6 + 5e5·u with u uniform in [-1, 1); the label is 1
/// when 4·(small − 0.5) + 2·u plus noise is positive (both columns matter, on their own
/// scales), from seeded generators.
fn mixed_batch() -> RecordBatch {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(15);
    let (mut small, mut big, mut label) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROWS {
        let s: f64 = rng.random_range(0.0..1.0);
        let u: f64 = rng.random_range(-1.0..1.0);
        let noise: f64 = rng.random_range(-0.5..0.5);
        small.push(s);
        big.push(1e6 + 5e5 * u);
        label.push(i64::from(4.0 * (s - 0.5) + 2.0 * u + noise > 0.0));
    }
    RecordBatch::try_from_iter([
        ("small", Arc::new(Float64Array::from(small)) as ArrayRef),
        ("big", Arc::new(Float64Array::from(big)) as ArrayRef),
        ("label", Arc::new(Int64Array::from(label)) as ArrayRef),
    ])
    .unwrap()
}

/// Writes `batch` in row groups of 1,000 rows, with or without column statistics.
fn write(path: &Path, batch: &RecordBatch, statistics: bool) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1_000))
        .set_statistics_enabled(if statistics {
            EnabledStatistics::Chunk
        } else {
            EnabledStatistics::None
        })
        .build();
    common::write_parquet(path, batch, Some(props));
}

/// Trains a logistic model on `data` with `extra` flags; returns stdout and the model.
fn train(dir: &Path, data: &Path, extra: &[&str]) -> (String, serde_json::Value) {
    let model = dir.join("model.json");
    let mut args = vec![
        "train",
        data.to_str().unwrap(),
        "--model",
        "logistic",
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--lr",
        "0.1",
        "--save-model",
        model.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = common::run_ok(&args);
    (out.stdout, common::read_json(&model))
}

/// `eval --json` of the model in `dir` on `data`.
fn eval(dir: &Path, data: &Path) -> serde_json::Value {
    let model = dir.join("model.json");
    let out = common::run_ok(&[
        "eval",
        "--json",
        "--model",
        model.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    serde_json::from_str(&out.stdout).unwrap()
}

/// The line of `stdout` that says the scales are mixed, if any.
fn mixed_line(stdout: &str) -> Option<&str> {
    stdout.lines().find(|l| l.contains("scales are mixed"))
}

#[test]
fn mixed_scales_are_standardised_by_default_with_a_line_naming_the_columns() {
    let dir = common::tempdir();
    let data = dir.path().join("mixed.parquet");
    write(&data, &mixed_batch(), true);
    let (stdout, model) = train(dir.path(), &data, &[]);
    let line = mixed_line(&stdout).unwrap_or_else(|| panic!("no scale line in:\n{stdout}"));
    assert!(line.contains("the files' column statistics"), "{line}");
    assert!(line.contains("(small)") && line.contains("(big)"), "{line}");
    assert!(line.contains("--no-standardize"), "{line}");
    assert!(
        stdout.contains("standardize: mean and std of 2 features"),
        "{stdout}"
    );
    assert!(model["standardization"]["mean"].is_array(), "{model}");
    // The classes are balanced (about half each): a sane model is far above 50%.
    let metrics = eval(dir.path(), &data);
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    let loss = metrics["loss"].as_f64().unwrap();
    assert!(accuracy > 0.85, "accuracy {accuracy}");
    assert!(loss < 0.4, "loss {loss}");
}

#[test]
fn no_standardize_trains_on_the_raw_values() {
    let dir = common::tempdir();
    let data = dir.path().join("mixed.parquet");
    write(&data, &mixed_batch(), true);
    let (stdout, model) = train(dir.path(), &data, &["--no-standardize"]);
    assert_eq!(mixed_line(&stdout), None, "{stdout}");
    assert!(!stdout.contains("standardize:"), "{stdout}");
    assert!(model.get("standardization").is_none(), "{model}");
    // Raw values a million apart: SGD learns nothing useful.
    let raw_loss = eval(dir.path(), &data)["loss"].as_f64().unwrap();
    assert!(raw_loss > 1.0, "raw loss {raw_loss}");
    // Both flags at once are refused.
    let d = data.to_str().unwrap();
    let stderr = common::run_err(&["train", d, "--standardize", "--no-standardize"], 2);
    assert!(stderr.contains("--no-standardize"), "{stderr}");
}

#[test]
fn without_footer_statistics_the_first_unit_decides_for_any_reader_count() {
    let dir = common::tempdir();
    let data = dir.path().join("nostats.parquet");
    write(&data, &mixed_batch(), false);
    let mut seen = Vec::new();
    for readers in ["1", "3"] {
        let (stdout, model) = train(dir.path(), &data, &["--readers", readers]);
        let line = mixed_line(&stdout).unwrap_or_else(|| panic!("no scale line:\n{stdout}"));
        assert!(line.contains("first unit"), "{line}");
        seen.push((line.to_string(), model["standardization"].clone()));
    }
    assert_eq!(
        seen[0], seen[1],
        "the decision and statistics depend on --readers"
    );
}

#[test]
fn a_shard_dataset_is_judged_from_its_first_unit() {
    let dir = common::tempdir();
    let data = dir.path().join("mixed.parquet");
    write(&data, &mixed_batch(), true);
    let shards = dir.path().join("shards");
    common::to_shards(&data, &shards, None, 1);
    let (stdout, model) = train(dir.path(), &shards, &[]);
    let line = mixed_line(&stdout).unwrap_or_else(|| panic!("no scale line:\n{stdout}"));
    assert!(
        line.contains("first unit") && line.contains("(big)"),
        "{line}"
    );
    assert!(model["standardization"]["mean"].is_array(), "{model}");
    assert!(eval(dir.path(), &shards)["accuracy"].as_f64().unwrap() > 0.85);
}

#[test]
fn encoded_and_indicator_features_are_left_out_of_the_check() {
    // `x` spans 0.005; the one-hot and indicator features span 1 (200 times more), yet they
    // are 0/1 by construction and never trigger standardisation.
    let dir = common::tempdir();
    let data = dir.path().join("encoded.parquet");
    let n = 400;
    let x: Vec<Option<f64>> = (0..n)
        .map(|i| (i % 10 != 0).then_some(0.005 * (i % 7) as f64 / 7.0))
        .collect();
    let city: Vec<&str> = (0..n).map(|i| ["a", "b", "c"][i % 3]).collect();
    let label: Vec<i64> = (0..n).map(|i| (i % 2) as i64).collect();
    common::write_columns(
        &data,
        vec![
            ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
            ("city", Arc::new(StringArray::from(city)) as ArrayRef),
            ("label", Arc::new(Int64Array::from(label)) as ArrayRef),
        ],
    );
    let (stdout, model) = train(
        dir.path(),
        &data,
        &[
            "--categorical",
            "city",
            "--fill-nulls",
            "zero",
            "--null-indicators",
        ],
    );
    assert_eq!(mixed_line(&stdout), None, "{stdout}");
    assert!(model.get("standardization").is_none(), "{model}");
}

#[test]
fn a_diverged_run_suggests_standardize() {
    let dir = common::tempdir();
    let data = dir.path().join("mixed.parquet");
    write(&data, &mixed_batch(), true);
    let d = data.to_str().unwrap();
    let args = ["train", d, "--model", "linear", "--lr", "0.1", "-q"];
    let stderr = common::run_err(&[&args[..], &["--no-standardize"]].concat(), 2);
    assert!(stderr.contains("diverged"), "{stderr}");
    assert!(stderr.contains("--standardize"), "{stderr}");
    // By default the same run standardises and trains.
    common::run_ok(&args);
}

/// 1.7e9 s is a multiple of 128, the spacing of f32 values there: every second of
/// [T0 + 2, T0 + 62) rounds to T0 in f32.
const T0: i64 = 1_700_000_000;

#[test]
fn a_timestamp_is_centred_in_f64_so_its_seconds_are_learned_and_predict_matches() {
    // The label is 1 when the event came in the second half minute of the window (±3 s of
    // noise): a difference of seconds, which a cast of the raw timestamp to f32 erases.
    let dir = common::tempdir();
    let data = dir.path().join("events.parquet");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
    let n = 3_000;
    let (mut ts, mut label) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let second: i64 = rng.random_range(2..62);
        let noise: i64 = rng.random_range(-3..=3);
        ts.push(T0 + second);
        label.push(i64::from(second + noise >= 32));
    }
    let batch = RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(TimestampSecondArray::from(ts.clone()).with_timezone("UTC")) as ArrayRef,
        ),
        (
            "label",
            Arc::new(Int64Array::from(label.clone())) as ArrayRef,
        ),
    ])
    .unwrap();
    write(&data, &batch, true);
    assert_eq!(
        T0 as f32,
        (T0 + 61) as f32,
        "the f32 cast erases the seconds"
    );

    let (stdout, model) = train(dir.path(), &data, &[]);
    let line = mixed_line(&stdout).unwrap_or_else(|| panic!("no scale line:\n{stdout}"));
    assert!(line.contains("ts centred at 1.700e9"), "{line}");
    assert_eq!(model["version"], 6, "{model}");
    let centre = &model["standardization"]["centre"][0];
    assert_eq!(centre["column"], "ts");
    let centre = centre["value"].as_f64().unwrap();
    assert_eq!(
        centre,
        (T0 + 2) as f64 / 2.0 + (T0 + 61) as f64 / 2.0,
        "the footer range's centre"
    );
    let metrics = eval(dir.path(), &data);
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.85,
        "accuracy {accuracy} (the classes are about even)"
    );

    // `predict` on the raw file: σ(w·((ts − centre) − mean)/std + b) with the saved weight, in
    // f64 (the centred value rounded to f32, as the decoder does).
    let preds = dir.path().join("preds.parquet");
    let m = dir.path().join("model.json");
    common::run_ok(&[
        "predict",
        "-q",
        "--model",
        m.to_str().unwrap(),
        data.to_str().unwrap(),
        "--out",
        preds.to_str().unwrap(),
    ]);
    let predicted = common::f32_column(&common::read_parquet(&preds), "probability");
    let w = model["weights"][0].as_f64().unwrap();
    let b = model["bias"].as_f64().unwrap();
    assert_eq!(predicted.len(), n);
    for (t, p) in ts.iter().zip(&predicted) {
        let x = f64::from((*t as f64 - centre) as f32);
        let z = w * common::standardised(&model, &[x])[0] + b;
        let expected = 1.0 / (1.0 + (-z).exp());
        assert!(
            (f64::from(*p) - expected).abs() < 1e-5,
            "ts {t}: {p} vs {expected}"
        );
    }
}

#[test]
fn resuming_an_automatically_standardised_run_without_standardising_is_refused() {
    let dir = common::tempdir();
    let data = dir.path().join("mixed.parquet");
    write(&data, &mixed_batch(), true);
    let ck = dir.path().join("ck");
    let (d, c) = (data.to_str().unwrap(), ck.to_str().unwrap());
    let args = [
        "train",
        d,
        "-q",
        "--model",
        "logistic",
        "--checkpoint-dir",
        c,
    ];
    common::run_ok(&[&args[..], &["--epochs", "1"]].concat());
    let stderr = common::run_err(
        &[
            &args[..],
            &["--epochs", "2", "--resume", "auto", "--no-standardize"],
        ]
        .concat(),
        2,
    );
    assert!(stderr.contains("--standardize"), "{stderr}");
    // The same automatic decision resumes.
    common::run_ok(&[&args[..], &["--epochs", "2", "--resume", "auto"]].concat());
}
