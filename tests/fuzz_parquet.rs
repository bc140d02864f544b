//! Mutated Parquet files never panic, hang or exhaust memory: every variant either reads or
//! fails with an error (issue 14, item 1 and 2).
//!
//! Six small files of different writers' settings (PLAIN, dictionary, byte-stream-split and
//! delta encodings; uncompressed, snappy, gzip, zstd, lz4 and brotli; data pages v1 and v2; a
//! list column; an optional column) are mutated by a seeded generator: bytes overwritten,
//! bits flipped, runs of 0xff or 0x00, and truncation. Each variant is opened and every unit
//! read through the library, as `train` and `inspect` do. `STREAMFIT_FUZZ_VARIANTS` sets the
//! number of variants (default 10,000: a few seconds in a release build; 100,000 found nothing); a watchdog fails the
//! test if one variant takes longer than 20 seconds. `STREAMFIT_FUZZ_DIR=DIR` keeps the files
//! (`variant-K.parquet` is the last variant of base K, the one that failed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{BrotliLevel, Compression, Encoding, GzipLevel, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use streamfit::config::TrainConfig;
use streamfit::data::{ColumnSpec, FeatureSelection, RowBlock};

const ROWS: usize = 600;

/// One base file: its name, columns and writer settings, and the columns training uses.
struct Base {
    name: &'static str,
    columns: Vec<(&'static str, ArrayRef)>,
    props: WriterProperties,
    features: FeatureSelection,
}

fn f32s(seed: u64) -> ArrayRef {
    Arc::new(Float32Array::from_iter_values((0..ROWS).map(|i| {
        ((i as u64 * 2_654_435_761 + seed) % 1000) as f32 / 100.0
    })))
}

fn label() -> ArrayRef {
    Arc::new(Float32Array::from_iter_values(
        (0..ROWS).map(|i| (i % 2) as f32),
    ))
}

fn props() -> parquet::file::properties::WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_max_row_group_row_count(Some(200))
        .set_data_page_row_count_limit(64)
        .set_write_batch_size(64)
}

fn bases() -> Vec<Base> {
    let ints: ArrayRef = Arc::new(Int32Array::from_iter_values(
        (0..ROWS).map(|i| (i % 17) as i32),
    ));
    let longs: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..ROWS).map(|i| (i * 31 % 1000) as i64),
    ));
    let doubles: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..ROWS).map(|i| (i % 7) as f64 * 0.25),
    ));
    let optional: ArrayRef = Arc::new(Float32Array::from_iter(
        (0..ROWS).map(|i| Some(i as f32 * 0.5)),
    ));
    let list: ArrayRef = Arc::new(FixedSizeListArray::new(
        Arc::new(Field::new("item", DataType::Float32, false)),
        4,
        Arc::new(Float32Array::from_iter_values(
            (0..ROWS * 4).map(|i| (i % 13) as f32),
        )),
        None,
    ));
    vec![
        Base {
            name: "plain_snappy",
            columns: vec![("a", f32s(1)), ("b", f32s(2)), ("label", label())],
            props: props()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false)
                .build(),
            features: FeatureSelection::AllNumeric,
        },
        Base {
            name: "dictionary_zstd",
            columns: vec![("i", ints.clone()), ("d", doubles), ("label", label())],
            props: props()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .set_dictionary_enabled(true)
                .build(),
            features: FeatureSelection::AllNumeric,
        },
        Base {
            name: "byte_stream_split_lz4",
            columns: vec![("a", f32s(3)), ("label", label())],
            props: props()
                .set_compression(Compression::LZ4_RAW)
                .set_dictionary_enabled(false)
                .set_column_encoding(ColumnPath::from("a"), Encoding::BYTE_STREAM_SPLIT)
                .build(),
            features: FeatureSelection::AllNumeric,
        },
        Base {
            name: "delta_gzip_v2",
            columns: vec![("i", ints), ("l", longs), ("label", label())],
            props: props()
                .set_compression(Compression::GZIP(GzipLevel::default()))
                .set_dictionary_enabled(false)
                .set_writer_version(WriterVersion::PARQUET_2_0)
                .set_column_encoding(ColumnPath::from("i"), Encoding::DELTA_BINARY_PACKED)
                .set_column_encoding(ColumnPath::from("l"), Encoding::DELTA_BINARY_PACKED)
                .build(),
            features: FeatureSelection::AllNumeric,
        },
        Base {
            name: "list_brotli",
            columns: vec![("x", list), ("label", label())],
            props: props()
                .set_compression(Compression::BROTLI(BrotliLevel::default()))
                .build(),
            features: FeatureSelection::ListColumn("x".to_string()),
        },
        Base {
            name: "optional_uncompressed",
            columns: vec![("o", optional), ("a", f32s(4)), ("label", label())],
            props: props()
                .set_compression(Compression::UNCOMPRESSED)
                .set_dictionary_enabled(false)
                .build(),
            features: FeatureSelection::AllNumeric,
        },
    ]
}

