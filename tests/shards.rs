//! streamfit shards: `convert` keeps rows, order and units, so Parquet and its shards train to
//! bit-identical parameters; damaged shards are clear errors naming the shard (and block).

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use streamfit::config::TrainConfig;
use streamfit::data::source::shard::{HEADER_BYTES, Header, ShardSource};
use streamfit::data::source::{ChunkSink, Source};
use streamfit::data::{ColumnSpec, RowBlock};
use streamfit::generate::Task;
use streamfit::train::BatchSize;

/// Generated Parquet (3 files, uneven row groups) and its conversion into several shards.
fn parquet_and_shards(dir: &Path) -> (PathBuf, PathBuf) {
    let parquet = dir.join("parquet");
    common::dataset(&parquet, Task::Logistic, 60_000, 6, 3, 7_000, 5);
    let shards = dir.join("shards");
    let summary = common::to_shards(&parquet, &shards, Some(20_000), 2);
    assert_eq!(summary.rows, 60_000);
    assert!(summary.shards >= 3, "{} shards", summary.shards);
    (parquet, shards)
}

/// Every row of a scan: (id, target, features).
fn scan_rows(config: &TrainConfig) -> Vec<(u64, f32, Vec<f32>)> {
    let pipeline = common::pipeline(config);
    let mut rows = Vec::new();
    pipeline
        .scan(|block: &RowBlock| {
            for i in 0..block.num_rows() {
                rows.push((
                    block.row_ids()[i],
                    block.targets()[i],
                    block.row(i).to_vec(),
                ));
            }
            Ok(())
        })
        .expect("scan");
    rows
}

#[test]
fn parquet_and_its_shards_give_identical_rows_batches_and_parameters() {
    let dir = common::tempdir();
    let (parquet, shards) = parquet_and_shards(dir.path());
    let from_parquet = common::config(&parquet, BatchSize::Rows(64));
    let from_shards = common::config(&shards, BatchSize::Rows(64));

    let (a, b) = (scan_rows(&from_parquet), scan_rows(&from_shards));
    assert_eq!(a.len(), 60_000);
    assert!(a == b, "scanned rows differ");

    // The same units in the same order, so the same batches, epoch after epoch.
    let (pa, pb) = (
        common::pipeline(&from_parquet),
        common::pipeline(&from_shards),
    );
    assert_eq!(pa.source().units(), pb.source().units());
    for epoch in 0..2 {
        assert_eq!(
            common::steps_of_epoch(&pa, epoch),
            common::steps_of_epoch(&pb, epoch)
        );
    }

    let fit = |config: &TrainConfig| {
        let mut config = config.clone();
        config.trainer.epochs = 2;
        common::fit(&config).params
    };
    let (wa, wb) = (fit(&from_parquet), fit(&from_shards));
    assert_eq!(common::bits(&wa), common::bits(&wb));
}

#[test]
fn the_binary_converts_refuses_an_existing_output_and_trains_on_shards() {
    let dir = common::tempdir();
    let parquet = dir.path().join("parquet");
    common::dataset(&parquet, Task::Logistic, 5_000, 4, 2, 1_000, 9);
    let shards = dir.path().join("shards");
    let args = [
        "convert",
        parquet.to_str().unwrap(),
        "--out",
        shards.to_str().unwrap(),
    ];
    let out = common::run_ok(&args);
    assert!(out.stdout.contains("5,000 rows"), "{}", out.stdout);
    assert!(shards.join("manifest.json").is_file());
    assert!(!dir.path().join("shards.partial").exists());

    let stderr = common::run_err(&args, 2);
    assert!(stderr.contains("already exists"), "{stderr}");

    common::run_ok(&[
        "train",
        shards.to_str().unwrap(),
        "--epochs",
        "1",
        "--quiet",
    ]);

    let stderr = common::run_err(&["scan", shards.to_str().unwrap(), "--features", "f0"], 2);
    assert!(stderr.contains("fixed columns"), "{stderr}");
}

#[test]
fn a_failed_conversion_leaves_no_output_directory() {
    let dir = common::tempdir();
    let parquet = dir.path().join("parquet");
    common::dataset(&parquet, Task::Logistic, 20_000, 4, 4, 2_000, 3);
    // Damage the pages of the third file: its footer still parses, so the failure comes
    // mid-conversion, after earlier shards were written.
    let victim = parquet.join("part-00002.parquet");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[4..68].fill(0xAB);
    std::fs::write(&victim, bytes).unwrap();
    let shards = dir.path().join("shards");
    let stderr = common::run_err(
        &[
            "convert",
            parquet.to_str().unwrap(),
            "--out",
            shards.to_str().unwrap(),
            "--shard-rows",
            "2000",
        ],
        2,
    );
    assert!(stderr.contains("part-00002.parquet"), "{stderr}");
    assert!(
        !shards.exists(),
        "an incomplete dataset was left at the output path"
    );
    assert!(!dir.path().join("shards.partial").exists());
}

