//! `convert` with preprocessing options: the shards store the encoded rows and the manifest
//! the fitted preprocessing, so training on the shards equals training on the source with the
//! same options (the same model file, bit for bit: `convert` keeps the source's units, rows
//! and row ids, so the batches are the same), and the model trained on the shards predicts
//! raw Parquet with no flags. Preprocessing options on encoded shards are refused (rows are
//! never encoded twice); a version 1 manifest still loads and an unknown version is refused.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use parquet::file::properties::WriterProperties;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// SplitMix64: the test's own seeded generator.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CITIES: [&str; 4] = ["Paris", "Lyon", "Nice", "Brest"];
const PLANS: [&str; 3] = ["free", "pro", "team"];
/// 2021-01-01T00:00:00Z in microseconds: a column far off centre, which gets centred.
const START_US: i64 = 1_609_459_200_000_000;

/// `rows` customers in row groups of 200: a city string with nulls, a plan dictionary, an
/// int64 count with nulls, a float64 discount with NaN, a UTC timestamp and a boolean label
/// (null in a few rows when `null_labels`) from a logistic model of the columns.
fn write_table(path: &Path, rows: usize, seed: u64, null_labels: bool) {
    let mut rng = Rng(seed);
    let (mut city, mut plan, mut visits, mut discount, mut signup, mut label) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..rows {
        let c = (rng.uniform() < 0.9).then(|| (rng.uniform() * 4.0) as usize);
        let p = (rng.uniform() * 3.0) as i32;
        let v = (rng.uniform() < 0.9).then(|| (rng.uniform() * 40.0) as i64);
        let d = if rng.uniform() < 0.1 {
            f64::NAN
        } else {
            rng.uniform()
        };
        let t = START_US + (rng.uniform() * 3e6) as i64 * 1_000_000;
        let z = c.map_or(0.3, |c| [1.0, -1.0, 0.5, -0.5][c])
            + [-0.5, 0.2, 0.8][p as usize]
            + v.map_or(-0.2, |v| 0.05 * (v as f64 - 20.0))
            + if d.is_nan() { 0.4 } else { 2.0 * (d - 0.5) };
        let y = rng.uniform() < 1.0 / (1.0 + (-z).exp());
        city.push(c.map(|c| CITIES[c]));
        plan.push(p);
        visits.push(v);
        discount.push(d);
        signup.push(t);
        label.push((!(null_labels && i % 37 == 5)).then_some(y));
    }
    let plan = DictionaryArray::<Int32Type>::try_new(
        arrow_array::Int32Array::from(plan),
        Arc::new(StringArray::from(PLANS.to_vec())),
    )
    .unwrap();
    let batch = RecordBatch::try_from_iter(vec![
        ("city", Arc::new(StringArray::from(city)) as ArrayRef),
        ("plan", Arc::new(plan)),
        ("visits", Arc::new(Int64Array::from(visits))),
        ("discount", Arc::new(Float64Array::from(discount))),
        (
            "signup",
            Arc::new(TimestampMicrosecondArray::from(signup).with_timezone("UTC")),
        ),
        ("label", Arc::new(BooleanArray::from(label))),
    ])
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(200))
        .build();
    common::write_parquet(path, &batch, Some(props));
}

/// The preprocessing options of both `convert` and `train`.
const OPTIONS: [&str; 7] = [
    "--categorical",
    "auto",
    "--fill-nulls",
    "mean",
    "--null-indicators",
    "--positive-label",
    "true",
];

/// Trains a logistic model on `data` with `extra` flags, saving it to `model`.
fn train(data: &Path, model: &Path, extra: &[&str]) -> common::Outcome {
    let mut args = vec![
        "train",
        s(data),
        "--model",
        "logistic",
        "--epochs",
        "2",
        "--batch-size",
        "50",
        "--seed",
        "3",
        "--save-model",
        s(model),
    ];
    args.extend_from_slice(extra);
    common::run_ok(&args)
}

fn probabilities(dir: &Path, model: &Path, data: &Path, name: &str) -> Vec<f32> {
    let out = dir.join(name);
    common::run_ok(&["predict", s(data), "--model", s(model), "--out", s(&out)]);
    common::f32_column(&common::read_parquet(&out), "probability")
}

