//! Fit, or refuse (issue 17): a memory budget larger than the memory available to the process
//! stops the run before anything is read, naming the figures and the flags that shrink them;
//! `--memory-limit MB` shrinks the readers' blocks, then the shuffle buffer, then the prefetch
//! depth to fit and says what it chose. The available figure is injected with `STREAMFIT_AVAILABLE_MEMORY_MB` (no cgroup
//! needed).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Outcome, binary, read_json, run_command, tempdir};
use streamfit::generate::Task;

const LIMIT: Duration = Duration::from_secs(120);

/// `streamfit ARGS` with the available memory set to `available_mb`.
fn run_with(available_mb: u64, args: &[&str]) -> Outcome {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("STREAMFIT_AVAILABLE_MEMORY_MB", available_mb.to_string());
    run_command(command, LIMIT)
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// 60,000 rows × 64 features: the default shuffle buffer (60,000 rows here) alone is ~16 MB.
fn data(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    common::dataset(&data, Task::Logistic, 60_000, 64, 2, 5_000, 0);
    data
}

#[test]
fn a_budget_larger_than_the_memory_available_is_refused_before_training() {
    let dir = tempdir();
    let data = data(dir.path());
    let model = dir.path().join("model.json");
    let err = run_with(12, &["train", s(&data), "--save-model", s(&model)]).fails_with(2);
    assert!(err.contains("exceeds the 12.0 MB available"), "{err}");
    assert!(err.contains("STREAMFIT_AVAILABLE_MEMORY_MB"), "{err}");
    for flag in ["--shuffle-buffer", "--prefetch", "--memory-limit"] {
        assert!(err.contains(flag), "{flag} in {err}");
    }
    assert!(!model.exists(), "a refused run wrote its model");
    // The same run fits when enough is available.
    run_with(4_000, &["train", "-q", s(&data), "--save-model", s(&model)]).ok();
    assert!(model.exists());
}

#[test]
fn memory_limit_shrinks_the_shuffle_buffer_to_fit_and_says_so() {
    let dir = tempdir();
    let data = data(dir.path());
    let report = dir.path().join("report.json");
    let out = run_with(
        48,
        &[
            "train",
            s(&data),
            "--memory-limit",
            "40",
            "--report",
            s(&report),
        ],
    )
    .ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("memory limit 40.0 MB"))
        .unwrap_or_else(|| panic!("no memory limit line in\n{}", out.stdout));
    assert!(line.contains("reader blocks 8,192 rows → 1,024"), "{line}");
    assert!(line.contains("shuffle buffer 65,536 rows →"), "{line}");
    let budget = read_json(&report)["memory_budget_bytes"].as_u64().unwrap();
    assert!(budget <= 40_000_000, "budget {budget} over the 40 MB limit");
    // The fitted buffer is a whole number of 1,024-row pieces, so a gradient thread more (a
    // few KB of the budget) leaves it, and the model, as they were.
    let shuffle = line.split("shuffle buffer 65,536 rows → ").nth(1).unwrap();
    let rows: usize = shuffle
        .split(',')
        .take(2)
        .collect::<String>()
        .parse()
        .unwrap();
    assert_eq!(rows % 1_024, 0, "{line}");
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    for (model, threads) in [(&a, "1"), (&b, "2")] {
        run_with(
            4_000,
            &[
                "train",
                "-q",
                s(&data),
                "--memory-limit",
                "40",
                "--threads",
                threads,
                "--save-model",
                s(model),
            ],
        )
        .ok();
    }
    assert_eq!(read_json(&a)["weights"], read_json(&b)["weights"]);
}

#[test]
fn a_memory_limit_that_cannot_be_met_or_is_not_there_is_an_error() {
    let dir = tempdir();
    let data = data(dir.path());
    let err = run_with(100, &["train", s(&data), "--memory-limit", "200"]).fails_with(2);
    assert!(err.contains("--memory-limit"), "{err}");
    assert!(err.contains("more than the 100.0 MB available"), "{err}");
    let err = run_with(100, &["train", s(&data), "--memory-limit", "1"]).fails_with(2);
    assert!(err.contains("cannot hold this run"), "{err}");
    let err = run_with(100, &["train", s(&data), "--memory-limit", "0"]).fails_with(2);
    assert!(err.contains("--memory-limit"), "{err}");
}

#[test]
fn a_limit_met_by_smaller_reader_blocks_changes_no_batch() {
    let dir = tempdir();
    let data = data(dir.path());
    let (free, fitted) = (dir.path().join("free.json"), dir.path().join("fitted.json"));
    run_with(4_000, &["train", "-q", s(&data), "--save-model", s(&free)]).ok();
    let out = run_with(
        4_000,
        &[
            "train",
            s(&data),
            "--memory-limit",
            "58",
            "--save-model",
            s(&fitted),
        ],
    )
    .ok();
    assert!(
        out.stdout
            .contains("shuffle buffer 65,536 rows → 65,536, prefetch 4 → 4"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("reader blocks 8,192 rows → 8,192"),
        "{}",
        out.stdout
    );
    assert_eq!(read_json(&free)["weights"], read_json(&fitted)["weights"]);
    assert_eq!(read_json(&free)["bias"], read_json(&fitted)["bias"]);
}
