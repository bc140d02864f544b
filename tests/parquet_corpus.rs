//! The Apache parquet-testing corpus (`fixtures/parquet-testing/`, vendored from the corpus; described file by file in
//! its `CATALOG.md`): `inspect --stats` honours every verdict. (a) files read (with the
//! columns the catalog suggests), (b) files are rejected naming the column and its type (or
//! saying null, NaN or no rows), (c) files are rejected as corrupt or encrypted. Every file
//! gets a timeout; none may panic. The table must cover every file in the corpus.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `inspect --stats --json FILE ARGS` must do.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Exit 0 having read this many rows.
    Rows(u64),
    /// Exit 2 with this text in the message.
    Fails(&'static str),
    /// Exit 0 or 2 (the catalog accepts either outcome), never a panic.
    Either,
}

use Expect::{Either, Fails, Rows};

const UNSUPPORTED: &str = "unsupported type";
const NULL: &str = "null in column";
const NAN: &str = "non-finite value";
const ENCRYPTED: &str = "is encrypted";

/// (file, flags, expectation), following CATALOG.md.
#[rustfmt::skip]
const CASES: &[(&str, &[&str], Expect)] = &[
    // (a, select): numeric features with bool_col as the label.
    ("data/alltypes_dictionary.parquet", &["--label", "bool_col", "--features", "int_col,bigint_col,float_col,double_col"], Rows(2)),
    ("data/alltypes_plain.parquet", &["--label", "bool_col", "--features", "int_col,bigint_col,float_col,double_col"], Rows(8)),
    ("data/alltypes_plain.snappy.parquet", &["--label", "bool_col", "--features", "int_col,bigint_col,float_col,double_col"], Rows(2)),
    ("data/alltypes_tiny_pages.parquet", &["--label", "bool_col", "--features", "tinyint_col,smallint_col,int_col,bigint_col,float_col,double_col"], Rows(7300)),
    ("data/alltypes_tiny_pages_plain.parquet", &["--label", "bool_col", "--features", "tinyint_col,smallint_col,int_col,bigint_col,float_col,double_col"], Rows(7300)),
    // (b) when a non-numeric column must be used.
    ("data/alltypes_plain.parquet", &["--label", "bool_col", "--features", "string_col"], Fails("column `string_col` has unsupported type Binary")),
    ("data/binary.parquet", &["--label", "foo"], Fails(UNSUPPORTED)),
    ("data/binary_truncated_min_max.parquet", &["--label", "utf8_full_truncation"], Fails(UNSUPPORTED)),
    ("data/byte_array_decimal.parquet", &["--label", "value"], Rows(24)), // decimals are numbers (issue 15)
    ("data/byte_stream_split.zstd.parquet", &["--label", "f64", "--features", "f32"], Rows(300)),
    ("data/byte_stream_split_extended.gzip.parquet", &["--label", "double_byte_stream_split", "--features", "float_plain,float_byte_stream_split,double_plain,int32_plain,int32_byte_stream_split,int64_plain,int64_byte_stream_split"], Rows(200)),
    ("data/byte_stream_split_extended.gzip.parquet", &["--label", "double_plain", "--features", "float16_byte_stream_split"], Rows(200)),
    ("data/byte_stream_split_extended.gzip.parquet", &["--label", "double_plain", "--features", "flba5_byte_stream_split"], Fails(UNSUPPORTED)),
    ("data/column_chunk_key_value_metadata.parquet", &["--label", "column1"], Fails("no rows")),
    ("data/concatenated_gzip_members.parquet", &["--label", "long_col"], Rows(513)),
    ("data/data_index_bloom_encoding_stats.parquet", &["--label", "String"], Fails(UNSUPPORTED)),
    ("data/data_index_bloom_encoding_with_length.parquet", &["--label", "String"], Fails(UNSUPPORTED)),
    ("data/datapage_v1-uncompressed-checksum.parquet", &["--label", "a", "--features", "b"], Rows(5120)),
    ("data/datapage_v1-snappy-compressed-checksum.parquet", &["--label", "a", "--features", "b"], Rows(5120)),
    // Policy: page CRCs are checked (the parquet `crc` feature), so a wrong CRC is corruption.
    ("data/datapage_v1-corrupt-checksum.parquet", &["--label", "a", "--features", "b"], Fails("CRC checksum mismatch")),
    ("data/datapage_v2.snappy.parquet", &["--label", "d", "--features", "b,c"], Rows(5)),
    ("data/datapage_v2.snappy.parquet", &["--label", "d", "--features", "a"], Fails(UNSUPPORTED)),
    ("data/datapage_v2_empty_datapage.snappy.parquet", &["--label", "value"], Fails(NULL)),
    ("data/delta_binary_packed.parquet", &["--label", "int_value"], Rows(200)),
    ("data/delta_byte_array.parquet", &["--label", "c_customer_id"], Fails(UNSUPPORTED)),
    ("data/delta_encoding_optional_column.parquet", &["--label", "c_customer_sk", "--features", "c_current_addr_sk"], Rows(100)),
    ("data/delta_encoding_optional_column.parquet", &["--label", "c_customer_sk"], Fails(NULL)),
    ("data/delta_encoding_required_column.parquet", &["--label", "c_customer_sk:"], Rows(100)),
    ("data/delta_length_byte_array.parquet", &["--label", "FRUIT"], Fails(UNSUPPORTED)),
    // Catalog: (a). Dremio wrote a list where the format has the optional i32
    // bloom_filter_length (field 15); the footer is read without that field.
    ("data/dict-page-offset-zero.parquet", &["--label", "l_partkey"], Rows(39)),
    ("data/fixed_length_byte_array.parquet", &["--label", "flba_field"], Fails(UNSUPPORTED)),
    ("data/fixed_length_decimal.parquet", &["--label", "value"], Rows(24)),
    ("data/fixed_length_decimal_legacy.parquet", &["--label", "value"], Rows(24)),
    ("data/float16_nonzeros_and_nans.parquet", &["--label", "x"], Fails(NULL)), // float16 is read; its first value is null
    ("data/float16_zeros_and_nans.parquet", &["--label", "x"], Fails(NULL)),
    ("data/floating_orders_nan_count.parquet", &["--label", "double_ieee754", "--features", "float_ieee754,float_typedef,double_typedef"], Fails(NAN)),
    ("data/hadoop_lz4_compressed.parquet", &["--label", "v11", "--features", "c0"], Rows(4)),
    ("data/hadoop_lz4_compressed_larger.parquet", &["--label", "a"], Fails(UNSUPPORTED)),
    ("data/incorrect_map_schema.parquet", &["--label", "my_map"], Fails("my_map")),
    ("data/int32_decimal.parquet", &["--label", "value"], Rows(24)),
    ("data/int32_with_null_pages.parquet", &["--label", "int32_field"], Fails(NULL)),
    ("data/int64_decimal.parquet", &["--label", "value"], Rows(24)),
    ("data/int96_from_spark.parquet", &["--label", "a"], Fails(NULL)), // an INT96 timestamp is read as seconds; row 4 is null
    // The decompression bomb: rejected from its schema, no page decompressed.
    ("data/large_string_map.brotli.parquet", &["--label", "arr"], Fails("Map")),
    ("data/list_columns.parquet", &["--label", "int64_list"], Fails(UNSUPPORTED)),
    ("data/list_columns.parquet", &["--label", "utf8_list"], Fails(UNSUPPORTED)),
    ("data/lz4_raw_compressed.parquet", &["--label", "v11", "--features", "c0"], Rows(4)),
    ("data/lz4_raw_compressed_larger.parquet", &["--label", "a"], Fails(UNSUPPORTED)),
    ("data/map_no_value.parquet", &["--label", "my_map"], Fails(UNSUPPORTED)),
    ("data/nan_in_stats.parquet", &["--label", "x"], Fails(NAN)),
    ("data/nation.dict-malformed.parquet", &["--label", "nation_key", "--features", "region_key"], Either),
    ("data/nested_lists.snappy.parquet", &["--label", "b", "--features", "a"], Fails(UNSUPPORTED)),
    ("data/nested_maps.snappy.parquet", &["--label", "c", "--features", "b"], Rows(6)),
    ("data/nested_maps.snappy.parquet", &["--label", "c", "--features", "a"], Fails(UNSUPPORTED)),
    ("data/nested_structs.rust.parquet", &["--label", "roll_num"], Fails(UNSUPPORTED)),
    ("data/non_hadoop_lz4_compressed.parquet", &["--label", "v11", "--features", "c0"], Rows(4)),
    ("data/nonnullable.impala.parquet", &["--label", "ID", "--features", "Int_Array"], Fails(UNSUPPORTED)),
    ("data/null_list.parquet", &["--label", "emptylist"], Fails(UNSUPPORTED)),
    ("data/nullable.impala.parquet", &["--label", "id", "--features", "int_array"], Fails(UNSUPPORTED)),
    ("data/nulls.snappy.parquet", &["--label", "b_struct"], Fails(UNSUPPORTED)),
    ("data/old_list_structure.parquet", &["--label", "a"], Fails(UNSUPPORTED)),
    // Reader test: all 40,000 rows of more than 32,767 pages; no feature column to train on.
    ("data/overflow_i16_page_cnt.parquet", &["--label", "inc"], Rows(40_000)),
    ("data/page_v2_empty_compressed.parquet", &["--label", "integer_column"], Fails(NULL)),
    ("data/plain-dict-uncompressed-checksum.parquet", &["--label", "long_field"], Rows(1000)),
    // The file footer says 0 rows, the row group 6, and the Rust reader decodes none: the
    // disagreement is reported, never miscounted.
    ("data/repeated_no_annotation.parquet", &["--label", "id"], Fails("footer says 6 rows but the pages hold 0")),
    ("data/repeated_no_annotation.parquet", &["--label", "id", "--features", "phoneNumbers"], Fails(UNSUPPORTED)),
    ("data/repeated_primitive_no_list.parquet", &["--label", "Int32_list"], Fails(UNSUPPORTED)),
    ("data/rle-dict-snappy-checksum.parquet", &["--label", "long_field"], Rows(1000)),
    ("data/rle-dict-uncompressed-corrupt-checksum.parquet", &["--label", "long_field"], Fails("CRC checksum mismatch")),
    ("data/rle_boolean_encoding.parquet", &["--label", "datatype_boolean"], Fails(NULL)),
    ("data/single_nan.parquet", &["--label", "mycol"], Fails(NULL)),
    ("data/sort_columns.parquet", &["--label", "a"], Fails(NULL)),
    ("data/sort_columns.parquet", &["--label", "a", "--features", "b"], Fails(UNSUPPORTED)),
    ("data/unknown-logical-type.parquet", &["--label", "column with known type"], Fails(UNSUPPORTED)),
    ("data/unknown-logical-type.parquet", &["--label", "column with unknown type"], Fails(UNSUPPORTED)),
    // Geospatial: binary geometry columns, read as plain binary and rejected as a type.
    ("data/geospatial/crs-arbitrary-value.parquet", &["--label", "wkt"], Fails(UNSUPPORTED)),
    ("data/geospatial/crs-default.parquet", &["--label", "wkt"], Fails(UNSUPPORTED)),
    ("data/geospatial/crs-geography.parquet", &["--label", "wkt"], Fails(UNSUPPORTED)),
    ("data/geospatial/crs-projjson.parquet", &["--label", "wkt"], Fails(UNSUPPORTED)),
    ("data/geospatial/crs-srid.parquet", &["--label", "wkt"], Fails(UNSUPPORTED)),
    ("data/geospatial/geography-lines.parquet", &["--label", "id", "--features", "geometry"], Fails(UNSUPPORTED)),
    ("data/geospatial/geography-points.parquet", &["--label", "id", "--features", "geometry"], Fails(UNSUPPORTED)),
    ("data/geospatial/geography-polygons.parquet", &["--label", "id", "--features", "geometry"], Fails(UNSUPPORTED)),
    ("data/geospatial/geospatial-with-nan.parquet", &["--label", "wkt"], Fails(UNSUPPORTED)),
    ("data/geospatial/geospatial.parquet", &["--label", "wkt"], Fails(UNSUPPORTED)),
    // Encrypted: (c), saying so, including the two with a plaintext footer.
    ("data/encrypt_columns_and_footer.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/encrypt_columns_and_footer_aad.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/encrypt_columns_and_footer_bloom_filter.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/encrypt_columns_and_footer_ctr.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/encrypt_columns_and_footer_disable_aad_storage.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/encrypt_columns_plaintext_footer.parquet.encrypted", &["--label", "double_field", "--features", "float_field"], Fails(ENCRYPTED)),
    ("data/uniform_encryption.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/external_key_material_java.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/_KEY_MATERIAL_FOR_external_key_material_java.parquet.encrypted.json", &["--label", "x"], Fails("corrupt parquet")),
    ("data/aes256/encrypt_columns_and_footer.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/aes256/encrypt_columns_and_footer_ctr.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/aes256/encrypt_columns_and_footer_disable_aad_storage.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    ("data/aes256/encrypt_columns_plaintext_footer.parquet.encrypted", &["--label", "double_field", "--features", "float_field"], Fails(ENCRYPTED)),
    ("data/aes256/uniform_encryption.parquet.encrypted", &["--label", "double_field"], Fails(ENCRYPTED)),
    // bad_data: (c), except ARROW-GH-43605 which is legal and must read.
    ("bad_data/ARROW-GH-41317.parquet", &["--label", "int32"], Fails("corrupt parquet")),
    ("bad_data/ARROW-GH-41321.parquet", &["--label", "int32", "--features", "float64"], Fails("")),
    ("bad_data/ARROW-GH-43605.parquet", &["--label", "min_fl"], Rows(21_186)),
    ("bad_data/ARROW-GH-45185.parquet", &["--label", "x"], Fails("")),
    ("bad_data/ARROW-GH-47662.parquet", &["--label", "flba_field"], Fails("")),
    ("bad_data/ARROW-RS-GH-6229-DICTHEADER.parquet", &["--label", "nation_key", "--features", "region_key"], Fails("corrupt parquet")),
    ("bad_data/ARROW-RS-GH-6229-LEVELS.parquet", &["--label", "outer"], Fails("")),
    ("bad_data/PARQUET-1481.parquet", &["--label", "x"], Fails("corrupt parquet")),
];

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parquet-testing");
    assert!(
        dir.join("CATALOG.md").is_file(),
        "the parquet-testing corpus is missing at {}",
        dir.display()
    );
    dir
}

