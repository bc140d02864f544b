//! Issue 15 (real tables), labels: `--positive-label` maps a label of any scalar type to 1 and
//! 0 (string, dictionary, boolean, -1/+1 and 1/2 integers), refuses a value never seen, is
//! saved with the model so `eval` maps the same; and the README's real-world command on a
//! table as pandas writes one (an id and a city string, the city one-hot encoded, a decimal,
//! NaN, nulls, a timestamp, a boolean, a pandas index column, a yes/no label).

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Decimal128Array, Float32Array, RecordBatch, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema};

/// Writes one Parquet file with the given columns (all nullable).
fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    common::write_columns(path, columns);
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A table whose label is the string `yes` or `no`, and whose feature says which.
fn yes_no_table(path: &Path) {
    let x = Float32Array::from(vec![2.0_f32, -2.0, 1.5, -1.0, 3.0, -2.5, 1.0, -3.0]);
    let answer =
        arrow_array::StringArray::from(vec!["yes", "no", "yes", "no", "yes", "no", "yes", "no"]);
    write(
        path,
        vec![("x", Arc::new(x) as ArrayRef), ("answer", Arc::new(answer))],
    );
}

#[test]
fn positive_label_maps_string_dictionary_boolean_and_integer_labels_to_one_and_zero() {
    let dir = common::tempdir();
    let targets = |label: ArrayRef, positive: &str| {
        let file = dir.path().join("labels.parquet");
        let x: ArrayRef = Arc::new(Float32Array::from(vec![0.0_f32; label.len()]));
        write(&file, vec![("x", x), ("label", label)]);
        let mut config = streamfit::config::TrainConfig {
            data: vec![file],
            shuffle: streamfit::pipeline::Shuffle::Off,
            ..streamfit::config::TrainConfig::default()
        };
        config.columns.positive_label = Some(positive.to_string());
        let pipeline = common::pipeline(&config);
        let mut y = Vec::new();
        for batch in pipeline.epoch(0).unwrap() {
            y.extend_from_slice(batch.unwrap().rows.targets());
        }
        y
    };
    let strings = arrow_array::StringArray::from(vec!["yes", "no", "maybe", "yes"]);
    assert_eq!(targets(Arc::new(strings), "yes"), [1.0, 0.0, 0.0, 1.0]);
    let dictionary: arrow_array::DictionaryArray<arrow_array::types::Int32Type> =
        vec!["b", "a", "b", "c"].into_iter().collect();
    assert_eq!(targets(Arc::new(dictionary), "b"), [1.0, 0.0, 1.0, 0.0]);
    let signs = arrow_array::Int64Array::from(vec![-1_i64, 1, 1, -1]);
    assert_eq!(targets(Arc::new(signs), "1"), [0.0, 1.0, 1.0, 0.0]);
    let ones_twos = arrow_array::Int32Array::from(vec![2, 1, 2, 2]);
    assert_eq!(targets(Arc::new(ones_twos), "2"), [1.0, 0.0, 1.0, 1.0]);
    let flags = arrow_array::BooleanArray::from(vec![true, false, false, true]);
    assert_eq!(targets(Arc::new(flags), "false"), [0.0, 1.0, 1.0, 0.0]);
}

#[test]
fn a_string_label_trains_with_positive_label_and_eval_maps_it_from_the_model() {
    let dir = common::tempdir();
    let file = dir.path().join("yes_no.parquet");
    yes_no_table(&file);
    let model = dir.path().join("model.json");
    // Without the flag a string label is refused, naming its type.
    let stderr = common::run_err(&["train", s(&file), "--label", "answer", "--quiet"], 2);
    assert!(
        stderr.contains("answer") && stderr.contains("Utf8"),
        "{stderr}"
    );
    common::run_ok(&[
        "train",
        s(&file),
        "--label",
        "answer",
        "--positive-label",
        "yes",
        "--model",
        "logistic",
        "--epochs",
        "20",
        "--batch-size",
        "4",
        "--lr",
        "0.5",
        "--save-model",
        s(&model),
        "--quiet",
    ]);
    let saved = common::read_json(&model);
    assert_eq!(saved["version"], 3);
    assert_eq!(saved["positive_label"], "yes");
    // The rows are separable by the sign of x: eval on the raw file, with no flags, scores
    // every row right.
    let eval = common::run_ok(&["eval", "--json", "--model", s(&model), s(&file)]);
    let report: serde_json::Value = serde_json::from_str(&eval.stdout).unwrap();
    assert_eq!(report["accuracy"], 1.0, "{report}");
}

