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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
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
