//! Issue 15 (real tables): columns as pandas, Polars and DuckDB write them. Decimal, float16,
//! date, timestamp and duration columns are numeric features, decoded exactly as documented
//! (a decimal's value, seconds since the Unix epoch, days since the epoch, seconds), in the
//! default feature set and by name, with the cast shown by `inspect`. Missing values:
//! `--fill-nulls` and `--null-indicators` fill nulls and NaN in the decoded rows, are saved
//! with the model and applied by `predict`, and join the settings `--resume` checks. Labels
//! are in `real_tables_labels.rs`.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Float16Type;
use arrow_array::{
    ArrayRef, ArrowPrimitiveType, Date32Array, Date64Array, Decimal128Array, Decimal256Array,
    DurationMillisecondArray, Float16Array, Float32Array, TimestampMicrosecondArray,
    TimestampNanosecondArray, TimestampSecondArray,
};
use arrow_schema::DataType;

type F16 = <Float16Type as ArrowPrimitiveType>::Native;

/// Writes one Parquet file with the given columns (all nullable).
fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    common::write_columns(path, columns);
}

/// The rows of one unshuffled epoch of `file` with every default feature (features
/// row-major, then targets).
fn decode(file: &Path, features: Option<&[&str]>) -> (Vec<f32>, Vec<f32>) {
    let mut columns = streamfit::data::ColumnSpec::default();
    if let Some(names) = features {
        columns.features = streamfit::data::FeatureSelection::Columns(
            names.iter().map(|n| n.to_string()).collect(),
        );
    }
    let config = streamfit::config::TrainConfig {
        data: vec![file.to_path_buf()],
        columns,
        shuffle: streamfit::pipeline::Shuffle::Off,
        ..streamfit::config::TrainConfig::default()
    };
    let pipeline = common::pipeline(&config);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for batch in pipeline.epoch(0).unwrap() {
        let batch = batch.unwrap();
        x.extend_from_slice(batch.rows.features());
        y.extend_from_slice(batch.rows.targets());
    }
    (x, y)
}

/// A table with one column of each cast type and a 0/1 label.
fn typed_table(path: &Path) {
    let price = Decimal128Array::from(vec![123_456_i128, -5, 99_999_999_999, 0])
        .with_precision_and_scale(12, 2)
        .unwrap();
    let big = Decimal256Array::from(vec![
        arrow_buffer_i256(15),
        arrow_buffer_i256(-250),
        arrow_buffer_i256(1),
        arrow_buffer_i256(0),
    ])
    .with_precision_and_scale(40, 1)
    .unwrap();
    let half = Float16Array::from(vec![
        F16::from_f32(0.5),
        F16::from_f32(-2.25),
        F16::from_f32(1024.0),
        F16::from_f32(0.0),
    ]);
    let seen_at = TimestampMicrosecondArray::from(vec![
        1_700_000_000_000_000_i64,
        1_500_000_i64,
        -2_000_000,
        0,
    ])
    .with_timezone("UTC");
    let local = TimestampNanosecondArray::from(vec![3_500_000_000_i64, 0, -1, 7]);
    let whole = TimestampSecondArray::from(vec![60_i64, 0, 1, 2]).with_timezone("+02:00");
    let day = Date32Array::from(vec![19_000, -1, 0, 1]);
    let day64 = Date64Array::from(vec![86_400_000_i64 * 3, 0, 172_800_000, -86_400_000]);
    let took = DurationMillisecondArray::from(vec![1_500_i64, 0, -250, 60_000]);
    let label = Float32Array::from(vec![1.0_f32, 0.0, 1.0, 0.0]);
    write(
        path,
        vec![
            ("price", Arc::new(price)),
            ("big", Arc::new(big)),
            ("half", Arc::new(half)),
            ("seen_at", Arc::new(seen_at)),
            ("local", Arc::new(local)),
            ("whole", Arc::new(whole)),
            ("day", Arc::new(day)),
            ("day64", Arc::new(day64)),
            ("took", Arc::new(took)),
            ("label", Arc::new(label)),
        ],
    );
}