#[test]
fn training_on_encoded_shards_equals_training_on_the_source() {
    let dir = common::tempdir();
    let data = dir.path().join("customers.parquet");
    write_table(&data, 1_000, 11, true);
    let shards = dir.path().join("shards");
    let mut args = vec![
        "convert",
        s(&data),
        "--out",
        s(&shards),
        "--drop-null-labels",
    ];
    args.extend_from_slice(&OPTIONS);
    let converted = common::run_ok(&args).stdout;
    assert!(converted.contains("stored encoded ("), "{converted}");
    assert!(converted.contains("centred signup"), "{converted}");

    let manifest = common::read_json(&shards.join("manifest.json"));
    assert_eq!(manifest["version"], 2);
    let stored = &manifest["preprocessing"];
    assert_eq!(stored["positive_label"], "true");
    assert_eq!(stored["drop_null_labels"], true);
    assert_eq!(stored["scales_mixed"], true);
    assert_eq!(stored["centre"][0]["column"], "signup");
    let indicators: Vec<&str> = stored["missing"]["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(indicators, ["visits", "discount"]);
    // 1,000 rows less the 27 with a null label (rows 5, 42, ..., 967).
    assert_eq!(manifest["num_rows"], 973);

    let from_source = dir.path().join("source.json");
    let mut flags = vec!["--drop-null-labels"];
    flags.extend_from_slice(&OPTIONS);
    train(&data, &from_source, &flags);
    let from_shards = dir.path().join("shards.json");
    let trained = train(&shards, &from_shards, &[]).stdout;
    assert!(
        trained.contains("scales are mixed in the source, as `convert` judged it"),
        "{trained}"
    );
    // The same batches and preprocessing: the same model file, parameters bit for bit.
    let (a, b) = (
        common::read_json(&from_source),
        common::read_json(&from_shards),
    );
    assert!(a["features"].as_array().unwrap().len() > 10, "{a}");
    assert_eq!(a, b);

    // The model trained on the shards predicts the raw file with no flags, as the other.
    let raw = dir.path().join("raw.parquet");
    write_table(&raw, 300, 12, false);
    let p_source = probabilities(dir.path(), &from_source, &raw, "p1.parquet");
    let p_shards = probabilities(dir.path(), &from_shards, &raw, "p2.parquet");
    assert_eq!(p_source.len(), 300);
    assert_eq!(p_source, p_shards);
    // And evaluates the shards it was trained on (the stored encoding is not applied again).
    let evaluated =
        common::run_ok(&["eval", "--json", "--model", s(&from_shards), s(&shards)]).stdout;
    let evaluated: serde_json::Value = serde_json::from_str(&evaluated).unwrap();
    assert_eq!(evaluated["rows"], 973, "{evaluated}");
}

#[test]
fn preprocessing_options_on_encoded_shards_are_refused() {
    let dir = common::tempdir();
    let data = dir.path().join("customers.parquet");
    write_table(&data, 400, 5, false);
    let shards = dir.path().join("shards");
    let mut args = vec!["convert", s(&data), "--out", s(&shards)];
    args.extend_from_slice(&OPTIONS);
    common::run_ok(&args);
    for (flag, value) in [
        ("--fill-nulls", Some("zero")),
        ("--categorical", Some("auto")),
        ("--positive-label", Some("true")),
        ("--drop-null-labels", None),
    ] {
        let mut args = vec!["train", s(&shards), flag];
        args.extend(value);
        let stderr = common::run_err(&args, 2);
        assert!(stderr.contains(flag), "{flag}: {stderr}");
        assert!(stderr.contains("never again"), "{flag}: {stderr}");
    }
    // Centred columns are only recorded by a standardised model.
    let stderr = common::run_err(&["train", s(&shards), "--no-standardize"], 2);
    assert!(
        stderr.contains("signup") && stderr.contains("--no-centre"),
        "{stderr}"
    );
    // A model of other preprocessing (hashed, not one-hot) is not applied to the encoded rows.
    let other = dir.path().join("hashed.json");
    train(
        &data,
        &other,
        &[
            "--categorical",
            "auto",
            "--hash-buckets",
            "8",
            "--fill-nulls",
            "zero",
            "--positive-label",
            "true",
        ],
    );
    let stderr = common::run_err(
        &[
            "predict",
            s(&shards),
            "--model",
            s(&other),
            "--out",
            s(&dir.path().join("p.parquet")),
        ],
        2,
    );
    assert!(stderr.contains("never encoded again"), "{stderr}");
    // `inspect` shows what the rows hold.
    let shown = common::run_ok(&["inspect", s(&shards)]).stdout;
    assert!(shown.contains("stored encoded by convert"), "{shown}");
    assert!(
        shown.contains("one-hot city (4 values), plan (3 values)"),
        "{shown}"
    );
    assert!(shown.contains("label 1 where `true`"), "{shown}");
}

#[test]
fn a_version_1_manifest_loads_and_an_unknown_version_is_refused() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(
        &data,
        streamfit::generate::Task::Logistic,
        600,
        3,
        2,
        100,
        7,
    );
    let shards = dir.path().join("shards");
    common::run_ok(&["convert", s(&data), "--out", s(&shards)]);
    let path = shards.join("manifest.json");
    let manifest = common::read_json(&path);
    // Nothing to store: written as version 1, which builds before version 2 read too.
    assert_eq!(manifest["version"], 1);
    assert!(manifest.get("preprocessing").is_none(), "{manifest}");
    let model = dir.path().join("m.json");
    common::run_ok(&["train", s(&shards), "-q", "--save-model", s(&model)]);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"version\": 1", "\"version\": 3")).unwrap();
    let stderr = common::run_err(&["train", s(&shards), "-q"], 2);
    assert!(stderr.contains("version 3"), "{stderr}");
    assert!(stderr.contains("versions 1 to 2"), "{stderr}");
}

