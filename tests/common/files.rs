//! Test data on disk: generated datasets and their shard conversion, Parquet files written and
//! read with the parquet crate itself (not with streamfit, so that a test compares streamfit
//! against an independent reader), and JSON files (reports, models). No training here.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use streamfit::convert::{ConvertConfig, ConvertSummary, convert};
use streamfit::data::ColumnSpec;
use streamfit::data::source::write::Compression;
use streamfit::generate::{GenerateConfig, Task, Truth, generate};

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes a generated dataset into `dir` and returns its truth.
pub fn dataset(
    dir: &Path,
    task: Task,
    rows: u64,
    features: usize,
    shards: usize,
    row_group_rows: usize,
    seed: u64,
) -> Truth {
    generate(
        &GenerateConfig {
            task,
            rows,
            features,
            shards,
            row_group_rows,
            compression: Compression::Snappy,
            seed,
            noise_std: 0.1,
            out: dir.to_path_buf(),
            ..GenerateConfig::default()
        },
        &|_| {},
    )
    .expect("generate")
}

/// Converts the Parquet dataset `from` (default columns) into shards at `out`.
pub fn to_shards(
    from: &Path,
    out: &Path,
    shard_rows: Option<u64>,
    num_readers: usize,
) -> ConvertSummary {
    convert(
        &ConvertConfig {
            data: vec![from.to_path_buf()],
            columns: ColumnSpec::default(),
            out: out.to_path_buf(),
            shard_rows,
            num_readers,
            ..ConvertConfig::default()
        },
        &mut |_| {},
    )
    .expect("convert")
}

/// Writes `batch` as one Parquet file with the parquet crate's writer (its default properties
/// when `props` is `None`).
pub fn write_parquet(path: &Path, batch: &RecordBatch, props: Option<WriterProperties>) {
    let file = File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), props).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// The `.parquet` files directly in `dir`, sorted by name (the order streamfit reads them in).
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

/// Every record batch of one Parquet file, read with the parquet crate's arrow reader.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// The float32 column `name` of `batches`, concatenated.
pub fn f32_column(batches: &[RecordBatch], name: &str) -> Vec<f32> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .unwrap_or_else(|| panic!("column {name}"))
                .as_primitive::<Float32Type>()
                .values()
                .to_vec()
        })
        .collect()
}

/// A JSON file (a report, a model, a trace), parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// One file of a hive-partitioned test tree (tests/hive.rs, tests/object_store.rs): `rows`
/// rows of `x` in [-1, 1), a `row` number and a 0/1 `label` that depends on `x` and on the
/// file's `month` (so a model that sees `month` fits better), from an LCG seeded by `seed`;
/// row groups of `row_group_rows` when given. Creates the file's directories.
pub fn write_hive_part(
    path: &Path,
    rows: usize,
    month: i64,
    seed: u64,
    row_group_rows: Option<usize>,
) {
    use arrow_array::{Float32Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32) / ((1u64 << 24) as f32)
    };
    let x: Vec<f32> = (0..rows).map(|_| next() * 2.0 - 1.0).collect();
    let label: Vec<f32> = x
        .iter()
        .map(|&x| {
            let score = 2.0 * x + 0.8 * (month as f32 - 2.5) + (next() - 0.5);
            if score > 0.0 { 1.0 } else { 0.0 }
        })
        .collect();
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float32, false),
        Field::new("row", DataType::Int64, false),
        Field::new("label", DataType::Float32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            std::sync::Arc::new(Float32Array::from(x)),
            std::sync::Arc::new(Int64Array::from((0..rows as i64).collect::<Vec<_>>())),
            std::sync::Arc::new(Float32Array::from(label)),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = row_group_rows.map(|n| {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(n))
            .build()
    });
    write_parquet(path, &batch, props);
}

/// Writes `columns` as one Parquet file, every field nullable, with the parquet crate's default
/// properties.
pub fn write_columns(path: &Path, columns: Vec<(&str, arrow_array::ArrayRef)>) {
    let fields: Vec<arrow_schema::Field> = columns
        .iter()
        .map(|(name, array)| arrow_schema::Field::new(*name, array.data_type().clone(), true))
        .collect();
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
    let batch =
        RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    write_parquet(path, &batch, None);
}
