//! A data file truncated while a multi-epoch run reads it (issue 14, item 3): the run stops
//! with exit code 2 and an error naming the file ("changed while being read"), never a SIGBUS;
//! the checkpoints it wrote stay usable, so once the file is restored `--resume auto` ends with
//! the model of an uninterrupted run, bit for bit. On Parquet and on shards, each read through
//! the map and by explicit reads (`--read-mode`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use streamfit::generate::Task;

/// 400,000 rows × 8 features in 4 files; b = 1 for 12 epochs (1-3 s), a checkpoint every
/// 20,000 steps.
fn train_args<'a>(
    data: &'a str,
    mode: &'a str,
    model: &'a str,
    checkpoints: Option<&'a str>,
) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        data,
        "--read-mode",
        mode,
        "--batch-size",
        "1",
        "--epochs",
        "12",
        "--lr",
        "0.01",
        "--shuffle-buffer",
        "20000",
        "--no-eval",
        "--quiet",
        "--save-model",
        model,
    ];
    if let Some(dir) = checkpoints {
        args.extend([
            "--checkpoint-dir",
            dir,
            "--checkpoint-every",
            "20000",
            "--resume",
            "auto",
        ]);
    }
    args
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs training with checkpoints over `data`, reading it with `mode` (`--read-mode`),
/// truncates `victim` to half its length once the first checkpoint exists, and checks the
/// refusal; then restores the file and resumes to the uninterrupted run's model.
fn truncate_mid_run_then_resume(dir: &Path, data: &Path, victim: &Path, mode: &str) {
    let reference = dir.join("reference.json");
    common::run(
        &train_args(arg(data), mode, arg(&reference), None),
        Duration::from_secs(120),
    )
    .ok();
    let model = dir.join("model.json");
    let checkpoints = dir.join("checkpoints");
    let args = train_args(arg(data), mode, arg(&model), Some(arg(&checkpoints)));
    let original = std::fs::read(victim).unwrap();

    let child = Command::new(common::binary())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::read_dir(&checkpoints).map_or(true, |mut d| d.next().is_none()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap();
    file.set_len(original.len() as u64 / 2).unwrap();
    drop(file);
    let out = child.wait_with_output().unwrap();
    let command = format!("streamfit {} (data truncated)", args.join(" "));
    let stderr = common::Outcome::from_output(command, out).fails_with(2);
    assert!(stderr.contains(arg(victim)), "{stderr}");
    assert!(stderr.contains("changed while being read"), "{stderr}");
    assert!(!model.exists(), "a model was written from changed data");

    std::fs::write(victim, &original).unwrap();
    common::run(&args, Duration::from_secs(120)).ok();
    assert!(
        std::fs::read(&model).unwrap() == std::fs::read(&reference).unwrap(),
        "the resumed model differs from the uninterrupted run's"
    );
}

fn dataset(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    common::dataset(&data, Task::Logistic, 400_000, 8, 4, 25_000, 5);
    data
}

#[test]
fn a_parquet_file_truncated_mid_run_is_an_error_and_the_run_resumes_once_restored() {
    for mode in ["map", "read"] {
        let dir = common::tempdir();
        let data = dataset(dir.path());
        let victim = data.join("part-00002.parquet");
        truncate_mid_run_then_resume(dir.path(), &data, &victim, mode);
    }
}

#[test]
fn a_shard_truncated_mid_run_is_an_error_and_the_run_resumes_once_restored() {
    for mode in ["map", "read"] {
        let dir = common::tempdir();
        let data = dataset(dir.path());
        let shards = dir.path().join("shards");
        common::to_shards(&data, &shards, Some(100_000), 2);
        let victim = shards.join("shard-00002.sfs");
        truncate_mid_run_then_resume(dir.path(), &shards, &victim, mode);
    }
}
