//! Parquet as other writers produce it: every codec pyarrow writes, dictionary encoding on and
//! off, data pages v1 and v2, BYTE_STREAM_SPLIT, one row group and many, and a directory of
//! files each written with a different codec. Each file is written here with the parquet
//! crate's own writer, and every row must come back exactly (features cast to f32, in order).

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch};
use parquet::basic::{BrotliLevel, Compression, Encoding, GzipLevel, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use streamfit::config::TrainConfig;
use streamfit::data::{ColumnSpec, RowBlock};
use streamfit::train::BatchSize;

const ROWS: usize = 1_000;

/// Columns: f32 `a`, f64 `b`, i32 `c`, i64 `d`, and an f32 `label`; values with repeats (so
/// dictionaries are worth building) and exact in f32.
fn batch(first: usize, rows: usize) -> RecordBatch {
    let ids = first..first + rows;
    let col = |f: &dyn Fn(usize) -> f64| ids.clone().map(f).collect::<Vec<f64>>();
    let a = col(&|i| (i % 17) as f64 * 0.25 - 2.0);
    let b = col(&|i| (i as f64) * 0.5);
    let c = col(&|i| (i % 5) as f64 - 2.0);
    let d = col(&|i| (i * 3) as f64);
    let label = col(&|i| (i % 2) as f64);
    RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Float32Array::from_iter_values(a.iter().map(|&v| v as f32))) as ArrayRef,
        ),
        ("b", Arc::new(Float64Array::from(b))),
        (
            "c",
            Arc::new(Int32Array::from_iter_values(c.iter().map(|&v| v as i32))),
        ),
        (
            "d",
            Arc::new(Int64Array::from_iter_values(d.iter().map(|&v| v as i64))),
        ),
        (
            "label",
            Arc::new(Float32Array::from_iter_values(
                label.iter().map(|&v| v as f32),
            )),
        ),
    ])
    .unwrap()
}

/// The rows `batch(0, ROWS)` holds, as streamfit should decode them.
fn expected_row(i: usize) -> (Vec<f32>, f32) {
    (
        vec![
            (i % 17) as f32 * 0.25 - 2.0,
            i as f32 * 0.5,
            (i % 5) as f32 - 2.0,
            (i * 3) as f32,
        ],
        (i % 2) as f32,
    )
}

fn write(path: &Path, props: WriterProperties, first: usize, rows: usize) {
    common::write_parquet(path, &batch(first, rows), Some(props));
}

/// Reads `data` with streamfit and checks every row against [`expected_row`].
fn assert_reads_back(data: &Path, what: &str) {
    let config = TrainConfig {
        data: vec![data.to_path_buf()],
        columns: ColumnSpec::default(),
        ..common::config(data, BatchSize::Rows(32))
    };
    let mut next = 0usize;
    common::pipeline(&config)
        .scan(|block: &RowBlock| {
            for i in 0..block.num_rows() {
                let (x, y) = expected_row(next);
                assert_eq!(block.row_ids()[i], next as u64, "{what}");
                assert_eq!(block.row(i), x.as_slice(), "{what}: row {next}");
                assert_eq!(block.targets()[i], y, "{what}: row {next}");
                next += 1;
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(next, ROWS, "{what}");
}

fn codecs() -> Vec<(&'static str, Compression)> {
    vec![
        ("uncompressed", Compression::UNCOMPRESSED),
        ("snappy", Compression::SNAPPY),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("lz4_raw", Compression::LZ4_RAW),
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("brotli", Compression::BROTLI(BrotliLevel::default())),
    ]
}

#[test]
fn every_codec_dictionary_setting_page_version_and_row_group_layout_reads_back() {
    let dir = common::tempdir();
    for (name, codec) in codecs() {
        for dictionary in [false, true] {
            for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
                for row_group_rows in [ROWS, 97] {
                    let what = format!(
                        "{name}, dictionary {dictionary}, {version:?}, row groups of {row_group_rows}"
                    );
                    let props = WriterProperties::builder()
                        .set_compression(codec)
                        .set_dictionary_enabled(dictionary)
                        .set_writer_version(version)
                        .set_max_row_group_row_count(Some(row_group_rows))
                        .set_data_page_row_count_limit(64)
                        .build();
                    let path = dir.path().join("file.parquet");
                    write(&path, props, 0, ROWS);
                    assert_reads_back(&path, &what);
                }
            }
        }
    }
}

#[test]
fn byte_stream_split_reads_back() {
    let dir = common::tempdir();
    for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
        let props = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_encoding(Encoding::BYTE_STREAM_SPLIT)
            .set_writer_version(version)
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let path = dir.path().join("bss.parquet");
        write(&path, props, 0, ROWS);
        assert_reads_back(&path, &format!("byte stream split, {version:?}"));
    }
}

#[test]
fn a_directory_of_files_with_different_codecs_is_one_dataset() {
    let dir = common::tempdir();
    let codecs = codecs();
    let per_file = ROWS / codecs.len() + 1;
    let mut first = 0;
    for (k, (_, codec)) in codecs.into_iter().enumerate() {
        let rows = per_file.min(ROWS - first);
        let props = WriterProperties::builder()
            .set_compression(codec)
            .set_max_row_group_row_count(Some(50))
            .build();
        write(
            &dir.path().join(format!("part-{k}.parquet")),
            props,
            first,
            rows,
        );
        first += rows;
    }
    assert_eq!(first, ROWS);
    assert_reads_back(dir.path(), "six files, six codecs");
}