#[test]
fn a_positive_label_never_seen_is_refused() {
    let dir = common::tempdir();
    let file = dir.path().join("yes_no.parquet");
    yes_no_table(&file);
    let stderr = common::run_err(
        &[
            "train",
            s(&file),
            "--label",
            "answer",
            "--positive-label",
            "Yes",
            "--quiet",
        ],
        2,
    );
    assert!(
        stderr.contains("--positive-label")
            && stderr.contains("`Yes` never occurs in label column `answer`"),
        "{stderr}"
    );
}

#[test]
fn minus_one_plus_one_labels_are_refused_for_logistic_unless_mapped() {
    let dir = common::tempdir();
    let file = dir.path().join("signs.parquet");
    let x: ArrayRef = Arc::new(Float32Array::from(vec![1.0_f32, -1.0, 2.0, -2.0]));
    let label: ArrayRef = Arc::new(arrow_array::Int32Array::from(vec![1, -1, 1, -1]));
    write(&file, vec![("x", x), ("label", label)]);
    let stderr = common::run_err(&["train", s(&file), "--model", "logistic", "--quiet"], 2);
    assert!(stderr.contains("label"), "{stderr}");
    common::run_ok(&[
        "train",
        s(&file),
        "--model",
        "logistic",
        "--positive-label",
        "1",
        "--quiet",
    ]);
}

/// A customer table as pandas writes one: an id string, a city string, a DECIMAL(12,2) price
/// in the thousands, a float64 discount with NaN, an int64 age with nulls, a UTC timestamp, a
/// boolean, a pandas index column and a yes/no label that follows the price.
fn customers(path: &Path, rows: usize) {
    let price: Vec<i128> = (0..rows)
        .map(|i| 100_000 + (i as i128 * 7919) % 400_000)
        .collect();
    let churned: Vec<&str> = price
        .iter()
        .map(|&p| if p > 300_000 { "yes" } else { "no" })
        .collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "customer_id",
            Arc::new(arrow_array::StringArray::from_iter_values(
                (0..rows).map(|i| format!("c{i}")),
            )),
        ),
        (
            "city",
            Arc::new(arrow_array::StringArray::from_iter_values(
                (0..rows).map(|i| ["Oslo", "Lima", "Pune"][i % 3]),
            )),
        ),
        (
            "price",
            Arc::new(
                Decimal128Array::from(price)
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
            ),
        ),
        (
            "discount",
            Arc::new(arrow_array::Float64Array::from_iter_values((0..rows).map(
                |i| {
                    if i % 7 == 0 {
                        f64::NAN
                    } else {
                        (i % 10) as f64 / 20.0
                    }
                },
            ))),
        ),
        (
            "age",
            Arc::new(arrow_array::Int64Array::from_iter(
                (0..rows).map(|i| (i % 5 != 0).then_some(20 + (i % 50) as i64)),
            )),
        ),
        (
            "signed_up",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    (0..rows).map(|i| 1_700_000_000_000_000 + i as i64 * 3_600_000_000),
                )
                .with_timezone("UTC"),
            ),
        ),
        (
            "premium",
            Arc::new(arrow_array::BooleanArray::from_iter(
                (0..rows).map(|i| Some(i % 4 == 0)),
            )),
        ),
        (
            "__index_level_0__",
            Arc::new(arrow_array::Int64Array::from_iter_values(
                (0..rows).map(|i| (rows - i) as i64),
            )),
        ),
        ("churned", Arc::new(arrow_array::StringArray::from(churned))),
    ];
    write(path, columns);
}

