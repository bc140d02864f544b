//! Nothing trains silently on the wrong columns or labels (issue 15, first part): labels a
//! logistic model cannot take are refused by row and value; pandas index columns are never
//! default features; every column left out is named in the `not used:` line with its reason;
//! `--exclude` removes columns from the default features and names in comma lists are trimmed.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};

use common::{read_json, run_err, run_ok, tempdir, write_parquet};

/// Writes `columns` as one file, with `metadata` as the schema's key-value metadata.
fn write(path: &Path, columns: Vec<(&str, ArrayRef)>, metadata: HashMap<String, String>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), false))
        .collect();
    let schema = Schema::new_with_metadata(fields, metadata);
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let batch = RecordBatch::try_new(Arc::new(schema), arrays).unwrap();
    write_parquet(path, &batch, None);
}

fn floats(values: impl IntoIterator<Item = f32>) -> ArrayRef {
    Arc::new(Float32Array::from_iter_values(values))
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// 200 rows: `x`, a label of `labels[i % 2]` by the sign of x.
fn labelled(path: &Path, labels: [f32; 2]) {
    let x: Vec<f32> = (0..200).map(|i| (i as f32 - 99.5) / 50.0).collect();
    let y: Vec<f32> = x.iter().map(|&v| labels[usize::from(v > 0.0)]).collect();
    write(
        path,
        vec![("x", floats(x)), ("label", floats(y))],
        HashMap::new(),
    );
}

#[test]
fn logistic_labels_other_than_0_and_1_are_refused_by_row_and_value() {
    let dir = tempdir();
    for (name, labels) in [("pm1.parquet", [-1.0, 1.0]), ("12.parquet", [1.0, 2.0])] {
        let file = dir.path().join(name);
        labelled(&file, labels);
        let err = run_err(&["train", "-q", s(&file)], 2);
        assert!(err.contains(name), "{err}");
        assert!(err.contains("is not 0 or 1"), "{err}");
        assert!(err.contains("--model softmax"), "{err}");
        assert!(err.contains("row "), "{err}");
        // The same labels are fine where they mean something: regression.
        run_ok(&["train", "-q", "--model", "linear", s(&file)]);
    }
    let ok = dir.path().join("01.parquet");
    labelled(&ok, [0.0, 1.0]);
    run_ok(&["train", "-q", s(&ok)]);
}

#[test]
fn pandas_index_columns_are_never_default_features_and_are_named() {
    let dir = tempdir();
    let n = 100;
    let pandas = |index: &str| {
        HashMap::from([(
            "pandas".to_string(),
            format!(r#"{{"index_columns": ["{index}"], "columns": []}}"#),
        )])
    };
    // pandas' unnamed index after `df.sample().to_parquet()`, and a named index.
    for index in ["__index_level_0__", "customer_id"] {
        let file = dir.path().join(format!("{index}.parquet"));
        write(
            &file,
            vec![
                (
                    index,
                    Arc::new(Int64Array::from_iter_values(0..n)) as ArrayRef,
                ),
                ("x", floats((0..n).map(|i| i as f32 / 100.0))),
                ("label", floats((0..n).map(|i| (i % 2) as f32))),
            ],
            pandas(index),
        );
        let model = dir.path().join(format!("{index}.json"));
        let out = run_ok(&["train", s(&file), "--save-model", s(&model)]);
        assert_eq!(read_json(&model)["features"], serde_json::json!(["x"]));
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("not used:"))
            .unwrap_or_else(|| panic!("no `not used:` line in\n{}", out.stdout));
        assert!(
            line.contains(&format!("{index} (Int64, pandas index)")),
            "{line}"
        );
    }
}

#[test]
fn a_string_column_left_out_is_named_and_exclude_removes_columns() {
    let dir = tempdir();
    let file = dir.path().join("mixed.parquet");
    let n = 100;
    write(
        &file,
        vec![
            (
                "id",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("c{i}")),
                )) as ArrayRef,
            ),
            ("a", floats((0..n).map(|i| i as f32 / 100.0))),
            ("b", floats((0..n).map(|i| (i % 7) as f32))),
            ("label", floats((0..n).map(|i| (i % 2) as f32))),
        ],
        HashMap::new(),
    );
    let out = run_ok(&["train", s(&file)]);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "not used: id (Utf8, ~100 distinct: pass --categorical id or --hash-buckets to use it)"),
        "{}",
        out.stdout
    );
    // --exclude leaves b out of the default features, and says so.
    let model = dir.path().join("model.json");
    let out = run_ok(&[
        "train",
        s(&file),
        "--exclude",
        " b",
        "--save-model",
        s(&model),
    ]);
    assert_eq!(read_json(&model)["features"], serde_json::json!(["a"]));
    assert!(
        out.stdout.contains("b (Float32, not selected)"),
        "{}",
        out.stdout
    );
    // Names in comma lists are trimmed.
    run_ok(&[
        "train",
        "-q",
        s(&file),
        "--features",
        "a, b",
        "--save-model",
        s(&model),
    ]);
    assert_eq!(read_json(&model)["features"], serde_json::json!(["a", "b"]));
    // An unknown column in --exclude, and --exclude with --features, are errors.
    let err = run_err(&["train", "-q", s(&file), "--exclude", "nope"], 2);
    assert!(err.contains("--exclude"), "{err}");
    assert!(err.contains("`nope`"), "{err}");
    assert!(err.contains("columns: id, a, b, label"), "{err}");
    let err = run_err(
        &["train", "-q", s(&file), "--exclude", "a", "--features", "b"],
        2,
    );
    assert!(err.contains("cannot be used with"), "{err}");
}
