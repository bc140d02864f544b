//! Runs and checkpoints under hostile conditions (issue 14): a trace file on a full disk, absurd
//! epoch and reader counts, two runs sharing a checkpoint directory, checkpoints edited with a
//! recomputed checksum, orphaned temporary files, and a checkpoint whose name lies about its
//! iteration. Each ends in a clean result or a clean error with a deterministic exit code.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use streamfit::generate::Task;
use streamfit::train::{Checkpoint, CheckpointConfig};

/// The issue's recipe: 2,000 rows × 4 features in one file of 500-row row groups.
fn small(dir: &Path) -> String {
    let data = dir.join("small");
    common::dataset(&data, Task::Logistic, 2_000, 4, 1, 500, 0);
    data.to_str().unwrap().to_string()
}

fn checkpoint_path(dir: &Path, iteration: u64) -> PathBuf {
    dir.join(format!("ckpt-{iteration:012}.sfck"))
}

/// Three epochs of 80 steps (b = 25) checkpointed every 60 steps, all checkpoints kept:
/// iterations 60, 80, 120, 160, 180 and 240.
fn three_epochs(dir: &Path) -> (String, PathBuf) {
    let data = small(dir);
    let checkpoints = dir.join("ck");
    common::run_ok(&train_args(
        &data,
        &checkpoints,
        &["--checkpoint-every", "60"],
    ));
    for iteration in [60, 80, 120, 160, 180, 240] {
        assert!(checkpoint_path(&checkpoints, iteration).is_file());
    }
    (data, checkpoints)
}

fn train_args<'a>(data: &'a str, checkpoints: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        data,
        "--batch-size",
        "25",
        "--epochs",
        "3",
        "--no-eval",
        "--quiet",
        "--threads",
        "1",
        "--checkpoint-dir",
        checkpoints.to_str().unwrap(),
        "--keep-checkpoints",
        "100",
        "--resume",
        "auto",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_trace_on_a_full_disk_is_a_clean_output_error() {
    let dir = common::tempdir();
    let data = small(dir.path());
    for _ in 0..3 {
        let stderr = common::run_err(
            &[
                "train",
                &data,
                "--epochs",
                "2",
                "--quiet",
                "--trace",
                "/dev/full",
            ],
            1,
        );
        assert!(stderr.contains("error: cannot write /dev/full"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn absurd_epoch_counts_are_refused_promptly() {
    let dir = common::tempdir();
    let data = small(dir.path());
    for epochs in ["18446744073709551615", "1000000000", "1000001"] {
        let started = Instant::now();
        let stderr = common::run(
            &["train", &data, "--epochs", epochs, "--quiet"],
            Duration::from_secs(30),
        )
        .fails_with(2);
        assert!(
            stderr.contains("--epochs") && stderr.contains("1000000"),
            "{stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{epochs}");
    }
}

#[test]
fn tune_caps_its_reader_counts_as_train_does() {
    let dir = common::tempdir();
    let data = small(dir.path());
    let train = common::run_err(&["train", &data, "--readers", "100000", "--quiet"], 2);
    let tune = common::run(
        &[
            "tune",
            &data,
            "--readers-list",
            "1,100000",
            "--budget-seconds",
            "1",
        ],
        Duration::from_secs(30),
    )
    .fails_with(2);
    assert!(train.contains("must be between 1 and 256"), "{train}");
    assert!(
        tune.contains("--readers-list") && tune.contains("must be between 1 and 256"),
        "{tune}"
    );
}

/// Starts the binary with `args` in the background.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(common::binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

/// True once `dir` holds a checkpoint file.
fn has_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().extension().is_some_and(|x| x == "sfck"))
    })
}

#[test]
fn a_second_run_in_a_checkpoint_directory_is_refused_naming_the_first() {
    let dir = common::tempdir();
    let data = small(dir.path());
    let checkpoints = dir.path().join("ck");
    let ck = checkpoints.to_str().unwrap();
    let long_run = |seed: &'static str| {
        vec![
            "train",
            data.as_str(),
            "--epochs",
            "1000000",
            "--quiet",
            "--threads",
            "1",
            "--checkpoint-dir",
            ck,
            "--resume",
            "auto",
            "--seed",
            seed,
        ]
    };
    let mut first = spawn(&long_run("1"));
    // Wait for the first run's first checkpoint (8 steps an epoch; it keeps the last two):
    // it is training.
    let started = Instant::now();
    while !has_checkpoint(&checkpoints) {
        assert!(started.elapsed() < Duration::from_secs(30), "no checkpoint");
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = common::run(&long_run("2"), Duration::from_secs(30));
    let pid = first.id();
    first.kill().expect("kill");
    first.wait().expect("wait");
    let stderr = second.fails_with(2);
    assert!(
        stderr.contains("--checkpoint-dir") && stderr.contains(&format!("pid {pid}")),
        "{stderr}"
    );
    // The killed run's lock file stays behind; it blocks nobody.
    for entry in std::fs::read_dir(&checkpoints).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sfck") {
            std::fs::remove_file(path).unwrap();
        }
    }
    common::run_ok(&[
        "train",
        &data,
        "--epochs",
        "2",
        "--quiet",
        "--checkpoint-dir",
        ck,
    ]);
    common::run_ok(&[
        "train",
        &data,
        "--epochs",
        "3",
        "--quiet",
        "--checkpoint-dir",
        ck,
        "--resume",
        "auto",
    ]);
}