fn write(path: &Path, base: &Base) {
    let fields: Vec<Field> = base
        .columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), *name == "o"))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        base.columns.iter().map(|(_, a)| a.clone()).collect(),
    )
    .expect("batch");
    let file = std::fs::File::create(path).expect("create");
    let mut writer = ArrowWriter::try_new(file, schema, Some(base.props.clone())).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// Applies one to four seeded mutations to `bytes`.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Xoshiro256PlusPlus) {
    for _ in 0..rng.random_range(1..=4) {
        let len = bytes.len();
        match rng.random_range(0..10) {
            0..=3 => {
                let i = rng.random_range(0..len);
                bytes[i] = rng.random();
            }
            4..=5 => {
                let i = rng.random_range(0..len);
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            6 => {
                let i = rng.random_range(0..len);
                let run = rng.random_range(1..=8).min(len - i);
                bytes[i..i + run].fill(0xff);
            }
            7 => {
                let i = rng.random_range(0..len);
                let run = rng.random_range(1..=8).min(len - i);
                bytes[i..i + run].fill(0);
            }
            8 => {
                // The footer and page headers sit at the end and the start of each chunk:
                // aim at the last 512 bytes (the footer) often.
                let i = len - 1 - rng.random_range(0..len.min(512));
                bytes[i] = rng.random();
            }
            _ => {
                let keep = rng.random_range(len / 2..len);
                bytes.truncate(keep);
            }
        }
    }
}

/// Opens `path` and reads every unit; `Ok(rows)` or the error's message.
fn read_all(path: &Path, features: &FeatureSelection) -> Result<u64, String> {
    let config = TrainConfig {
        data: vec![path.to_path_buf()],
        columns: ColumnSpec {
            features: features.clone(),
            ..ColumnSpec::default()
        },
        ..TrainConfig::default()
    };
    let source = config.open_source().map_err(|e| e.to_string())?;
    let mut rows = 0;
    for unit in 0..source.units().len() {
        let mut blocks: Vec<RowBlock> = Vec::new();
        source
            .read_unit(unit, 256, &mut blocks)
            .map_err(|e| e.to_string())?;
        rows += blocks.iter().map(|b| b.num_rows() as u64).sum::<u64>();
    }
    Ok(rows)
}

#[test]
fn mutated_files_of_every_encoding_read_or_fail_cleanly() {
    let variants: usize = std::env::var("STREAMFIT_FUZZ_VARIANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    // To keep the variant files (the last one written is the one that failed), name a
    // directory in STREAMFIT_FUZZ_DIR.
    let kept = std::env::var_os("STREAMFIT_FUZZ_DIR").map(PathBuf::from);
    let dir_path = kept.clone().unwrap_or_else(|| dir.path().to_path_buf());
    let bases = bases();
    let mut originals: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for base in &bases {
        let path = dir_path.join(format!("{}.parquet", base.name));
        write(&path, base);
        assert_eq!(
            read_all(&path, &base.features),
            Ok(ROWS as u64),
            "{} reads before mutation",
            base.name
        );
        originals.push((path.clone(), std::fs::read(&path).expect("read")));
    }
    let features: Vec<FeatureSelection> = bases.iter().map(|b| b.features.clone()).collect();
    let names: Vec<&str> = bases.iter().map(|b| b.name).collect();
    let work_dir = dir_path.clone();
    let (progress, done) = mpsc::channel::<(usize, Result<u64, String>)>();
    let worker = std::thread::spawn(move || {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(14);
        for variant in 0..variants {
            let which = variant % originals.len();
            let mut bytes = originals[which].1.clone();
            mutate(&mut bytes, &mut rng);
            let path = work_dir.join(format!("variant-{which}.parquet"));
            std::fs::write(&path, &bytes).expect("write variant");
            let outcome = read_all(&path, &features[which]);
            if progress.send((variant, outcome)).is_err() {
                return;
            }
        }
    });
    let (mut read, mut failed) = (0usize, 0usize);
    for expected in 0..variants {
        match done.recv_timeout(Duration::from_secs(20)) {
            Ok((variant, outcome)) => {
                assert_eq!(variant, expected);
                match outcome {
                    Ok(_) => read += 1,
                    Err(message) => {
                        assert!(!message.is_empty(), "variant {variant}: empty error");
                        failed += 1;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "variant {expected} ({}) hung for 20 s",
                names[expected % names.len()]
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                "variant {expected} ({}) panicked (see the message above)",
                names[expected % names.len()]
            ),
        }
    }
    worker.join().expect("worker");
    assert_eq!(read + failed, variants);
    assert!(failed > 0, "mutations that never fail test nothing");
    eprintln!("{variants} variants: {read} read, {failed} failed cleanly");
}
