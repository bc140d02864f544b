//! Evaluation that scales to data larger than RAM: the running training loss by default (the
//! full-data pass only with `--full-loss`), exact across a resume; validation every so many
//! steps with early stopping counted in evaluations; a validation set cut to its first rows or
//! held out of the training units; the memory budget with the validation pass; the plot's
//! validation and moving-average curves.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use streamfit::generate::Task;
use streamfit::train::{Checkpoint, CheckpointConfig};

/// 20,000 logistic rows × 6 features in 2 files of 1,000-row row groups (20 units).
fn train_data(dir: &Path) -> PathBuf {
    let data = dir.join("train");
    common::dataset(&data, Task::Logistic, 20_000, 6, 2, 1_000, 3);
    data
}

/// 4,000 rows × 6 features from another true model (so that fitting the training data
/// soon stops helping on them), in 1,000-row row groups.
fn valid_data(dir: &Path) -> PathBuf {
    let data = dir.join("valid");
    common::dataset(&data, Task::Logistic, 4_000, 6, 1, 1_000, 4);
    data
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `train DATA -q --batch-size 100 --report REPORT` plus `extra`: the report.
fn train_report(data: &Path, report: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "train",
        s(data),
        "-q",
        "--batch-size",
        "100",
        "--report",
        s(report),
    ];
    args.extend_from_slice(extra);
    common::run_ok(&args);
    common::read_json(report)
}

/// The lines of a metrics file that have `key`.
fn metrics_lines(path: &Path, key: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get(key).is_some())
        .collect()
}

fn f64_bits(v: &Value) -> u64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("not a number: {v}"))
        .to_bits()
}

#[test]
fn the_report_has_the_running_train_loss_by_default_and_the_full_loss_on_request() {
    let dir = common::tempdir();
    let data = train_data(dir.path());
    let metrics = dir.path().join("metrics.jsonl");
    let report = train_report(
        &data,
        &dir.path().join("r.json"),
        &["--epochs", "2", "--metrics", s(&metrics)],
    );
    assert!(report.get("full_loss").is_none(), "{report}");
    assert!(report.get("final_loss").is_none(), "{report}");
    assert!(
        report.get("final_accuracy").is_none(),
        "no full pass, no accuracy"
    );
    let train_loss = report["train_loss"].as_f64().expect("train_loss");
    let epochs = report["epoch_summaries"].as_array().unwrap();
    for e in epochs {
        assert!(e.get("full_loss").is_none(), "{e}");
        assert_eq!(e["train_loss_rows"], 20_000);
    }
    assert_eq!(f64_bits(&epochs[1]["train_loss"]), train_loss.to_bits());
    // The running loss is the mean of the epoch's step losses over its rows.
    let steps = metrics_lines(&metrics, "batch_loss");
    let (sum, rows) =
        steps
            .iter()
            .filter(|l| l["epoch"] == 2)
            .fold((0.0, 0.0), |(sum, rows), l| {
                let n = l["rows"].as_f64().unwrap();
                (sum + l["batch_loss"].as_f64().unwrap() * n, rows + n)
            });
    assert!(
        ((sum / rows) - train_loss).abs() < 1e-12,
        "{} vs {train_loss}",
        sum / rows
    );
    let epoch_lines = metrics_lines(&metrics, "iterations");
    assert_eq!(
        f64_bits(&epoch_lines[1]["train_loss"]),
        train_loss.to_bits()
    );

    let full = train_report(
        &data,
        &dir.path().join("full.json"),
        &["--epochs", "2", "--full-loss"],
    );
    assert_eq!(
        f64_bits(&full["train_loss"]),
        train_loss.to_bits(),
        "the same training"
    );
    let full_loss = full["full_loss"].as_f64().expect("full_loss");
    assert_ne!(full_loss, train_loss);
    assert!(full["final_accuracy"].as_f64().is_some());
    assert!(full["epoch_summaries"][0]["full_loss"].as_f64().is_some());

    // What the epoch line says: `train loss` by default; `loss` and accuracy with the pass.
    let out = common::run_ok(&["train", s(&data), "--batch-size", "100"]).stdout;
    let epoch = out.lines().find(|l| l.starts_with("epoch 1/1")).unwrap();
    assert!(epoch.contains(", train loss 0."), "{epoch}");
    assert!(
        !epoch.contains("accuracy") && !epoch.contains("eval)"),
        "{epoch}"
    );
    let done = out.lines().find(|l| l.starts_with("done:")).unwrap();
    assert!(done.contains("train loss 0."), "{done}");
    let out = common::run_ok(&["train", s(&data), "--batch-size", "100", "--full-loss"]).stdout;
    let epoch = out.lines().find(|l| l.starts_with("epoch 1/1")).unwrap();
    assert!(
        epoch.contains(", loss 0.") && epoch.contains("accuracy") && epoch.contains("s eval)"),
        "{epoch}"
    );
    // `--no-eval` is still accepted (the default now), and conflicts with `--full-loss`.
    let no_eval = train_report(&data, &dir.path().join("n.json"), &["--no-eval"]);
    assert!(no_eval["train_loss"].as_f64().is_some());
    common::run_err(&["train", s(&data), "--no-eval", "--full-loss"], 2);
}