/// Rewrites the checkpoint of `iteration` in `from` with `edit` applied, as the only checkpoint
/// of a new directory, with a valid checksum (saved by the library); returns that directory.
fn edited(from: &Path, iteration: u64, name: &str, edit: impl Fn(&mut Checkpoint)) -> PathBuf {
    let mut checkpoint = Checkpoint::load(&checkpoint_path(from, iteration)).expect("load");
    edit(&mut checkpoint);
    let dir = from.parent().unwrap().join(name);
    checkpoint
        .save(&CheckpointConfig {
            dir: dir.clone(),
            every_steps: None,
            keep: 100,
        })
        .expect("save");
    dir
}

#[test]
fn checkpoints_with_an_impossible_cursor_are_refused_with_the_reason() {
    let dir = common::tempdir();
    let (data, checkpoints) = three_epochs(dir.path());
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "an epoch beyond --epochs",
            edited(&checkpoints, 160, "beyond", |c| c.next_epoch = 7),
            "epoch 8",
        ),
        (
            "epoch 2 at iteration 60",
            edited(&checkpoints, 120, "early", |c| c.iteration = 60),
            "iteration 60",
        ),
        (
            "iteration 2^63",
            edited(&checkpoints, 180, "huge", |c| c.iteration = 1 << 63),
            "iteration 9223372036854775808",
        ),
        (
            "an all-zero generator",
            edited(&checkpoints, 180, "zero-rng", |c| {
                let cursor = c.cursor.as_mut().expect("a mid-epoch cursor");
                cursor.rng = Some(serde_json::from_str(r#"{"s":[0,0,0,0]}"#).unwrap());
            }),
            "generator",
        ),
    ];
    for (what, resume, needle) in cases {
        let mut args = train_args(&data, &checkpoints, &[]);
        // Resume from the edited file; write new checkpoints next to it.
        let resume = resume.to_str().unwrap().to_string();
        let at = args.iter().position(|a| *a == "auto").unwrap();
        args[at] = &resume;
        let at = args.iter().position(|a| *a == "--checkpoint-dir").unwrap();
        args.drain(at..at + 2);
        let stderr = common::run(&args, Duration::from_secs(30)).fails_with(2);
        assert!(
            stderr.contains("--resume") && stderr.contains(needle),
            "{what}: {stderr}"
        );
    }
}

/// Sets a file's modification time `age` in the past.
fn age(path: &Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn orphaned_checkpoint_temporaries_are_cleaned_at_the_start_of_a_run() {
    let dir = common::tempdir();
    let (data, checkpoints) = three_epochs(dir.path());
    // What `kill -9` during a save leaves: atomic_file's temporary names.
    let old = checkpoints.join(".ckpt-000000000300.sfck.Ab12Cd.tmp");
    let young = checkpoints.join(".ckpt-000000000320.sfck.Xy34Zw.tmp");
    let other = checkpoints.join(".notes.txt.Ab12Cd.tmp");
    for path in [&old, &young, &other] {
        std::fs::write(path, b"streamfit-checkpoint 2 1000 0000").unwrap();
    }
    age(&old, Duration::from_secs(600));
    age(&other, Duration::from_secs(600));
    // The run is complete: resuming it trains nothing and saves nothing.
    common::run_ok(&train_args(&data, &checkpoints, &[]));
    assert!(!old.exists(), "a stale temporary is cleaned");
    assert!(
        young.exists(),
        "a temporary younger than a minute is left alone"
    );
    assert!(other.exists(), "only checkpoint temporaries are touched");
}

#[test]
fn a_checkpoint_whose_name_lies_moves_no_valid_checkpoint_aside() {
    let dir = common::tempdir();
    let (data, checkpoints) = three_epochs(dir.path());
    // The content of iteration 120 under the name of iteration 999.
    let liar = checkpoint_path(&checkpoints, 999);
    std::fs::copy(checkpoint_path(&checkpoints, 120), &liar).unwrap();
    let out = common::run(&train_args(&data, &checkpoints, &[]), common::TIMEOUT).ok();
    for iteration in [160, 180, 240] {
        assert!(
            checkpoint_path(&checkpoints, iteration).is_file(),
            "iteration {iteration} was moved aside: {}",
            out.stderr
        );
    }
    let aside: Vec<_> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".corrupt"))
        .collect();
    assert!(aside.is_empty(), "moved aside: {aside:?}");
    assert!(
        out.stderr.contains("ckpt-000000000999.sfck") && out.stderr.contains("120"),
        "the mismatch is reported: {}",
        out.stderr
    );
    // It resumed from the newest valid checkpoint: the run was complete.
    let resumed = common::run(
        &[
            "train",
            &data,
            "--batch-size",
            "25",
            "--epochs",
            "4",
            "--no-eval",
            "--threads",
            "1",
            "--checkpoint-dir",
            checkpoints.to_str().unwrap(),
            "--resume",
            "auto",
        ],
        common::TIMEOUT,
    )
    .ok();
    assert!(
        resumed.stdout.contains("(iteration 240,"),
        "resumes from iteration 240: {}",
        resumed.stdout
    );
}
