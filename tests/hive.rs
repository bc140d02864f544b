//! Data in directory trees (issue 16, discovery): a DATA directory is searched recursively in
//! relative-path order, a quoted glob pattern selects files, `key=value` directories are hive
//! partition columns (features only when named), and `--filter` skips whole files by them
//! before any is opened; every refusal is a clear error with exit code 2.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Float32Array, Int64Array, RecordBatch};
use arrow_schema::{Field, Schema};

use common::{read_json, run_err, run_ok, tempdir, write_parquet};

/// One file of the tree (see `common::write_hive_part`), in one row group.
fn write_part(path: &Path, rows: usize, month: i64, seed: u64) {
    common::write_hive_part(path, rows, month, seed, None);
}

/// The tree: year=2023/month={1,2}, year=2024/month={3,4} (written out of order), 300 rows
/// per file, plus what Spark and pyarrow leave beside data (`_SUCCESS`, hidden files).
/// Returns the data files in relative-path order.
fn hive_tree(root: &Path) -> Vec<PathBuf> {
    let parts = [
        ("year=2024/month=4/part-0.parquet", 4),
        ("year=2023/month=2/part-0.parquet", 2),
        ("year=2024/month=3/part-0.parquet", 3),
        ("year=2023/month=1/part-0.parquet", 1),
    ];
    for (i, (rel, month)) in parts.iter().enumerate() {
        write_part(&root.join(rel), 300, *month, i as u64);
    }
    std::fs::write(root.join("_SUCCESS"), b"").unwrap();
    std::fs::write(root.join("year=2023/.part-1.parquet.crc"), b"junk").unwrap();
    std::fs::write(root.join("year=2023/_committed_0"), b"junk").unwrap();
    let mut ordered: Vec<PathBuf> = parts.iter().map(|(rel, _)| root.join(rel)).collect();
    ordered.sort();
    ordered
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Trains with `args` plus a saved model and report in `out`; returns (model, report).
fn train(out: &Path, args: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let model = out.join("model.json");
    let report = out.join("report.json");
    let mut all = vec!["train", "-q", "--epochs", "2", "--batch-size", "64"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--save-model", s(&model), "--report", s(&report)]);
    run_ok(&all);
    (read_json(&model), read_json(&report))
}

#[test]
fn a_tree_trains_exactly_like_its_files_listed_in_relative_path_order() {
    let dir = tempdir();
    let root = dir.path().join("data");
    let files = hive_tree(&root);
    let out = tempdir();
    let (tree_model, tree_report) = train(out.path(), &["--features", "x", s(&root)]);
    let listed: Vec<&str> = files.iter().map(|p| s(p)).collect();
    let mut args = vec!["--features", "x"];
    args.extend(listed);
    let out2 = tempdir();
    let (files_model, _) = train(out2.path(), &args);
    assert_eq!(tree_model["weights"], files_model["weights"]);
    assert_eq!(tree_model["bias"], files_model["bias"]);
    assert_eq!(tree_report["rows_per_epoch"], 1200, "{tree_report}");
}

#[test]
fn partition_keys_are_features_only_when_named() {
    let dir = tempdir();
    let root = dir.path().join("data");
    hive_tree(&root);
    let out = tempdir();
    // By default the features are the files' numeric columns; the keys are not among them.
    let (model, _) = train(out.path(), &[s(&root)]);
    assert_eq!(model["features"], serde_json::json!(["x", "row"]));
    // Named, a key is a feature at the place it was named, and the model uses it.
    let (model, _) = train(
        out.path(),
        &["--features", "month,x", "--standardize", s(&root)],
    );
    assert_eq!(model["features"], serde_json::json!(["month", "x"]));
    let month_weight = model["weights"][0].as_f64().unwrap();
    assert!(month_weight > 0.1, "weight of month {month_weight}");
    // `inspect` shows the keys with their types and roles.
    let shown = run_ok(&["inspect", "--features", "x,year", s(&root)]).stdout;
    let line = |name: &str| -> String {
        shown
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{shown}"))
            .to_string()
    };
    assert!(line("year").contains("hive partition"), "{shown}");
    assert!(line("year").contains("feature"), "{shown}");
    assert!(line("month").contains("int64"), "{shown}");
}

#[test]
fn a_filter_skips_whole_files_before_any_is_opened() {
    let dir = tempdir();
    let root = dir.path().join("data");
    hive_tree(&root);
    // A damaged file in a partition the filter leaves out is never opened.
    let bad = root.join("year=2022/month=12/part-0.parquet");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, b"PAR1 this is not a parquet file PAR1").unwrap();
    let out = tempdir();
    let (_, report) = train(
        out.path(),
        &[
            "--features",
            "x",
            "--filter",
            "year>=2023 and month!=2",
            s(&root),
        ],
    );
    assert_eq!(report["rows_per_epoch"], 900, "{report}");
    let (_, report) = train(
        out.path(),
        &["--features", "x", "--filter", "year = 2024", s(&root)],
    );
    assert_eq!(report["rows_per_epoch"], 600, "{report}");
    // Without the filter the damaged file is found, named.
    let err = run_err(&["train", "-q", "--features", "x", s(&root)], 2);
    assert!(err.contains("year=2022"), "{err}");
}

#[test]
fn a_quoted_glob_selects_files_across_directories() {
    let dir = tempdir();
    let root = dir.path().join("data");
    hive_tree(&root);
    let out = tempdir();
    let pattern = format!("{}/year=2024/**/*.parquet", s(&root));
    let (_, report) = train(out.path(), &["--features", "x", &pattern]);
    assert_eq!(report["rows_per_epoch"], 600, "{report}");
    let none = format!("{}/year=2030/**/*.parquet", s(&root));
    let err = run_err(&["train", "-q", &none], 2);
    assert!(err.contains("no files match"), "{err}");
}

#[test]
fn bad_filters_and_empty_trees_are_clear_errors() {
    let dir = tempdir();
    let root = dir.path().join("data");
    hive_tree(&root);
    let err = run_err(&["train", "-q", "--filter", "day=3", s(&root)], 2);
    assert!(err.contains("--filter"), "{err}");
    assert!(err.contains("'day' is not a partition key"), "{err}");
    assert!(err.contains("year, month"), "{err}");
    let err = run_err(&["train", "-q", "--filter", "year>2030", s(&root)], 2);
    assert!(err.contains("keeps none of the 4 file(s)"), "{err}");
    let err = run_err(&["train", "-q", "--filter", "year", s(&root)], 2);
    assert!(err.contains("no comparison operator"), "{err}");
    let err = run_err(&["train", "-q", "--filter", "year>abc", s(&root)], 2);
    assert!(err.contains("not a value of partition key 'year'"), "{err}");
    // A string-valued key is not a numeric feature.
    let strings = dir.path().join("strings");
    write_part(&strings.join("city=Oslo/p.parquet"), 50, 1, 7);
    write_part(&strings.join("city=New%20York/p.parquet"), 50, 2, 8);
    let err = run_err(&["train", "-q", "--features", "x,city", s(&strings)], 2);
    assert!(err.contains("partition key 'city' holds strings"), "{err}");
    // A URL-encoded value is decoded for the filter.
    let out = tempdir();
    let (_, report) = train(
        out.path(),
        &[
            "--features",
            "x",
            "--filter",
            "city='New York'",
            s(&strings),
        ],
    );
    assert_eq!(report["rows_per_epoch"], 50, "{report}");
    // A tree with no data file says where it looked.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("year=2024")).unwrap();
    std::fs::write(empty.join("year=2024/_SUCCESS"), b"").unwrap();
    let err = run_err(&["train", "-q", s(&empty)], 2);
    assert!(err.contains("or its subdirectories"), "{err}");
}

/// Writes one file with the columns given.
fn write_columns(path: &Path, columns: Vec<(&str, arrow_array::ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), false))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_parquet(path, &batch, None);
}