#[test]
fn train_loss_of_a_run_resumed_mid_epoch_is_the_uninterrupted_runs_exactly() {
    let dir = common::tempdir();
    let data = train_data(dir.path());
    let checkpoints = dir.path().join("ck");
    let base = [
        "--epochs",
        "2",
        "--shuffle-buffer",
        "3000",
        "--threads",
        "2",
    ];
    let with_checkpoints = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = base.iter().map(|a| a.to_string()).collect();
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };
    let args = with_checkpoints(&[
        "--checkpoint-dir",
        s(&checkpoints),
        "--checkpoint-every",
        "37",
        "--keep-checkpoints",
        "100",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let full = train_report(&data, &dir.path().join("full.json"), &args);
    let losses = |report: &Value| -> Vec<u64> {
        report["epoch_summaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| f64_bits(&e["train_loss"]))
            .collect()
    };
    // 37 is in epoch 1, 259 in epoch 2 (200 steps per epoch).
    for iteration in [37u64, 259] {
        let name = format!("ckpt-{iteration:012}.sfck");
        let resume_dir = dir.path().join(format!("resume-{iteration}"));
        std::fs::create_dir(&resume_dir).unwrap();
        std::fs::copy(checkpoints.join(&name), resume_dir.join(&name)).unwrap();
        let args = with_checkpoints(&[
            "--checkpoint-dir",
            s(&resume_dir),
            "--resume",
            "auto",
            "--readers",
            "3",
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let resumed = train_report(&data, &dir.path().join("resumed.json"), &args);
        assert_eq!(resumed["resumed"]["from_iteration"], iteration);
        assert_eq!(losses(&resumed), losses(&full), "resumed at {iteration}");
        let last = &resumed["epoch_summaries"][1];
        assert_eq!(last["train_loss_rows"], 20_000, "resumed at {iteration}");
    }

    // A checkpoint written before the running sums were carried still loads; the resumed
    // epoch's train loss covers the steps since the resume, and says so.
    let mut old = Checkpoint::load(&checkpoints.join(format!("ckpt-{:012}.sfck", 259))).unwrap();
    assert!(
        old.epoch_loss.is_some(),
        "mid-epoch checkpoints carry the sums"
    );
    old.epoch_loss = None;
    let old_dir = dir.path().join("old");
    old.save(&CheckpointConfig {
        dir: old_dir.clone(),
        every_steps: None,
        keep: 1,
    })
    .unwrap();
    let args = with_checkpoints(&["--checkpoint-dir", s(&old_dir), "--resume", "auto"]);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.splice(0..0, ["train", s(&data), "--batch-size", "100"]);
    let out = common::run_ok(&args).stdout;
    let epoch = out.lines().find(|l| l.starts_with("epoch 2/2")).unwrap();
    assert!(
        epoch.contains("train loss 0.")
            && epoch.contains("(over the 14,100 rows since the resume)"),
        "{epoch}"
    );
}

#[test]
fn eval_every_stops_early_within_an_epoch_and_keeps_the_best_evaluation() {
    let dir = common::tempdir();
    let data = train_data(dir.path());
    let valid = valid_data(dir.path());
    let metrics = dir.path().join("m.jsonl");
    let model = dir.path().join("model.json");
    let checkpoints = dir.path().join("ck");
    let args = [
        "--valid",
        s(&valid),
        "--eval-every",
        "10",
        "--early-stop",
        "3",
        "--lr",
        "0.5",
        "--metrics",
        s(&metrics),
        "--save-model",
        s(&model),
        "--checkpoint-dir",
        s(&checkpoints),
        "--checkpoint-every",
        "15",
        "--keep-checkpoints",
        "100",
    ];
    let report = train_report(&data, &dir.path().join("r.json"), &args);
    let stopped_at = report["iterations"].as_u64().unwrap();
    assert_eq!(report["stopped_early"], 1, "{report}");
    assert!(stopped_at < 200, "stopped within the first epoch: {report}");
    let evaluations = metrics_lines(&metrics, "valid_loss");
    assert_eq!(evaluations.len() as u64, stopped_at / 10);
    for (i, e) in evaluations.iter().enumerate() {
        assert_eq!(e["iteration"], 10 * (i as u64 + 1));
        assert_eq!(e["valid_rows"], 4_000);
    }
    // The best evaluation is the lowest loss, three evaluations before the stop.
    let best = evaluations
        .iter()
        .min_by(|a, b| {
            a["valid_loss"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["valid_loss"].as_f64().unwrap())
        })
        .unwrap();
    let best_iteration = best["iteration"].as_u64().unwrap();
    assert_eq!(report["best_iteration"], best_iteration);
    assert_eq!(best_iteration + 30, stopped_at);
    assert_eq!(best["best"], true);
    assert_eq!(
        report["final_valid"]["loss"],
        evaluations.last().unwrap()["valid_loss"]
    );
    // The saved model is the best evaluation's: `eval` on the validation data finds its loss.
    let eval = common::run_ok(&["eval", "--json", "--model", s(&model), s(&valid)]);
    let eval: Value = serde_json::from_str(&eval.stdout).unwrap();
    assert_eq!(eval["loss"], best["valid_loss"]);

    // Resumed between evaluations, the run stops where it did with the same model.
    let reference = std::fs::read(&model).unwrap();
    // 15: early on; the checkpoint after the best evaluation: between it and the stop.
    let mut resume_at = vec![15u64, (best_iteration / 15 + 1) * 15];
    resume_at.dedup();
    for iteration in resume_at {
        let name = format!("ckpt-{iteration:012}.sfck");
        let resume_dir = dir.path().join(format!("resume-{iteration}"));
        std::fs::create_dir(&resume_dir).unwrap();
        std::fs::copy(checkpoints.join(&name), resume_dir.join(&name)).unwrap();
        let mut resumed_args = args.to_vec();
        let at = resumed_args
            .iter()
            .position(|a| *a == s(&checkpoints))
            .unwrap();
        resumed_args[at] = s(&resume_dir);
        resumed_args.extend(["--resume", "auto"]);
        let resumed = train_report(&data, &dir.path().join("resumed.json"), &resumed_args);
        assert_eq!(resumed["iterations"], stopped_at, "resumed at {iteration}");
        assert_eq!(
            resumed["best_iteration"], best_iteration,
            "resumed at {iteration}"
        );
        assert_eq!(
            std::fs::read(&model).unwrap(),
            reference,
            "resumed at {iteration}"
        );
    }
}

#[test]
fn eval_every_and_valid_rows_need_validation_data() {
    let dir = common::tempdir();
    let data = train_data(dir.path());
    let err = common::run_err(&["train", s(&data), "--eval-every", "10"], 2);
    assert!(
        err.contains("--eval-every") && err.contains("--valid"),
        "{err}"
    );
    let err = common::run_err(&["train", s(&data), "--valid-rows", "10"], 2);
    assert!(err.contains("--valid-rows"), "{err}");
    let err = common::run_err(&["train", s(&data), "--valid-fraction", "1.5"], 2);
    assert!(err.contains("--valid-fraction"), "{err}");
}

#[test]
fn valid_rows_validates_exactly_the_first_n_rows() {
    let dir = common::tempdir();
    let data = train_data(dir.path());
    let valid = valid_data(dir.path());
    let metrics = dir.path().join("m.jsonl");
    let report = train_report(
        &data,
        &dir.path().join("r.json"),
        &[
            "--valid",
            s(&valid),
            "--valid-rows",
            "1234",
            "--eval-every",
            "50",
            "--metrics",
            s(&metrics),
        ],
    );
    assert_eq!(report["valid_rows"], 1_234);
    let evaluations = metrics_lines(&metrics, "valid_loss");
    assert_eq!(evaluations.len(), 4);
    assert!(evaluations.iter().all(|e| e["valid_rows"] == 1_234));
    // Without --valid-rows, every validation row.
    let all = train_report(&data, &dir.path().join("all.json"), &["--valid", s(&valid)]);
    assert_eq!(all["valid_rows"], 4_000);
    assert_ne!(all["final_valid"]["loss"], report["final_valid"]["loss"]);
}

#[test]
fn valid_fraction_holds_out_the_same_units_for_any_reader_and_thread_count() {
    let dir = common::tempdir();
    let data = train_data(dir.path());
    let mut runs = Vec::new();
    for (readers, threads) in [("1", "1"), ("3", "2")] {
        let ids = dir.path().join(format!("ids-{readers}"));
        std::fs::create_dir(&ids).unwrap();
        let report = train_report(
            &data,
            &dir.path().join(format!("r-{readers}.json")),
            &[
                "--valid-fraction",
                "0.25",
                "--seed",
                "5",
                "--epochs",
                "2",
                "--readers",
                readers,
                "--threads",
                threads,
                "--debug-row-ids",
                s(&ids),
                "--save-model",
                s(&dir.path().join(format!("model-{readers}.json"))),
            ],
        );
        let held = &report["held_out"];
        // round(0.25 × 20) = 5 units of 1,000 rows.
        assert_eq!(held["units"].as_array().unwrap().len(), 5, "{report}");
        assert_eq!(held["total_units"], 20);
        assert_eq!(held["rows"], 5_000);
        assert_eq!(report["rows"], 15_000);
        assert_eq!(report["rows_per_epoch"], 15_000);
        assert_eq!(report["iterations_per_epoch"], 150);
        assert_eq!(report["valid_rows"], 5_000);
        // Training rows + held-out rows = all rows, and each training row once per epoch.
        assert_eq!(
            report["rows"].as_u64().unwrap() + held["rows"].as_u64().unwrap(),
            20_000
        );
        for epoch in 1..=2 {
            let text =
                std::fs::read_to_string(ids.join(format!("rank-0-epoch-{epoch}.txt"))).unwrap();
            let mut seen: Vec<u64> = text
                .split_whitespace()
                .map(|id| id.parse().unwrap())
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..15_000).collect::<Vec<u64>>(), "epoch {epoch}");
        }
        runs.push((held.clone(), report["final_valid"].clone()));
    }
    assert_eq!(runs[0], runs[1], "the same units, the same validation");
    assert_eq!(
        std::fs::read(dir.path().join("model-1.json")).unwrap(),
        std::fs::read(dir.path().join("model-3.json")).unwrap()
    );
    // Another seed holds out other units.
    let other = train_report(
        &data,
        &dir.path().join("other.json"),
        &["--valid-fraction", "0.25", "--seed", "6"],
    );
    assert_ne!(other["held_out"]["units"], runs[0].0["units"]);
    // Not with --valid.
    let valid = valid_data(dir.path());
    common::run_err(
        &[
            "train",
            s(&data),
            "--valid-fraction",
            "0.2",
            "--valid",
            s(&valid),
        ],
        2,
    );
}

#[test]
fn a_resume_with_a_changed_eval_every_or_valid_fraction_is_refused() {
    let dir = common::tempdir();
    let data = train_data(dir.path());
    let checkpoints = dir.path().join("ck");
    let run = |fraction: &str, every: &str, resume: bool| {
        let mut args = vec![
            "train",
            s(&data),
            "-q",
            "--batch-size",
            "100",
            "--valid-fraction",
            fraction,
            "--eval-every",
            every,
            "--checkpoint-dir",
            s(&checkpoints),
        ];
        if resume {
            args.extend(["--resume", "auto"]);
        }
        common::run(&args, common::TIMEOUT)
    };
    run("0.2", "20", false).ok();
    let err = run("0.3", "20", true).fails_with(2);
    assert!(err.contains("--valid-fraction was 0.2"), "{err}");
    let err = run("0.2", "30", true).fails_with(2);
    assert!(err.contains("--eval-every was 20, now 30"), "{err}");
    run("0.2", "20", true).ok();
}

#[test]
fn the_memory_budget_adds_the_validation_pass() {
    let dir = common::tempdir();
    let data = train_data(dir.path());
    let valid = valid_data(dir.path());
    let without = train_report(&data, &dir.path().join("a.json"), &[]);
    let with = train_report(&data, &dir.path().join("b.json"), &["--valid", s(&valid)]);
    let budget = |r: &Value| r["memory_budget_bytes"].as_u64().unwrap();
    // The validation pass: 4,000 rows in batches of up to 4,000 rows, 2 readers' blocks.
    assert!(
        budget(&with) > budget(&without) + 4_000 * 4 * 7,
        "{} vs {}",
        budget(&with),
        budget(&without)
    );
}

#[test]
fn the_plot_shows_the_validation_and_moving_average_curves() {
    let dir = common::tempdir();
    let data = train_data(dir.path());
    let valid = valid_data(dir.path());
    let plot = dir.path().join("loss.svg");
    let metrics = dir.path().join("m.jsonl");
    common::run_ok(&[
        "train",
        s(&data),
        "-q",
        "--epochs",
        "2",
        "--batch-size",
        "100",
        "--valid",
        s(&valid),
        "--plot",
        s(&plot),
    ]);
    let svg = std::fs::read_to_string(&plot).unwrap();
    for label in [
        "batch loss (per iteration)",
        "batch loss, moving average (EMA, α = 0.05)",
        "train loss (per epoch, mean of its steps)",
        "validation loss",
    ] {
        assert!(svg.contains(label), "{label} missing from the plot");
    }
    // From a metrics file of an --eval-every run, with the full-data loss.
    common::run_ok(&[
        "train",
        s(&data),
        "-q",
        "--batch-size",
        "100",
        "--valid",
        s(&valid),
        "--eval-every",
        "40",
        "--full-loss",
        "--metrics",
        s(&metrics),
    ]);
    let replot = dir.path().join("replot.svg");
    common::run_ok(&["plot", s(&metrics), "--out", s(&replot)]);
    let svg = std::fs::read_to_string(&replot).unwrap();
    for label in [
        "validation loss",
        "moving average",
        "full-data loss (per epoch)",
    ] {
        assert!(svg.contains(label), "{label} missing from the replot");
    }
}
