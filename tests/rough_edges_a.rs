//! Issue 18's rough edges (part a), each through the built binary: `--valid` takes one path per
//! occurrence, an OS error is printed once, counts of one are singular, no eval time under
//! `--no-eval`, `-` for stages without rows in the profile, the report's batch size is the rows
//! a step had, and the flag spellings shared with `plot` and the `--no-x` switches.

mod common;

use std::path::Path;
use std::process::Command;

use common::{dataset, read_json, run_command, run_err, run_ok, tempdir, to_shards};
use streamfit::generate::Task;

/// A one-file logistic dataset of `rows` rows (3 features, row groups of 250) in `dir`.
fn data(dir: &Path, rows: u64, seed: u64) -> String {
    dataset(dir, Task::Logistic, rows, 3, 1, 250, seed);
    dir.display().to_string()
}

#[test]
fn valid_takes_one_path_per_occurrence() {
    let tmp = tempdir();
    let train = data(&tmp.path().join("t"), 2_000, 1);
    let valid = data(&tmp.path().join("v"), 500, 2);
    let valid2 = data(&tmp.path().join("v2"), 300, 3);
    let report = tmp.path().join("r.json");
    // In a scratch directory: a DATA swallowed by --valid would fall back to the demo dataset,
    // generated under the working directory.
    let mut command = Command::new(common::binary());
    command.current_dir(tmp.path()).args([
        "train",
        "--valid",
        &valid,
        &train,
        "--report",
        report.to_str().unwrap(),
    ]);
    let outcome = run_command(command, common::TIMEOUT).ok();
    assert!(
        outcome.stdout.contains("data: 2,000 rows"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("valid: 500 rows in 1 file,"),
        "{}",
        outcome.stdout
    );
    assert_eq!(read_json(&report)["rows"], 2_000);
    assert!(
        !tmp.path().join("target").exists(),
        "the demo was generated"
    );

    // Repeated for more.
    let out = run_ok(&["train", "--valid", &valid, "--valid", &valid2, &train]).stdout;
    assert!(out.contains("valid: 800 rows in 2 files,"), "{out}");
}

#[test]
fn io_error_names_its_cause_once() {
    let tmp = tempdir();
    let missing = tmp.path().join("missing.parquet");
    let err = run_err(&["train", missing.to_str().unwrap()], 2);
    assert!(err.contains("missing.parquet"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

#[test]
fn counts_of_one_are_singular_and_no_eval_time_without_evaluation() {
    let tmp = tempdir();
    let train = data(&tmp.path().join("t"), 1_000, 4);
    let out = run_ok(&[
        "train",
        &train,
        "--batch-size",
        "full",
        "--no-eval",
        "--readers",
        "1",
        "--threads",
        "1",
    ])
    .stdout;
    let epoch = out
        .lines()
        .find(|l| l.starts_with("epoch 1/1:"))
        .expect("an epoch line");
    assert!(epoch.contains(": 1 iteration, 1,000 rows,"), "{epoch}");
    assert!(!epoch.contains("s eval"), "no evaluation ran: {epoch}");
    let plan = out.lines().find(|l| l.starts_with("train:")).unwrap();
    assert!(
        plan.contains("1 iteration/epoch, 1 epoch,")
            && plan.contains("1 reader, 1 gradient thread"),
        "{plan}"
    );
    assert!(
        out.contains("data: 1,000 rows × 3 features in 1 file, 4 units"),
        "{out}"
    );
    assert!(out.contains("done: 1 iteration in "), "{out}");

    // With the full-data pass, its time is shown.
    let out = run_ok(&["train", &train, "--batch-size", "full", "--full-loss"]).stdout;
    let epoch = out.lines().find(|l| l.starts_with("epoch 1/1:")).unwrap();
    assert!(epoch.contains(" s eval)"), "{epoch}");

    let scan = run_ok(&["scan", &train, "--readers", "1"]).stdout;
    assert!(scan.starts_with("scan: 1,000 rows × 3 features"), "{scan}");
    assert!(scan.trim_end().ends_with(", 1 reader"), "{scan}");
}

#[test]
fn profile_shows_no_throughput_for_stages_without_rows() {
    let tmp = tempdir();
    let train = data(&tmp.path().join("t"), 2_000, 5);
    let out = run_ok(&["train", &train, "--profile", "--batch-size", "64"]).stdout;
    let rows_of = |stage: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{stage} ")))
            .unwrap_or_else(|| panic!("no {stage} row in {out}"))
            .to_string()
    };
    for stage in ["wait", "update"] {
        let row = rows_of(stage);
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 2..], ["-", "-"], "{row}");
    }
    let read = rows_of("read");
    assert!(!read.split_whitespace().any(|c| c == "-"), "{read}");
}

#[test]
fn report_batch_size_is_the_rows_a_step_had() {
    let tmp = tempdir();
    let train = data(&tmp.path().join("t"), 2_000, 6);
    let report = tmp.path().join("r.json");
    run_ok(&[
        "train",
        &train,
        "--batch-size",
        "50000",
        "--report",
        report.to_str().unwrap(),
        "-q",
    ]);
    let report = read_json(&report);
    assert_eq!(report["batch_size"], 2_000);
    assert_eq!(report["iterations"], 1);

    let small = tmp.path().join("small.json");
    run_ok(&[
        "train",
        &train,
        "--batch-size",
        "300",
        "--report",
        small.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(read_json(&small)["batch_size"], 300);
}

#[test]
fn train_and_plot_share_log_y_and_the_old_spelling_still_works() {
    let tmp = tempdir();
    let train = data(&tmp.path().join("t"), 1_000, 7);
    let svg = tmp.path().join("loss.svg");
    let svg = svg.to_str().unwrap();
    for flag in ["--log-y", "--plot-log"] {
        run_ok(&["train", &train, "--plot", svg, flag, "-q"]);
        let drawn = std::fs::read_to_string(svg).unwrap();
        assert!(drawn.contains("log scale"), "{flag}");
    }
    let help = run_ok(&["train", "--help"]).stdout;
    assert!(help.contains("--log-y"), "{help}");
    assert!(!help.contains("--plot-log"), "{help}");
}

#[test]
fn checksums_are_turned_off_by_a_no_switch_and_the_old_bool_form_still_works() {
    let tmp = tempdir();
    let parquet = tmp.path().join("t");
    data(&parquet, 1_000, 8);
    let shards = tmp.path().join("shards");
    to_shards(&parquet, &shards, Some(500), 1);
    let shards = shards.to_str().unwrap();
    for flags in [
        &["--no-verify-checksums"][..],
        &["--verify-checksums", "false"],
        &["--verify-checksums", "true"],
        &[],
    ] {
        let mut args = vec!["scan", shards];
        args.extend_from_slice(flags);
        let out = run_ok(&args).stdout;
        assert!(out.starts_with("scan: 1,000 rows"), "{flags:?}: {out}");
    }
    let err = run_err(
        &[
            "scan",
            shards,
            "--no-verify-checksums",
            "--verify-checksums",
            "true",
        ],
        2,
    );
    assert!(err.contains("cannot be used with"), "{err}");
    let help = run_ok(&["scan", "--help"]).stdout;
    assert!(help.contains("--no-verify-checksums"), "{help}");
    assert!(!help.contains("--verify-checksums <"), "{help}");
}
