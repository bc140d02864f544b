//! Invariant 5 (no silent loss): bad input gives a clear error naming the file, row group, row
//! and column, exit code 2, no panic, and no model file.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

/// Writes one Parquet file with the given columns.
fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch =
        RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    common::write_parquet(path, &batch, None);
}

fn floats(values: &[f32]) -> ArrayRef {
    Arc::new(Float32Array::from(values.to_vec()))
}

/// Runs `train FILE extra...` and checks exit code 2, no panic, no model, and that stderr
/// contains every `needle`.
fn assert_rejected(file: &Path, extra: &[&str], needles: &[&str]) {
    let model = file.with_extension("model.json");
    let mut args = vec![
        "train",
        file.to_str().unwrap(),
        "--quiet",
        "--save-model",
        model.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let stderr = common::run(&args, Duration::from_secs(30)).fails_with(2);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
    assert!(!model.exists(), "a model file was written");
}

#[test]
fn missing_label_column_is_named() {
    let dir = common::tempdir();
    let file = dir.path().join("nolabel.parquet");
    write(
        &file,
        vec![("a", floats(&[1.0, 2.0])), ("target", floats(&[0.0, 1.0]))],
    );
    assert_rejected(
        &file,
        &[],
        &["nolabel.parquet", "column `label` not found", "target"],
    );
}

#[test]
fn a_null_is_named_with_row_group_row_and_column() {
    let dir = common::tempdir();
    let file = dir.path().join("null.parquet");
    let a: ArrayRef = Arc::new(Float32Array::from(vec![
        Some(1.0),
        Some(2.0),
        None,
        Some(4.0),
    ]));
    write(
        &file,
        vec![("a", a), ("label", floats(&[0.0, 1.0, 0.0, 1.0]))],
    );
    assert_rejected(
        &file,
        &[],
        &["null.parquet", "row group 0", "row 2", "null in column `a`"],
    );
}

#[test]
fn a_nan_is_named_with_row_group_row_and_column() {
    let dir = common::tempdir();
    let file = dir.path().join("nan.parquet");
    write(
        &file,
        vec![
            ("a", floats(&[1.0, 2.0, 3.0])),
            ("b", floats(&[0.5, f32::NAN, 1.0])),
            ("label", floats(&[0.0, 1.0, 0.0])),
        ],
    );
    assert_rejected(
        &file,
        &[],
        &[
            "nan.parquet",
            "row group 0",
            "row 1",
            "non-finite value NaN in column `b`",
        ],
    );
}

#[test]
fn an_infinite_label_is_named() {
    let dir = common::tempdir();
    let file = dir.path().join("inf.parquet");
    write(
        &file,
        vec![
            ("a", floats(&[1.0, 2.0])),
            ("label", floats(&[0.0, f32::INFINITY])),
        ],
    );
    assert_rejected(&file, &[], &["inf.parquet", "row 1", "column `label`"]);
}

#[test]
fn a_string_feature_column_is_unsupported() {
    let dir = common::tempdir();
    let file = dir.path().join("strings.parquet");
    let s: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
    write(
        &file,
        vec![
            ("a", floats(&[1.0, 2.0])),
            ("name", s),
            ("label", floats(&[0.0, 1.0])),
        ],
    );
    assert_rejected(
        &file,
        &["--features", "a,name"],
        &["strings.parquet", "column `name`", "unsupported type Utf8"],
    );
}

#[test]
fn an_empty_file_is_rejected() {
    let dir = common::tempdir();
    let file = dir.path().join("empty.parquet");
    std::fs::write(&file, b"").unwrap();
    assert_rejected(&file, &[], &["empty.parquet", "0 bytes"]);
}

#[test]
fn a_parquet_file_without_rows_is_an_empty_dataset() {
    let dir = common::tempdir();
    let file = dir.path().join("norows.parquet");
    write(&file, vec![("a", floats(&[])), ("label", floats(&[]))]);
    assert_rejected(&file, &[], &["empty dataset", "no rows"]);
}

#[test]
fn files_with_different_schemas_are_both_named() {
    let dir = common::tempdir();
    write(
        &dir.path().join("a.parquet"),
        vec![("x", floats(&[1.0])), ("label", floats(&[1.0]))],
    );
    write(
        &dir.path().join("b.parquet"),
        vec![("y", floats(&[1.0])), ("label", floats(&[1.0]))],
    );
    assert_rejected(
        dir.path(),
        &[],
        &["schema mismatch", "a.parquet", "b.parquet"],
    );
}

#[test]
fn a_missing_path_and_bad_flags_exit_with_2() {
    let limit = Duration::from_secs(10);
    let stderr = common::run(&["train", "/nonexistent/streamfit-data"], limit).fails_with(2);
    assert!(stderr.contains("/nonexistent/streamfit-data"), "{stderr}");
    let stderr = common::run(&["train", "x", "--batch-size", "0"], limit).fails_with(2);
    assert!(stderr.contains("--batch-size"), "{stderr}");
}

#[test]
fn other_numeric_types_are_cast_to_f32() {
    let dir = common::tempdir();
    let file = dir.path().join("types.parquet");
    let ints: ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![1, -2, 3, 4]));
    let doubles: ArrayRef = Arc::new(arrow_array::Float64Array::from(vec![0.5, 1.5, -2.5, 0.0]));
    let bools: ArrayRef = Arc::new(arrow_array::BooleanArray::from(vec![
        true, false, true, false,
    ]));
    let labels: ArrayRef = Arc::new(arrow_array::Int32Array::from(vec![1, 0, 1, 0]));
    write(
        &file,
        vec![("i", ints), ("d", doubles), ("b", bools), ("label", labels)],
    );
    let config = streamfit::config::TrainConfig {
        data: vec![file],
        shuffle: streamfit::pipeline::Shuffle::Off,
        ..streamfit::config::TrainConfig::default()
    };
    let pipeline = common::pipeline(&config);
    let batch = pipeline.epoch(0).unwrap().next().unwrap().unwrap();
    assert_eq!(
        batch.rows.features(),
        &[1.0, 0.5, 1.0, -2.0, 1.5, 0.0, 3.0, -2.5, 1.0, 4.0, 0.0, 0.0]
    );
    assert_eq!(batch.rows.targets(), &[1.0, 0.0, 1.0, 0.0]);
    let _ = DataType::Float32;
}