/// Damages a copy of a shard dataset with `damage` (on its second shard) and returns the
/// exit code and stderr of `scan` on it.
fn scan_damaged(damage: impl FnOnce(&Path)) -> (Option<i32>, String) {
    let dir = common::tempdir();
    let (_, shards) = parquet_and_shards(dir.path());
    let victim = shards.join("shard-00001.sfs");
    damage(&victim);
    let out = common::run(&["scan", shards.to_str().unwrap()], common::TIMEOUT);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    (out.code, out.stderr)
}

fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    edit(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// One way of damaging a shard file's bytes.
type Damage = fn(&mut Vec<u8>);

#[test]
fn damaged_shards_are_errors_naming_the_shard_and_block() {
    let cases: [(&str, Damage, &str); 5] = [
        ("wrong magic", |b| b[0] = b'X', "wrong magic"),
        ("header corruption", |b| b[17] ^= 0x40, "header checksum"),
        ("truncation", |b| b.truncate(b.len() - 100), "truncated"),
        (
            "length mismatch",
            |b| b.extend_from_slice(&[0; 8]),
            "truncated or padded",
        ),
        (
            "flipped byte in a row block",
            |b| {
                let at = b.len() / 2;
                b[at] ^= 0x01;
            },
            ", block ",
        ),
    ];
    for (what, damage, expected) in cases {
        let (code, stderr) = scan_damaged(|p| rewrite(p, damage));
        assert_eq!(code, Some(2), "{what}: {stderr}");
        assert!(stderr.contains("shard-00001.sfs"), "{what}: {stderr}");
        assert!(stderr.contains(expected), "{what}: {stderr}");
    }
}

#[test]
fn without_verification_a_flipped_row_byte_is_not_checked() {
    // The documented trade-off of --verify-checksums false: the scan reads the damaged value.
    let dir = common::tempdir();
    let (_, shards) = parquet_and_shards(dir.path());
    rewrite(&shards.join("shard-00001.sfs"), |b| {
        let at = b.len() / 2;
        b[at] ^= 0x01;
    });
    common::run_ok(&[
        "scan",
        shards.to_str().unwrap(),
        "--verify-checksums",
        "false",
    ]);
}

/// A sink that keeps nothing.
struct Discard;

impl ChunkSink for Discard {
    fn empty_block(&mut self) -> RowBlock {
        RowBlock::default()
    }
    fn send(&mut self, _: RowBlock) -> std::ops::ControlFlow<()> {
        std::ops::ControlFlow::Continue(())
    }
}

/// Opens and reads every unit; any outcome but a panic is fine.
fn open_and_read(dir: &Path) -> Result<u64, streamfit::Error> {
    let source = ShardSource::open(dir, &ColumnSpec::default(), true)?;
    for unit in 0..source.units().len() {
        source.read_unit(unit, 1_000, &mut Discard)?;
    }
    Ok(source.num_rows())
}

fn fixed_seed(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(20_261_128),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(fixed_seed(512))]

    #[test]
    fn random_headers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80), len in any::<u64>()) {
        let _ = Header::decode(&bytes, len, Path::new("random.sfs"));
    }

    #[test]
    fn mutated_valid_headers_are_rejected(at in 0..HEADER_BYTES, bit in 0u8..8) {
        let header = Header { num_rows: 1_000, num_features: 7, block_rows: 100, meta_len: 300, meta_crc: 1 };
        let mut bytes = header.encode();
        bytes[at] ^= 1 << bit;
        prop_assert!(Header::decode(&bytes, header.file_len(), Path::new("m.sfs")).is_err());
    }
}

#[test]
fn mutated_shard_files_are_errors_never_panics() {
    let dir = common::tempdir();
    let parquet = dir.path().join("parquet");
    common::dataset(&parquet, Task::Linear, 3_000, 3, 1, 500, 2);
    let shards = dir.path().join("shards");
    common::to_shards(&parquet, &shards, None, 1);
    let shard = shards.join("shard-00000.sfs");
    let original = std::fs::read(&shard).unwrap();
    assert_eq!(open_and_read(&shards).expect("intact"), 3_000);
    let mut runner = proptest::test_runner::TestRunner::new(fixed_seed(300));
    let edits = (
        0..original.len(),
        any::<u8>(),
        prop_oneof![Just(None), (0..original.len()).prop_map(Some)],
    );
    runner
        .run(&edits, |(at, value, cut)| {
            let mut bytes = original.clone();
            bytes[at] = value;
            if let Some(len) = cut {
                bytes.truncate(len);
            }
            std::fs::write(&shard, &bytes).unwrap();
            let result = open_and_read(&shards);
            if bytes != original {
                // Every change to a shard is caught: header, metadata, rows or checksums.
                prop_assert!(
                    result.is_err(),
                    "edit at {at} (cut {cut:?}) was not detected"
                );
            }
            Ok(())
        })
        .unwrap();
}