#[test]
fn a_column_whose_width_drifted_between_files_is_read_from_each_file_as_it_is() {
    use arrow_array::{ArrayRef, Float64Array, Int32Array, StringArray};
    let dir = tempdir();
    let root = dir.path().join("drift");
    let label = |v: &[f32]| -> ArrayRef { Arc::new(Float32Array::from(v.to_vec())) };
    write_columns(
        &root.join("year=2020/p.parquet"),
        vec![
            ("x", Arc::new(Int32Array::from(vec![1, 2]))),
            ("label", label(&[0.0, 1.0])),
        ],
    );
    write_columns(
        &root.join("year=2021/p.parquet"),
        vec![
            ("x", Arc::new(Int64Array::from(vec![3, 4]))),
            ("label", label(&[1.0, 0.0])),
        ],
    );
    write_columns(
        &root.join("year=2022/p.parquet"),
        vec![
            ("x", Arc::new(Float64Array::from(vec![5.5, 6.5]))),
            ("label", label(&[0.0, 0.0])),
        ],
    );
    let config = streamfit::config::TrainConfig {
        data: vec![root.clone()],
        shuffle: streamfit::pipeline::Shuffle::Off,
        ..streamfit::config::TrainConfig::default()
    };
    let pipeline = common::pipeline(&config);
    let mut features = Vec::new();
    for batch in pipeline.epoch(0).unwrap() {
        features.extend_from_slice(batch.unwrap().rows.features());
    }
    assert_eq!(features, [1.0, 2.0, 3.0, 4.0, 5.5, 6.5]);
    // A column that became a string is still a schema mismatch, naming both files.
    write_columns(
        &root.join("year=2023/p.parquet"),
        vec![
            ("x", Arc::new(StringArray::from(vec!["7", "8"]))),
            ("label", label(&[1.0, 1.0])),
        ],
    );
    let err = run_err(&["train", "-q", "--features", "x", s(&root)], 2);
    assert!(err.contains("year=2023"), "{err}");
}

#[test]
fn convert_keeps_partition_features_and_the_filter_so_shards_train_like_the_tree() {
    let dir = tempdir();
    let root = dir.path().join("data");
    hive_tree(&root);
    let shards = dir.path().join("shards");
    let selection = ["--features", "month,x", "--filter", "month>=2"];
    let mut args = vec!["convert", s(&root), "--out", s(&shards)];
    args.extend_from_slice(&selection);
    run_ok(&args);
    let out = tempdir();
    let mut tree_args = selection.to_vec();
    tree_args.push(s(&root));
    let (tree_model, tree_report) = train(out.path(), &tree_args);
    let out2 = tempdir();
    let (shard_model, _) = train(out2.path(), &[s(&shards)]);
    assert_eq!(tree_report["rows_per_epoch"], 900, "{tree_report}");
    assert_eq!(shard_model["features"], serde_json::json!(["month", "x"]));
    assert_eq!(tree_model["weights"], shard_model["weights"]);
    assert_eq!(tree_model["bias"], shard_model["bias"]);
}
