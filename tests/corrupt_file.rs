//! A corrupt file in the middle of a sharded dataset stops training promptly with an error
//! naming that file, and no model is written.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use streamfit::generate::Task;

fn corrupt_train(damage: impl FnOnce(&std::path::Path)) {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 400_000, 8, 5, 20_000, 41);
    let victim = data.join("part-00002.parquet");
    damage(&victim);
    let model = dir.path().join("model.json");
    let started = Instant::now();
    let out = common::run(
        &[
            "train",
            data.to_str().unwrap(),
            "--quiet",
            "--epochs",
            "3",
            "--save-model",
            model.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let stderr = out.fails_with(2);
    assert!(stderr.contains("part-00002.parquet"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!model.exists(), "model written despite the error");
}

#[test]
fn damaged_pages_in_a_middle_shard_fail_training_naming_the_file() {
    // Overwrite the first page header of the first column chunk (right after the magic):
    // the footer still parses, so the damage is found only when that row group is read.
    corrupt_train(|path| {
        let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.seek(SeekFrom::Start(4)).unwrap();
        file.write_all(&[0xAB; 64]).unwrap();
    });
}

#[test]
fn a_truncated_middle_shard_fails_training_naming_the_file() {
    corrupt_train(|path| {
        let len = std::fs::metadata(path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    });
}

#[test]
fn on_bad_file_skip_leaves_out_an_unreadable_file_and_reports_it() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 40_000, 4, 4, 5_000, 3);
    let victim = data.join("part-00001.parquet");
    std::fs::write(&victim, b"not parquet at all").unwrap();
    let report = dir.path().join("report.json");
    let args = |policy: &'static str| {
        [
            "train",
            data.to_str().unwrap(),
            "--on-bad-file",
            policy,
            "--report",
            report.to_str().unwrap(),
        ]
    };
    let stderr = common::run_err(&args("error"), 2);
    assert!(stderr.contains("part-00001.parquet"), "{stderr}");

    let lenient = common::run_ok(&args("skip"));
    let (stdout, stderr) = (&lenient.stdout, &lenient.stderr);
    assert!(
        stderr.contains("warning: skipping unreadable file")
            && stderr.contains("part-00001.parquet"),
        "{stderr}"
    );
    assert!(stdout.contains("1 unreadable file(s) skipped"), "{stdout}");
    let report = common::read_json(&report);
    assert_eq!(report["rows"], 30_000);
    assert_eq!(report["skipped_files"].as_array().unwrap().len(), 1);
}
