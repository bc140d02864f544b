//! Flat float32 columns are read straight from their data pages (`data/source/pages.rs`).
//! These files are written with the parquet crate under every layout that path meets: required
//! and optional columns, data pages v1 and v2, several codecs, pages that end at different rows
//! in different columns, blocks smaller than a page, a feature count that is not a multiple of
//! eight, and row groups with a dictionary (read by the arrow path instead). Every row must
//! come back exactly, and a null or NaN must be reported with its row and column.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use streamfit::data::source::{ParquetSource, Source};
use streamfit::data::{ColumnSpec, RowBlock};
use streamfit::error::Error;

const ROWS: usize = 3_000;
const FEATURES: usize = 11;

fn value(row: usize, column: usize) -> f32 {
    ((row * 31 + column * 7) % 1_000) as f32 * 0.125 - 60.0
}

/// `FEATURES` feature columns `f0..` and `label`; columns with an odd index are nullable.
/// Each hole puts a value (null or NaN) at (row, column).
fn batch(holes: &[(usize, usize, Option<f32>)]) -> RecordBatch {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for c in 0..=FEATURES {
        let name = if c == FEATURES {
            "label".to_string()
        } else {
            format!("f{c}")
        };
        let nullable = c % 2 == 1 || holes.iter().any(|&(_, hc, v)| hc == c && v.is_none());
        fields.push(Field::new(name, DataType::Float32, nullable));
        let values =
            (0..ROWS).map(
                |r| match holes.iter().find(|&&(hr, hc, _)| (hr, hc) == (r, c)) {
                    Some(&(_, _, v)) => v,
                    None => Some(value(r, c)),
                },
            );
        columns.push(Arc::new(values.collect::<Float32Array>()));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// Pages of different lengths in different columns, so runs end at every column's boundary.
fn props(version: WriterVersion, codec: Compression, dictionary: bool) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_writer_version(version)
        .set_compression(codec)
        .set_dictionary_enabled(dictionary)
        .set_max_row_group_row_count(Some(1_100))
        .set_write_batch_size(16);
    for c in 0..FEATURES {
        builder = builder.set_column_data_page_row_count_limit(
            ColumnPath::from(format!("f{c}")),
            [50, 64, 97, 200, 333][c % 5],
        );
    }
    builder.build()
}

/// Reads every unit in blocks of at most `block_rows` rows.
fn read(path: &Path, spec: &ColumnSpec, block_rows: usize) -> Result<Vec<RowBlock>, Error> {
    let source = ParquetSource::open(&[path.to_path_buf()], spec)?;
    let mut blocks: Vec<RowBlock> = Vec::new();
    for unit in 0..source.units().len() {
        source.read_unit(unit, block_rows, &mut blocks)?;
    }
    Ok(blocks)
}

fn assert_rows(blocks: &[RowBlock], with_label: bool, what: &str) {
    let mut next = 0;
    for block in blocks {
        for i in 0..block.num_rows() {
            let expected: Vec<f32> = (0..FEATURES).map(|c| value(next, c)).collect();
            assert_eq!(block.row_ids()[i], next as u64, "{what}");
            assert_eq!(block.row(i), expected.as_slice(), "{what}: row {next}");
            let label = if with_label {
                value(next, FEATURES)
            } else {
                0.0
            };
            assert_eq!(block.targets()[i], label, "{what}: label of row {next}");
            next += 1;
        }
    }
    assert_eq!(next, ROWS, "{what}");
}

#[test]
fn every_row_comes_back_exactly_from_pages_of_any_layout() {
    let dir = common::tempdir();
    let path = dir.path().join("flat.parquet");
    let codecs = [
        Compression::UNCOMPRESSED,
        Compression::SNAPPY,
        Compression::ZSTD(ZstdLevel::default()),
    ];
    for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
        for codec in codecs {
            for dictionary in [false, true] {
                common::write_parquet(&path, &batch(&[]), Some(props(version, codec, dictionary)));
                for block_rows in [7, 256, 8_192] {
                    let what = format!(
                        "{version:?} {codec:?} dictionary {dictionary}, blocks of {block_rows}"
                    );
                    assert_rows(
                        &read(&path, &ColumnSpec::default(), block_rows).unwrap(),
                        true,
                        &what,
                    );
                    let no_label = ColumnSpec {
                        ignore_label: true,
                        ..ColumnSpec::default()
                    };
                    assert_rows(&read(&path, &no_label, block_rows).unwrap(), false, &what);
                }
            }
        }
    }
}

/// The bad value `read` stops at: ("null" or "non-finite", row group, row, column).
fn bad_value(path: &Path, block_rows: usize) -> (&'static str, usize, u64, String) {
    match read(path, &ColumnSpec::default(), block_rows) {
        Err(Error::Null {
            row_group,
            row,
            column,
            ..
        }) => ("null", row_group, row, column),
        Err(Error::NonFinite {
            row_group,
            row,
            column,
            ..
        }) => ("non-finite", row_group, row, column),
        other => panic!(
            "expected a null or non-finite error, got {:?}",
            other.map(|b| b.len())
        ),
    }
}

#[test]
fn a_null_or_nan_is_reported_with_its_row_and_column() {
    let dir = common::tempdir();
    let path = dir.path().join("hole.parquet");
    // Row 1,234 is row 134 of the second row group (groups of 1,100 rows).
    for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
        for column in [0, 5, 10, FEATURES] {
            let name = if column == FEATURES {
                "label".to_string()
            } else {
                format!("f{column}")
            };
            for (hole, kind) in [(None, "null"), (Some(f32::NAN), "non-finite")] {
                let props = props(version, Compression::SNAPPY, false);
                common::write_parquet(&path, &batch(&[(1_234, column, hole)]), Some(props));
                assert_eq!(
                    bad_value(&path, 256),
                    (kind, 1, 134, name.clone()),
                    "{version:?}"
                );
            }
        }
    }
}

/// With several bad values the first in row order is reported: a null in `f0` before one in
/// `f4` whose page (rows 0–332 of the row group) starts earlier, and an infinity in `f3` before
/// a null in `f4` in the same block.
#[test]
fn the_first_bad_value_in_row_order_is_reported() {
    let dir = common::tempdir();
    let path = dir.path().join("holes.parquet");
    for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
        let props = || props(version, Compression::SNAPPY, false);
        common::write_parquet(
            &path,
            &batch(&[(1_400, 4, None), (1_234, 0, None)]),
            Some(props()),
        );
        assert_eq!(
            bad_value(&path, 8_192),
            ("null", 1, 134, "f0".to_string()),
            "{version:?}"
        );
        let holes = [(1_250, 4, None), (1_234, 3, Some(f32::INFINITY))];
        common::write_parquet(&path, &batch(&holes), Some(props()));
        assert_eq!(
            bad_value(&path, 8_192),
            ("non-finite", 1, 134, "f3".to_string()),
            "{version:?}"
        );
    }
}