#[test]
fn unused_columns_may_differ_between_files() {
    let dir = common::tempdir();
    write(
        &dir.path().join("a.parquet"),
        vec![
            ("x", floats(&[1.0])),
            ("note_a", floats(&[0.0])),
            ("label", floats(&[1.0])),
        ],
    );
    write(
        &dir.path().join("b.parquet"),
        vec![("x", floats(&[2.0])), ("label", floats(&[0.0]))],
    );
    let config = streamfit::config::TrainConfig {
        data: vec![dir.path().to_path_buf()],
        columns: streamfit::data::ColumnSpec {
            features: streamfit::data::FeatureSelection::Columns(vec!["x".into()]),
            label: "label".into(),
            ..streamfit::data::ColumnSpec::default()
        },
        shuffle: streamfit::pipeline::Shuffle::Off,
        ..streamfit::config::TrainConfig::default()
    };
    let pipeline = common::pipeline(&config);
    let batch = pipeline.epoch(0).unwrap().next().unwrap().unwrap();
    assert_eq!(batch.rows.features(), &[1.0, 2.0]);
    assert_eq!(batch.rows.targets(), &[1.0, 0.0]);
}

#[test]
fn a_label_outside_the_classes_is_named_with_its_row() {
    let dir = common::tempdir();
    let file = dir.path().join("classes.parquet");
    write(
        &file,
        vec![
            ("a", floats(&[0.5, 1.0, 1.5, 2.0])),
            ("label", floats(&[0.0, 2.0, 5.0, 1.0])),
        ],
    );
    for model in [
        &["--model", "softmax", "--classes", "3"][..],
        &["--model", "mlp", "--task", "multiclass", "--classes", "3"],
    ] {
        assert_rejected(
            &file,
            model,
            &[
                "classes.parquet",
                "row 2",
                "label 5",
                "column `label`",
                "not a class id in 0..2",
            ],
        );
    }
    // Without --classes, K comes from the largest label: a fraction is no class id.
    let fraction = dir.path().join("fraction.parquet");
    write(
        &fraction,
        vec![("a", floats(&[0.5, 1.0])), ("label", floats(&[0.0, 2.5]))],
    );
    assert_rejected(
        &fraction,
        &["--model", "softmax"],
        &["--classes", "largest label is 2.5"],
    );
}

#[test]
fn contradictory_model_and_optimizer_flags_are_refused_before_reading() {
    let dir = common::tempdir();
    let file = dir.path().join("ok.parquet");
    write(
        &file,
        vec![("a", floats(&[0.5, 1.0])), ("label", floats(&[0.0, 1.0]))],
    );
    assert_rejected(&file, &["--early-stop", "2"], &["--early-stop", "--valid"]);
    assert_rejected(&file, &["--beta2", "1.5"], &["--beta2"]);
    assert_rejected(
        &file,
        &["--model", "softmax", "--classes", "1"],
        &["--classes"],
    );
    assert_rejected(&file, &["--clip-grad-norm", "0"], &["--clip-grad-norm"]);
}