/// A 256-bit decimal's stored integer from an i128 (the type as the arrays name it).
fn arrow_buffer_i256(
    v: i128,
) -> <arrow_array::types::Decimal256Type as ArrowPrimitiveType>::Native {
    <arrow_array::types::Decimal256Type as ArrowPrimitiveType>::Native::from_i128(v)
}

#[test]
fn decimal_float16_date_timestamp_and_duration_columns_decode_to_documented_values() {
    let dir = common::tempdir();
    let file = dir.path().join("typed.parquet");
    typed_table(&file);
    let (x, y) = decode(&file, None);
    // Expected values, computed in f64 and then rounded to f32 as the docs state: a decimal is
    // its value (stored / 10^scale), a timestamp seconds since the Unix epoch whatever its
    // unit and zone, a date days since the epoch, a duration seconds.
    let rows: [[f64; 9]; 4] = [
        [
            1234.56,
            1.5,
            0.5,
            1_700_000_000.0,
            3.5,
            60.0,
            19_000.0,
            3.0,
            1.5,
        ],
        [-0.05, -25.0, -2.25, 1.5, 0.0, 0.0, -1.0, 0.0, 0.0],
        [
            999_999_999.99,
            0.1,
            1024.0,
            -2.0,
            -1e-9,
            1.0,
            0.0,
            2.0,
            -0.25,
        ],
        [0.0, 0.0, 0.0, 0.0, 7e-9, 2.0, 1.0, -1.0, 60.0],
    ];
    let expected: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    assert_eq!(x, expected);
    assert_eq!(y, vec![1.0, 0.0, 1.0, 0.0]);
    // Named in --features, in any order, they read the same values.
    let (x, _) = decode(&file, Some(&["took", "price"]));
    assert_eq!(
        x,
        vec![1.5, 1234.56, 0.0, -0.05, -0.25, 999_999_999.99, 60.0, 0.0]
    );
}

