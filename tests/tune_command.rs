//! `tune` hands back a command that runs: the user's own `train` command with the tuned flags
//! set, which trains the same model on the same columns; it takes `train`'s `--standardize`
//! and reports each measurement on stderr as it ends.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch};
use serde_json::Value;
use streamfit::generate::Task;

/// Flags that keep `tune` short on the tests' small datasets (all of them tune-only).
const QUICK: [&str; 8] = [
    "--budget-seconds",
    "1",
    "--batch-sizes",
    "16,64,256",
    "--prefetch-depths=0,2",
    "--readers-list",
    "1",
    "--quiet",
];

/// Runs `tune` with `args` and [`QUICK`] and returns the recommended command's words (after
/// `streamfit`), unquoted.
fn recommended(args: &[&str]) -> Vec<String> {
    let mut tune = vec!["tune"];
    tune.extend(args);
    tune.extend(QUICK);
    tune.push("--json");
    let out = common::run_ok(&tune);
    let result: Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    let command = result["command"].as_str().expect("a command field");
    assert!(result["flags"].is_string(), "the flags field stays");
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .collect();
    assert_eq!(words[0], "streamfit", "{command}");
    assert_eq!(words[1], "train", "{command}");
    for dropped in ["--budget-seconds", "--batch-sizes", "--json", "--quiet"] {
        assert!(
            !words.iter().any(|w| w.starts_with(dropped)),
            "{dropped} left in {command}"
        );
    }
    // `--prefetch` and `--readers` are set only when the sweep found a measurable difference.
    let measurable = result["sweep_verdict"] == "measurable";
    for (tuned, times) in [
        ("--batch-size", 1),
        ("--prefetch", usize::from(measurable)),
        ("--readers", usize::from(measurable)),
    ] {
        assert_eq!(
            words.iter().filter(|w| *w == tuned).count(),
            times,
            "{tuned} {times} times in {command}"
        );
    }
    words[1..].to_vec()
}

/// Runs the recommended command for one epoch and returns its report.
fn train(words: &[String], dir: &Path) -> Value {
    let report = dir.join("report.json");
    let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
    args.extend([
        "--epochs",
        "1",
        "--quiet",
        "--report",
        report.to_str().unwrap(),
    ]);
    common::run_ok(&args);
    common::read_json(&report)
}

#[test]
fn recommended_command_trains_a_softmax_model() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Multiclass, 20_000, 4, 1, 5_000, 1);
    let words = recommended(&[data.to_str().unwrap(), "--model", "softmax"]);
    assert!(words.windows(2).any(|w| w == ["--model", "softmax"]));
    let report = train(&words, dir.path());
    assert_eq!(report["model"], "softmax", "{report}");
}

#[test]
fn recommended_command_trains_the_same_mlp() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 20_000, 4, 1, 5_000, 2);
    let words = recommended(&[
        data.to_str().unwrap(),
        "--model",
        "mlp",
        "--hidden",
        "8",
        "--lr=0.05",
    ]);
    assert!(words.windows(2).any(|w| w == ["--hidden", "8"]));
    assert!(words.iter().any(|w| w == "--lr=0.05"));
    let report = train(&words, dir.path());
    assert_eq!(report["model"], "mlp", "{report}");
}

fn column(values: impl Iterator<Item = f32>) -> ArrayRef {
    Arc::new(Float32Array::from(values.collect::<Vec<_>>()))
}

#[test]
fn recommended_command_keeps_a_renamed_label() {
    let dir = common::tempdir();
    let file = dir.path().join("t.parquet");
    let n = 8_000;
    // A deterministic table: y = 1 when x0 + x1 > 1 (x from a fixed-step walk over [0, 1)).
    let x0: Vec<f32> = (0..n).map(|i| (i * 37 % 101) as f32 / 101.0).collect();
    let x1: Vec<f32> = (0..n).map(|i| (i * 53 % 97) as f32 / 97.0).collect();
    let y = x0.iter().zip(&x1).map(|(a, b)| f32::from(a + b > 1.0));
    let batch = RecordBatch::try_from_iter([
        ("x0", column(x0.iter().copied())),
        ("x1", column(x1.iter().copied())),
        ("y", column(y)),
    ])
    .unwrap();
    common::write_parquet(&file, &batch, None);
    let words = recommended(&[file.to_str().unwrap(), "--label", "y"]);
    assert!(words.windows(2).any(|w| w == ["--label", "y"]));
    let report = train(&words, dir.path());
    assert_eq!(report["model"], "logistic", "{report}");
}

#[test]
fn tune_takes_standardize_and_recommends_it() {
    let dir = common::tempdir();
    let file = dir.path().join("prices.parquet");
    let n = 8_000;
    // Mixed scales: a price in the thousands next to a feature in [0, 1).
    let price: Vec<f32> = (0..n).map(|i| 1_000.0 + (i * 7919 % 9000) as f32).collect();
    let small: Vec<f32> = (0..n).map(|i| (i * 53 % 97) as f32 / 97.0).collect();
    let label = price
        .iter()
        .zip(&small)
        .map(|(p, s)| f32::from((p - 5_500.0) / 2_600.0 + s - 0.5 > 0.0));
    let batch = RecordBatch::try_from_iter([
        ("price", column(price.iter().copied())),
        ("small", column(small.iter().copied())),
        ("label", column(label)),
    ])
    .unwrap();
    common::write_parquet(&file, &batch, None);
    let words = recommended(&[file.to_str().unwrap(), "--standardize"]);
    assert!(words.iter().any(|w| w == "--standardize"), "{words:?}");
    train(&words, dir.path());
}

#[test]
fn tune_reports_each_measurement_on_stderr_unless_quiet() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 20_000, 4, 1, 5_000, 3);
    let quick = &QUICK[..QUICK.len() - 1];
    let mut args = vec!["tune", data.to_str().unwrap()];
    args.extend(quick);
    let out = common::run_ok(&args);
    let lines = |prefix: &str| out.stderr.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(lines("tune: batch "), 3, "{}", out.stderr);
    assert_eq!(lines("tune: gradient noise"), 1, "{}", out.stderr);
    // Two settings, five repeats each (the default).
    assert_eq!(lines("tune: pipeline "), 10, "{}", out.stderr);
    args.push("-q");
    let quiet = common::run_ok(&args);
    assert!(!quiet.stderr.contains("tune:"), "{}", quiet.stderr);
    assert!(quiet.stdout.contains("recommended"), "{}", quiet.stdout);
}
