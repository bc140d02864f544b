//! Checkpoints in object storage (issue 16): `--checkpoint-dir s3://bucket/prefix/` writes each
//! checkpoint as one object, keeps the newest K, resumes from the newest valid one after
//! SIGKILL bit for bit like the uninterrupted run, skips a corrupt newer object, and holds the
//! prefix with a lock object that keeps a second run out.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::tempdir;
use s3::{Faults, SECRET_KEY, bucket_dataset, run_s3, s3_server};

/// The checkpoint objects under `dir` (the server's directory of a prefix), sorted.
fn checkpoint_objects(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ckpt-") && n.ends_with(".sfck"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `train` on the bucket's data with a model file, checkpoints in `checkpoints` when given,
/// and `extra` (at least «epochs» and «batch_size»).
fn train_args(model: &Path, checkpoints: Option<&str>, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "s3://bucket/data",
        "--lr",
        "0.01",
        "--shuffle-buffer",
        "5000",
        "--no-eval",
        "--quiet",
        "--save-model",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(model.to_str().unwrap().to_string());
    if let Some(dir) = checkpoints {
        args.extend(["--checkpoint-dir".to_string(), dir.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn sigkill_and_resume_auto_with_checkpoints_on_s3_end_bit_identical() {
    let root = tempdir();
    bucket_dataset(root.path(), 40_000, 5_000);
    let server = s3_server(root.path(), Faults::default());
    let out = tempdir();
    let model = out.path().join("model.json");
    let reference = out.path().join("reference.json");
    let settings = ["--batch-size", "1", "--epochs", "4"];
    run_s3(&server, &strs(&train_args(&reference, None, &settings))).ok();
    let resumed = train_args(
        &model,
        Some("s3://bucket/runs/ck/"),
        &[
            &settings[..],
            &["--checkpoint-every", "3000", "--resume", "auto"],
        ]
        .concat(),
    );
    let resumed = strs(&resumed);
    // Up to four kills, each soon after the run wrote a checkpoint (so every run makes
    // progress, and every resume starts from one), then a run finishes.
    let prefix = root.path().join("bucket/runs/ck");
    let mut kills = 0;
    for i in 0..100u64 {
        let mut child = server
            .command(&resumed, SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let before = checkpoint_objects(&prefix);
        let delay = Duration::from_millis((i * 7) % 30);
        let mut wrote: Option<Instant> = None;
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                let stderr = common::child_stderr(&mut child);
                assert!(status.success(), "a resume failed: {stderr}");
                assert!(!stderr.contains(SECRET_KEY), "{stderr}");
                break true;
            }
            if wrote.is_none() && checkpoint_objects(&prefix) != before {
                wrote = Some(Instant::now());
            }
            if kills < 4 && wrote.is_some_and(|at| at.elapsed() >= delay) {
                child.kill().unwrap(); // SIGKILL: the lock object stays behind
                child.wait().unwrap();
                kills += 1;
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if finished {
            break;
        }
    }
    assert!(kills > 0);
    assert!(
        std::fs::read(&model).unwrap() == std::fs::read(&reference).unwrap(),
        "the resumed model differs from the uninterrupted run"
    );
    // The finished run kept its newest two checkpoints and released the prefix.
    assert_eq!(checkpoint_objects(&prefix).len(), 2);
    assert!(!prefix.join(".lock").exists(), "the lock object was left");
}

#[test]
fn keep_k_leaves_k_objects_and_a_corrupt_newer_one_is_skipped() {
    let root = tempdir();
    bucket_dataset(root.path(), 4_000, 500);
    let server = s3_server(root.path(), Faults::default());
    let out = tempdir();
    let model = out.path().join("model.json");
    let ck = "s3://bucket/ck";
    let args = train_args(
        &model,
        Some(ck),
        &[
            "--batch-size",
            "100",
            "--epochs",
            "4",
            "--checkpoint-every",
            "7",
            "--keep-checkpoints",
            "3",
        ],
    );
    run_s3(&server, &strs(&args)).ok();
    let prefix = root.path().join("bucket/ck");
    // 4 epochs of 40 steps, a checkpoint every 7 iterations and at each epoch end: the
    // newest three are kept.
    assert_eq!(
        checkpoint_objects(&prefix),
        [
            "ckpt-000000000147.sfck",
            "ckpt-000000000154.sfck",
            "ckpt-000000000160.sfck"
        ]
    );
    assert!(!prefix.join(".lock").exists(), "the lock object was left");
    // Without «resume» the prefix is refused: it holds another run's checkpoints.
    let err = run_s3(&server, &strs(&args)).fails_with(2);
    assert!(err.contains("already holds checkpoints"), "{err}");
    // A corrupt object named after a later iteration is skipped with a warning; the resume
    // starts from the newest valid one (the run is over: nothing is left to train).
    std::fs::write(prefix.join("ckpt-000000000999.sfck"), b"not a checkpoint").unwrap();
    let mut resumed = args.clone();
    resumed.retain(|a| a != "--quiet");
    resumed.extend(["--resume".to_string(), "auto".to_string()]);
    let outcome = run_s3(&server, &strs(&resumed)).ok();
    assert_eq!(
        outcome
            .stderr
            .matches("warning: skipping checkpoint")
            .count(),
        1,
        "{}",
        outcome.stderr
    );
    assert!(
        outcome
            .stdout
            .contains("resume: s3://bucket/ck/ckpt-000000000160.sfck (iteration 160"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn a_second_run_on_a_locked_prefix_is_refused() {
    let root = tempdir();
    bucket_dataset(root.path(), 2_000, 500);
    let server = s3_server(root.path(), Faults::default());
    let out = tempdir();
    let model = out.path().join("model.json");
    let prefix = root.path().join("bucket/ck");
    std::fs::create_dir_all(&prefix).unwrap();
    // A run on another machine holds the prefix: refused, naming the holder and the object.
    std::fs::write(prefix.join(".lock"), "pid 4242 on another-host\n").unwrap();
    let args = train_args(
        &model,
        Some("s3://bucket/ck"),
        &["--epochs", "1", "--batch-size", "100"],
    );
    let err = run_s3(&server, &strs(&args)).fails_with(2);
    assert!(err.contains("--checkpoint-dir"), "{err}");
    assert!(err.contains("in use by another run"), "{err}");
    assert!(err.contains("pid 4242 on another-host"), "{err}");
    assert!(err.contains("s3://bucket/ck/.lock"), "{err}");
    assert!(checkpoint_objects(&prefix).is_empty());
    assert!(!model.exists());
    // A lock left by a process of this host that no longer runs is taken over.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(
        prefix.join(".lock"),
        format!("pid {dead_pid} on {}\n", host.trim()),
    )
    .unwrap();
    run_s3(&server, &strs(&args)).ok();
    assert!(model.exists());
    assert_eq!(checkpoint_objects(&prefix).len(), 1);
    assert!(!prefix.join(".lock").exists(), "the lock object was left");
}