#[test]
fn inspect_shows_each_cast() {
    let dir = common::tempdir();
    let file = dir.path().join("typed.parquet");
    typed_table(&file);
    let out = common::run_ok(&["inspect", file.to_str().unwrap()]);
    for note in [
        "cast Decimal128(12, 2) → value / 10^2 → f32",
        "cast Float16 → f32",
        "seconds since the Unix epoch → f32",
        "cast Date32 → days since the Unix epoch → f32",
        "→ seconds → f32",
    ] {
        assert!(out.stdout.contains(note), "{note}: {}", out.stdout);
    }
    assert!(
        !out.stdout.contains("not a numeric column"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_decimal_column_trains_by_default_and_is_not_left_out() {
    let dir = common::tempdir();
    let file = dir.path().join("typed.parquet");
    typed_table(&file);
    let out = common::run_ok(&[
        "train",
        file.to_str().unwrap(),
        "--epochs",
        "1",
        "--model",
        "linear",
        "--batch-size",
        "2",
        "--no-eval",
    ]);
    assert!(
        !out.stderr.contains("not used:") && !out.stdout.contains("not used:"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn timestamps_of_different_units_agree_across_files_but_not_with_numbers() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let label = || -> ArrayRef { Arc::new(Float32Array::from(vec![1.0_f32])) };
    write(
        &data.join("a.parquet"),
        vec![
            (
                "at",
                Arc::new(TimestampSecondArray::from(vec![10_i64])) as ArrayRef,
            ),
            ("label", label()),
        ],
    );
    write(
        &data.join("b.parquet"),
        vec![
            (
                "at",
                Arc::new(TimestampMicrosecondArray::from(vec![20_000_000_i64])) as ArrayRef,
            ),
            ("label", label()),
        ],
    );
    let (x, _) = decode(&data, None);
    assert_eq!(x, vec![10.0, 20.0]);
    write(
        &data.join("c.parquet"),
        vec![
            (
                "at",
                Arc::new(arrow_array::Int64Array::from(vec![30_i64])) as ArrayRef,
            ),
            ("label", label()),
        ],
    );
    let stderr = common::run_err(&["inspect", data.to_str().unwrap()], 2);
    assert!(stderr.contains("c.parquet"), "{stderr}");
    let _ = DataType::Float32;
}

/// A table with missing values: `x` holds nulls and NaN, `y` none, `z` only a NaN; the label
/// is 0/1.
fn table_with_missing(path: &Path) {
    let x = arrow_array::Float64Array::from(vec![
        Some(1.0),
        None,
        Some(3.0),
        Some(f64::NAN),
        Some(5.0),
        None,
    ]);
    let y = arrow_array::Int64Array::from(vec![10_i64, 20, 30, 40, 50, 60]);
    let z = Float32Array::from(vec![0.5_f32, f32::NAN, 1.5, 2.5, 3.5, 4.5]);
    let label = Float32Array::from(vec![1.0_f32, 0.0, 1.0, 0.0, 1.0, 0.0]);
    write(
        path,
        vec![
            ("x", Arc::new(x)),
            ("y", Arc::new(y)),
            ("z", Arc::new(z)),
            ("label", Arc::new(label)),
        ],
    );
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_null_without_fill_nulls_is_an_error_that_names_the_flag() {
    let dir = common::tempdir();
    let file = dir.path().join("missing.parquet");
    table_with_missing(&file);
    let stderr = common::run_err(&["train", s(&file), "--quiet"], 2);
    assert!(stderr.contains("null in column `x`"), "{stderr}");
    assert!(stderr.contains("--fill-nulls"), "{stderr}");
}

#[test]
fn fill_values_replace_nulls_and_nan_in_the_decoded_rows() {
    let dir = common::tempdir();
    let file = dir.path().join("missing.parquet");
    table_with_missing(&file);
    let mut config = streamfit::config::TrainConfig {
        data: vec![file.clone()],
        shuffle: streamfit::pipeline::Shuffle::Off,
        ..streamfit::config::TrainConfig::default()
    };
    config.columns.missing = streamfit::data::schema::MissingValues {
        fill: ["x", "y", "z"]
            .iter()
            .zip([-1.0, 7.0, 0.25])
            .map(|(c, value)| streamfit::data::schema::ColumnFill {
                column: c.to_string(),
                value,
            })
            .collect(),
        indicators: vec!["x".into(), "z".into()],
    };
    let pipeline = common::pipeline(&config);
    assert_eq!(
        pipeline.source().schema().feature_names,
        ["x", "y", "z", "x_is_null", "z_is_null"]
    );
    let mut x = Vec::new();
    for batch in pipeline.epoch(0).unwrap() {
        x.extend_from_slice(batch.unwrap().rows.features());
    }
    #[rustfmt::skip]
    let expected = [
        1.0, 10.0, 0.5, 0.0, 0.0,
        -1.0, 20.0, 0.25, 1.0, 1.0,
        3.0, 30.0, 1.5, 0.0, 0.0,
        -1.0, 40.0, 2.5, 1.0, 0.0,
        5.0, 50.0, 3.5, 0.0, 0.0,
        -1.0, 60.0, 4.5, 1.0, 0.0,
    ];
    assert_eq!(x, expected);
}

#[test]
fn fill_nulls_mean_and_indicators_are_saved_and_predict_applies_them() {
    let dir = common::tempdir();
    let file = dir.path().join("missing.parquet");
    table_with_missing(&file);
    let model = dir.path().join("model.json");
    let out = common::run_ok(&[
        "train",
        s(&file),
        "--fill-nulls",
        "mean",
        "--null-indicators",
        "--model",
        "logistic",
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--save-model",
        s(&model),
    ]);
    // x's present values are 1, 3, 5 (mean 3); z's 0.5, 1.5, 2.5, 3.5, 4.5 (mean 2.5).
    assert!(
        out.stdout.contains("missing values over 6 rows")
            && out.stdout.contains("x 3, z 1")
            && out.stdout.contains("indicator features for x, z"),
        "{}",
        out.stdout
    );
    let saved = common::read_json(&model);
    assert_eq!(saved["version"], 3);
    assert_eq!(
        saved["features"],
        serde_json::json!(["x", "y", "z", "x_is_null", "z_is_null"])
    );
    let fills: Vec<(String, f64)> = saved["missing"]["fill"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["column"].as_str().unwrap().to_string(),
                f["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fills,
        [
            ("x".to_string(), 3.0),
            ("y".to_string(), 35.0),
            ("z".to_string(), 2.5)
        ]
    );
    assert_eq!(
        saved["missing"]["indicators"],
        serde_json::json!(["x", "z"])
    );
    // predict on the same raw file needs no flags, and scores each row as the model says.
    let predictions = dir.path().join("p.parquet");
    common::run_ok(&[
        "predict",
        "--model",
        s(&model),
        s(&file),
        "--out",
        s(&predictions),
    ]);
    let batches = common::read_parquet(&predictions);
    let scores = common::f32_column(&batches, "probability");
    let w: Vec<f64> = saved["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let b = saved["bias"].as_f64().unwrap();
    let rows = [
        [1.0, 10.0, 0.5, 0.0, 0.0],
        [3.0, 20.0, 2.5, 1.0, 1.0],
        [3.0, 30.0, 1.5, 0.0, 0.0],
        [3.0, 40.0, 2.5, 1.0, 0.0],
        [5.0, 50.0, 3.5, 0.0, 0.0],
        [3.0, 60.0, 4.5, 1.0, 0.0],
    ];
    for (row, score) in rows.iter().zip(&scores) {
        let z: f64 = row.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() + b;
        let p = 1.0 / (1.0 + (-z).exp());
        assert!((p - f64::from(*score)).abs() < 1e-5, "{p} vs {score}");
    }
}

#[test]
fn infinity_stays_an_error_with_fill_nulls() {
    let dir = common::tempdir();
    let file = dir.path().join("inf.parquet");
    write(
        &file,
        vec![
            (
                "x",
                Arc::new(Float32Array::from(vec![1.0_f32, f32::INFINITY])) as ArrayRef,
            ),
            ("label", Arc::new(Float32Array::from(vec![1.0_f32, 0.0]))),
        ],
    );
    let stderr = common::run_err(&["train", s(&file), "--quiet", "--fill-nulls", "zero"], 2);
    assert!(
        stderr.contains("non-finite value inf in column `x`"),
        "{stderr}"
    );
}

#[test]
fn bad_fill_values_and_indicators_without_a_fill_are_refused() {
    let dir = common::tempdir();
    let file = dir.path().join("missing.parquet");
    table_with_missing(&file);
    let stderr = common::run_err(&["train", s(&file), "--fill-nulls", "median"], 2);
    assert!(
        stderr.contains("--fill-nulls")
            && stderr.contains("`median` is not `zero`, `mean` or a finite number"),
        "{stderr}"
    );
    let stderr = common::run_err(&["train", s(&file), "--fill-nulls", "inf"], 2);
    assert!(stderr.contains("`inf` is not"), "{stderr}");
    let stderr = common::run_err(&["train", s(&file), "--null-indicators"], 2);
    assert!(stderr.contains("--fill-nulls"), "{stderr}");
}

#[test]
fn resume_refuses_a_changed_fill_or_positive_label() {
    let dir = common::tempdir();
    let file = dir.path().join("missing.parquet");
    table_with_missing(&file);
    let checkpoints = dir.path().join("ckpt");
    let run = |fill: &str, positive: &str, resume: bool| {
        let mut args = vec![
            "train",
            s(&file),
            "-q",
            "--batch-size",
            "2",
            "--fill-nulls",
            fill,
            "--positive-label",
            positive,
            "--checkpoint-dir",
            s(&checkpoints),
        ];
        if resume {
            args.extend(["--resume", "auto"]);
        }
        common::run(&args, common::TIMEOUT)
    };
    run("zero", "1", false).ok();
    let err = run("5", "1", true).fails_with(2);
    assert!(
        err.contains("--fill-nulls was x=0,y=0,z=0, now x=5,y=5,z=5"),
        "{err}"
    );
    let err = run("zero", "0", true).fails_with(2);
    assert!(err.contains("--positive-label was"), "{err}");
    run("zero", "1", true).ok();
}

#[test]
fn missing_value_and_label_options_are_refused_on_a_shard_dataset() {
    let dir = common::tempdir();
    let file = dir.path().join("clean.parquet");
    write(
        &file,
        vec![
            (
                "x",
                Arc::new(Float32Array::from(vec![1.0_f32, 2.0])) as ArrayRef,
            ),
            ("label", Arc::new(Float32Array::from(vec![1.0_f32, 0.0]))),
        ],
    );
    let shards = dir.path().join("shards");
    common::to_shards(&file, &shards, None, 1);
    for (flags, option) in [
        (&["--fill-nulls", "zero"][..], "--fill-nulls"),
        (&["--positive-label", "1"][..], "--positive-label"),
        (&["--drop-null-labels"][..], "--drop-null-labels"),
    ] {
        let mut args = vec!["train", s(&shards), "--quiet"];
        args.extend_from_slice(flags);
        let stderr = common::run_err(&args, 2);
        assert!(
            stderr.contains(option) && stderr.contains("shard dataset"),
            "{stderr}"
        );
    }
}

#[test]
fn fill_nulls_mean_and_indicators_work_beside_hive_partition_keys() {
    let dir = common::tempdir();
    let data = dir.path().join("events");
    for (year, x) in [
        ("2023", [Some(1.0_f32), None]),
        ("2024", [Some(5.0), Some(6.0)]),
    ] {
        let part = data.join(format!("year={year}"));
        std::fs::create_dir_all(&part).unwrap();
        write(
            &part.join("part.parquet"),
            vec![
                ("x", Arc::new(Float32Array::from(x.to_vec())) as ArrayRef),
                ("label", Arc::new(Float32Array::from(vec![1.0_f32, 0.0]))),
            ],
        );
    }
    let model = dir.path().join("model.json");
    common::run_ok(&[
        "train",
        s(&data),
        "--features",
        "x,year",
        "--fill-nulls",
        "mean",
        "--null-indicators",
        "--model",
        "linear",
        "--epochs",
        "1",
        "--save-model",
        s(&model),
        "--quiet",
    ]);
    let saved = common::read_json(&model);
    // x's present values are 1, 5 and 6: mean 4.
    assert_eq!(saved["missing"]["fill"][0]["column"], "x");
    assert_eq!(saved["missing"]["fill"][0]["value"], 4.0);
    assert_eq!(saved["missing"]["indicators"], serde_json::json!(["x"]));
    let features = saved["features"].as_array().unwrap();
    assert!(
        features.contains(&serde_json::json!("x_is_null"))
            && features.contains(&serde_json::json!("year")),
        "{features:?}"
    );
    // predict on the same tree needs no flags.
    let predictions = dir.path().join("p.parquet");
    common::run_ok(&[
        "predict",
        "--model",
        s(&model),
        s(&data),
        "--out",
        s(&predictions),
        "--quiet",
    ]);
    let scores = common::f32_column(&common::read_parquet(&predictions), "prediction");
    assert_eq!(scores.len(), 4);
}
