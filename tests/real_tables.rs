//! Issue 15 (real tables): columns as pandas, Polars and DuckDB write them. Decimal, float16,
//! date, timestamp and duration columns are numeric features, decoded exactly as documented
//! (a decimal's value, seconds since the Unix epoch, days since the epoch, seconds), in the
//! default feature set and by name, with the cast shown by `inspect`.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Float16Type;
use arrow_array::{
    ArrayRef, ArrowPrimitiveType, Date32Array, Date64Array, Decimal128Array, Decimal256Array,
    DurationMillisecondArray, Float16Array, Float32Array, RecordBatch, TimestampMicrosecondArray,
    TimestampNanosecondArray, TimestampSecondArray,
};
use arrow_schema::{DataType, Field, Schema};

type F16 = <Float16Type as ArrowPrimitiveType>::Native;

/// Writes one Parquet file with the given columns (all nullable).
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
