//! Killing training at random moments (SIGKILL) and resuming each time ends with the model of
//! the uninterrupted run; SIGINT stops at a step boundary with a checkpoint and exit code 130.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use streamfit::generate::Task;

/// 400,000 rows × 8 features; b = 1 for 12 epochs is 4.8M steps (1-3 s).
fn train_args<'a>(data: &'a str, model: &'a str, checkpoints: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        data,
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

fn dataset(dir: &Path) -> String {
    let data = dir.join("data");
    common::dataset(&data, Task::Logistic, 400_000, 8, 4, 25_000, 5);
    data.to_str().unwrap().to_string()
}

/// Starts the binary with `args`, stderr captured.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(common::binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A dataset, the uninterrupted run's model, and paths for the interrupted runs.
struct Run {
    data: String,
    reference: Vec<u8>,
    /// Wall time of the uninterrupted run (process start to exit).
    reference_time: Duration,
    model: std::path::PathBuf,
    checkpoints: String,
}

impl Run {
    fn new(dir: &Path) -> Run {
        let data = dataset(dir);
        let (reference, reference_time) = reference_model(dir, &data);
        Run {
            reference,
            reference_time,
            data,
            model: dir.join("model.json"),
            checkpoints: dir.join("checkpoints").to_str().unwrap().to_string(),
        }
    }

    /// The training command with checkpoints and `--resume auto`.
    fn args(&self) -> Vec<&str> {
        train_args(
            &self.data,
            self.model.to_str().unwrap(),
            Some(&self.checkpoints),
        )
    }
}

fn reference_model(dir: &Path, data: &str) -> (Vec<u8>, Duration) {
    let model = dir.join("reference.json");
    let started = Instant::now();
    common::run(
        &train_args(data, model.to_str().unwrap(), None),
        Duration::from_secs(120),
    )
    .ok();
    (std::fs::read(model).unwrap(), started.elapsed())
}

#[test]
fn twenty_kill_9s_at_random_moments_and_resumes_end_bit_identical() {
    let dir = common::tempdir();
    let run = Run::new(dir.path());
    let (reference, model) = (&run.reference, &run.model);
    let args = run.args();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2026);
    // Kill moments scale with this machine's speed: each run lives at most 1/40 of the
    // uninterrupted run's time, so 20 kills come before training can finish (a fixed 10-100 ms
    // let a fast machine finish after a dozen).
    let reference_ms = run.reference_time.as_millis() as u64;
    let (shortest_ms, longest_ms) = ((reference_ms / 100).max(5), (reference_ms / 40).max(6));
    let mut kills = 0;
    let mut finished = false;
    for _ in 0..200 {
        let mut child = spawn(&args);
        let delay = Duration::from_millis(rng.random_range(shortest_ms..longest_ms));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if kills < 20 && started.elapsed() >= delay {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if let Some(status) = status {
            let stderr = common::child_stderr(&mut child);
            assert!(status.success(), "a resume failed: {stderr}");
            assert!(!stderr.contains("warning"), "{stderr}");
            finished = true;
            break;
        }
    }
    assert!(finished, "training never finished");
    assert_eq!(kills, 20);
    assert!(
        std::fs::read(model).unwrap() == *reference,
        "model differs from the uninterrupted run"
    );
}

#[test]
fn sigint_stops_with_a_checkpoint_and_exit_code_130_and_the_run_resumes() {
    let dir = common::tempdir();
    let run = Run::new(dir.path());
    let (reference, model) = (&run.reference, &run.model);
    let args = run.args();
    let child = spawn(&args);
    std::thread::sleep(Duration::from_millis(150));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let command = format!("streamfit {} (sent SIGINT)", args.join(" "));
    let stderr = common::Outcome::from_output(command, out).fails_with(130);
    assert!(stderr.contains("interrupted at epoch"), "{stderr}");
    assert!(stderr.contains("checkpoint written to"), "{stderr}");
    assert!(!model.exists(), "an interrupted run wrote a model");
    common::run(&args, Duration::from_secs(120)).ok();
    assert!(
        std::fs::read(model).unwrap() == *reference,
        "model differs from the uninterrupted run"
    );
}

#[test]
fn a_fresh_run_refuses_a_checkpoint_directory_of_another_run() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 5_000, 3, 1, 1_000, 2);
    let checkpoints = dir.path().join("ckpt");
    let args = [
        "train",
        data.to_str().unwrap(),
        "--quiet",
        "--checkpoint-dir",
        checkpoints.to_str().unwrap(),
    ];
    common::run_ok(&args);
    let stderr = common::run_err(&args, 2);
    assert!(stderr.contains("already holds checkpoints"), "{stderr}");
}