#[test]
fn the_readme_real_world_command_trains_on_a_customer_table_and_predict_takes_it_raw() {
    let dir = common::tempdir();
    let file = dir.path().join("customers.parquet");
    customers(&file, 600);
    let model = dir.path().join("model.json");
    // The README's command, with this test's paths.
    let out = common::run_ok(&[
        "train",
        s(&file),
        "--label",
        "churned",
        "--positive-label",
        "yes",
        "--model",
        "logistic",
        "--categorical",
        "auto",
        "--exclude",
        "customer_id",
        "--fill-nulls",
        "mean",
        "--null-indicators",
        "--standardize",
        "--save-model",
        s(&model),
        "--epochs",
        "30",
    ]);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("not used:") && text.contains("customer_id"),
        "{text}"
    );
    assert!(
        text.contains("__index_level_0__ (Int64, pandas index)"),
        "{text}"
    );
    let saved = common::read_json(&model);
    assert_eq!(
        saved["features"],
        serde_json::json!([
            "price",
            "discount",
            "age",
            "signed_up",
            "premium",
            "discount_is_null",
            "age_is_null",
            "city=Lima",
            "city=Oslo",
            "city=Pune",
            "city=<other>"
        ])
    );
    // The label follows the price alone: the model separates the classes.
    let eval = common::run_ok(&["eval", "--json", "--model", s(&model), s(&file)]);
    let report: serde_json::Value = serde_json::from_str(&eval.stdout).unwrap();
    assert!(report["accuracy"].as_f64().unwrap() > 0.95, "{report}");
    let predictions = dir.path().join("p.parquet");
    common::run_ok(&[
        "predict",
        "--model",
        s(&model),
        s(&file),
        "--out",
        s(&predictions),
    ]);
    let scores = common::f32_column(&common::read_parquet(&predictions), "probability");
    assert_eq!(scores.len(), 600);
}

/// Ten rows whose labels at rows 2 and 7 are null; `x` is the row number. With
/// `statistics` off the footer holds no null counts, so they are counted by reading.
fn null_labels_table(path: &Path, statistics: bool) {
    let x: ArrayRef = Arc::new(Float32Array::from_iter_values((0..10).map(|i| i as f32)));
    let label: ArrayRef = Arc::new(Float32Array::from_iter(
        (0..10).map(|i| (i != 2 && i != 7).then_some((i % 2) as f32)),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float32, false),
        Field::new("label", DataType::Float32, true),
    ]));
    let batch = RecordBatch::try_new(schema, vec![x, label]).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .set_statistics_enabled(if statistics {
            parquet::file::properties::EnabledStatistics::Chunk
        } else {
            parquet::file::properties::EnabledStatistics::None
        })
        .build();
    common::write_parquet(path, &batch, Some(props));
}

#[test]
fn drop_null_labels_leaves_those_rows_out_with_exact_counts_and_contiguous_ids() {
    let dir = common::tempdir();
    for statistics in [true, false] {
        let file = dir.path().join(format!("nulls_{statistics}.parquet"));
        null_labels_table(&file, statistics);
        let mut config = streamfit::config::TrainConfig {
            data: vec![file.clone()],
            shuffle: streamfit::pipeline::Shuffle::Off,
            batch_size: streamfit::train::BatchSize::Rows(3),
            ..streamfit::config::TrainConfig::default()
        };
        config.columns.drop_null_labels = true;
        let pipeline = common::pipeline(&config);
        assert_eq!(pipeline.source().num_rows(), 8, "statistics {statistics}");
        assert_eq!(pipeline.steps_in_epoch(0), 3);
        let (mut x, mut y, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        for batch in pipeline.epoch(0).unwrap() {
            let batch = batch.unwrap();
            x.extend_from_slice(batch.rows.features());
            y.extend_from_slice(batch.rows.targets());
            ids.extend_from_slice(batch.rows.row_ids());
        }
        assert_eq!(x, [0.0, 1.0, 3.0, 4.0, 5.0, 6.0, 8.0, 9.0]);
        assert_eq!(y, [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        assert_eq!(ids, (0..8).collect::<Vec<u64>>());
    }
}

#[test]
fn a_null_label_is_an_error_naming_drop_null_labels_which_skips_and_counts_them() {
    let dir = common::tempdir();
    let file = dir.path().join("nulls.parquet");
    null_labels_table(&file, true);
    let stderr = common::run_err(&["train", s(&file), "--quiet"], 2);
    assert!(
        stderr.contains("null in column `label`") && stderr.contains("--drop-null-labels"),
        "{stderr}"
    );
    let out = common::run_ok(&[
        "train",
        s(&file),
        "--drop-null-labels",
        "--batch-size",
        "3",
        "--epochs",
        "1",
        "--model",
        "logistic",
    ]);
    assert!(
        out.stdout
            .contains("labels: 2 rows with a null label left out, 8 kept"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("epoch 1/1: 3 iterations, 8 rows"),
        "{}",
        out.stdout
    );
}