#[test]
fn a_resume_on_shards_encoded_otherwise_is_refused() {
    let dir = common::tempdir();
    let data = dir.path().join("customers.parquet");
    write_table(&data, 400, 9, false);
    let convert = |out: &Path, fill: &str| {
        common::run_ok(&[
            "convert",
            s(&data),
            "--out",
            s(out),
            "--categorical",
            "auto",
            "--fill-nulls",
            fill,
            "--positive-label",
            "true",
        ]);
    };
    let (mean, zero) = (dir.path().join("mean"), dir.path().join("zero"));
    convert(&mean, "mean");
    convert(&zero, "zero");
    let checkpoints = dir.path().join("ck");
    let model = dir.path().join("m.json");
    train(&mean, &model, &["-q", "--checkpoint-dir", s(&checkpoints)]);
    // The same features, other fill values: the stored preprocessing is part of the run.
    let stderr = common::run_err(
        &[
            "train",
            s(&zero),
            "-q",
            "--model",
            "logistic",
            "--epochs",
            "3",
            "--batch-size",
            "50",
            "--seed",
            "3",
            "--checkpoint-dir",
            s(&checkpoints),
            "--resume",
            "auto",
        ],
        2,
    );
    assert!(stderr.contains("--fill-nulls"), "{stderr}");
}

#[test]
fn a_model_that_does_not_centre_is_refused_on_shards_convert_centred() {
    // No nulls and no strings: shards that `convert` only centred (the timestamp) have the
    // source's feature names, so a model trained on plain shards of the same columns would
    // take the centred values for raw ones.
    let dir = common::tempdir();
    let data = dir.path().join("t.parquet");
    let mut rng = Rng(7);
    let rows = 400;
    let x: Vec<f64> = (0..rows).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    let ts: Vec<i64> = (0..rows)
        .map(|_| START_US + (rng.uniform() * 3e6) as i64 * 1_000_000)
        .collect();
    let label: Vec<f64> = x.iter().map(|v| f64::from(*v > 0.0)).collect();
    common::write_columns(
        &data,
        vec![
            ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
            ),
            ("label", Arc::new(Float64Array::from(label))),
        ],
    );
    let centred = dir.path().join("centred");
    let plain = dir.path().join("plain");
    let converted = common::run_ok(&["convert", s(&data), "--out", s(&centred)]).stdout;
    assert!(converted.contains("centred ts"), "{converted}");
    common::run_ok(&["convert", s(&data), "--out", s(&plain), "--no-centre"]);
    let from_plain = dir.path().join("plain.json");
    train(&plain, &from_plain, &[]);
    let stderr = common::run_err(
        &[
            "predict",
            s(&centred),
            "--model",
            s(&from_plain),
            "--out",
            s(&dir.path().join("p.parquet")),
        ],
        2,
    );
    assert!(
        stderr.contains("column(s) ts centred by `convert`, but the model centres no column"),
        "{stderr}"
    );
    let stderr = common::run_err(&["eval", s(&centred), "--model", s(&from_plain)], 2);
    assert!(stderr.contains("centred by `convert`"), "{stderr}");
    // The model trained on the centred shards reads them, and the raw file, alike.
    let from_centred = dir.path().join("centred.json");
    train(&centred, &from_centred, &[]);
    let on_shards = probabilities(dir.path(), &from_centred, &centred, "p1.parquet");
    let on_source = probabilities(dir.path(), &from_centred, &data, "p2.parquet");
    assert_eq!(on_shards, on_source);
}