/// Every data file under `dir` (Parquet, encrypted Parquet and the key-material file).
fn corpus_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            corpus_files(root, &path, out);
        } else if path.to_string_lossy().contains(".parquet") {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

#[test]
fn the_table_covers_every_corpus_file() {
    let root = corpus();
    let mut files = Vec::new();
    corpus_files(&root, &root, &mut files);
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !CASES.iter().any(|(name, _, _)| name == f))
        .collect();
    assert!(missing.is_empty(), "files without a verdict: {missing:?}");
}

#[test]
fn inspect_stats_honours_every_catalog_verdict() {
    let root = corpus();
    let mut failures = Vec::new();
    for &(file, flags, expect) in CASES {
        let path = root.join(file);
        let mut args = vec!["inspect", "--stats", "--json", path.to_str().unwrap()];
        args.extend_from_slice(flags);
        let started = Instant::now();
        let out = common::run(&args, Duration::from_secs(30));
        let (code, stdout, stderr) = (out.code, &out.stdout, &out.stderr);
        let ok = !stderr.contains("panicked")
            && started.elapsed() < Duration::from_secs(20)
            && match expect {
                Rows(rows) => {
                    code == Some(0)
                        && serde_json::from_str::<serde_json::Value>(stdout)
                            .map(|v| v["rows"] == rows && v["label"]["count"] == rows)
                            .unwrap_or(false)
                }
                Fails(text) => code == Some(2) && stderr.contains(text),
                Either => matches!(code, Some(0 | 2)),
            };
        if !ok {
            failures.push(format!(
                "{file} {flags:?}: expected {expect:?}, got exit {code:?}: {}",
                stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
