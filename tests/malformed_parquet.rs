//! Issue 14, item 1, from its recipes: one changed byte in a generated Parquet file made a
//! reader thread panic inside the parquet crate (`train` exited 1 with "a reader thread stopped
//! unexpectedly", `inspect --stats` exited 101, `--on-bad-file skip` did not help). Now each is
//! the usual error naming the file and row group (exit 2), and `--on-bad-file skip` drops the
//! file from the failing unit on.

mod common;

use std::path::{Path, PathBuf};

/// The file: `generate --out small --rows 2000 --features 4 --shards 1
/// --row-group-rows 500` (deterministic), with byte `at` set to `value`.
fn mutated(dir: &Path, at: usize, value: u8) -> PathBuf {
    let small = dir.join("small");
    if !small.exists() {
        common::run_ok(&[
            "generate",
            "--out",
            small.to_str().unwrap(),
            "--rows",
            "2000",
            "--features",
            "4",
            "--shards",
            "1",
            "--row-group-rows",
            "500",
            "-q",
        ]);
    }
    let mut bytes = std::fs::read(small.join("part-00000.parquet")).unwrap();
    assert_eq!(
        bytes.len(),
        37_111,
        "generate's output changed: the recipe's byte offsets no longer hit the same places"
    );
    bytes[at] = value;
    let path = dir.join(format!("byte-{at}.parquet"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Byte 36196 = 0xff: a column chunk's length in the footer becomes negative (the parquet
/// crate panicked: "column start and length should not be negative").
const FOOTER: (usize, u8) = (36_196, 0xff);
/// Byte 2042 = 0x04: a page switches to a dictionary encoding with no dictionary (the crate
/// panicked: "Decoder for dict should have been set").
const PAGES: (usize, u8) = (2_042, 0x04);

#[test]
fn a_decoder_panic_is_an_error_naming_the_file_and_row_group() {
    let dir = common::tempdir();
    for (at, value) in [FOOTER, PAGES] {
        let file = mutated(dir.path(), at, value);
        let name = file.to_str().unwrap();
        for args in [vec!["train", name, "-q"], vec!["inspect", "--stats", name]] {
            let stderr = common::run_err(&args, 2);
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            assert!(!stderr.contains("internal error"), "{args:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!("error: {name}: corrupt parquet, row group ")),
                "{args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn on_bad_file_skip_drops_a_file_whose_decoder_panics() {
    let dir = common::tempdir();
    for (at, value) in [FOOTER, PAGES] {
        let data = dir.path().join(format!("data-{at}"));
        std::fs::create_dir_all(&data).unwrap();
        let bad = mutated(dir.path(), at, value);
        std::fs::copy(&bad, data.join("b.parquet")).unwrap();
        std::fs::copy(
            dir.path().join("small/part-00000.parquet"),
            data.join("a.parquet"),
        )
        .unwrap();
        let report = dir.path().join(format!("report-{at}.json"));
        let out = common::run_ok(&[
            "train",
            data.to_str().unwrap(),
            "--on-bad-file",
            "skip",
            "--epochs",
            "2",
            "-q",
            "--report",
            report.to_str().unwrap(),
        ]);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        let report = common::read_json(&report);
        let epochs = report["epoch_summaries"].as_array().unwrap();
        // The damage is found when the unit is read (the footer's bad length by the page-size
        // check, the missing dictionary by the decoder): the file is dropped from that unit on
        // in epoch 1, and left out of epoch 2.
        assert!(out.stderr.contains("warning: dropping"), "{}", out.stderr);
        let skipped = epochs[0]["rows_skipped"].as_u64().unwrap();
        assert!(skipped > 0, "{report}");
        assert_eq!(
            epochs[0]["rows"].as_u64().unwrap() + skipped,
            4_000,
            "{report}"
        );
        assert_eq!(epochs[1]["rows"], 2_000, "{report}");
        assert_eq!(epochs.len(), 2);
    }
}
