//! Issue 18's rough edges (part b): a resumed epoch's shuffle ρ stays within [−1, 1]; the demo
//! dataset goes to the user's cache outside a cargo project; `predict --out` refuses a name
//! that is not Parquet's; the optimizer picks its own default learning rate; `inspect` prints
//! readable logical types and codecs.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow_array::{Float32Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use streamfit::generate::Task;
use streamfit::pipeline::Shuffle;
use streamfit::train::{BatchSize, Checkpoint, CheckpointConfig};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// 12,000 rows in 4 files of 1,000-row groups, b = 50 (240 steps), a 2,000-row buffer:
/// resumed from the checkpoint at step 222, only 900 rows remain in the epoch. Their ρ used
/// those 900 as n against position gaps of thousands (the issue's −51.6).
#[test]
fn a_resumed_epoch_reports_shuffle_rho_within_one() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 12_000, 5, 4, 1_000, 3);
    let checkpoints = dir.path().join("checkpoints");
    let config = || {
        let mut c = common::config(&data, BatchSize::Rows(50));
        c.shuffle_buffer_rows = 2_000;
        c.shuffle = Shuffle::Seeded(11);
        c.trainer.epochs = 1;
        c
    };
    let mut full = config();
    full.trainer.checkpoint = Some(CheckpointConfig {
        dir: checkpoints.clone(),
        every_steps: Some(37),
        keep: 1_000,
    });
    let reference = common::fit(&full);
    let whole = reference.epochs[0].shuffle_spearman;
    assert!((-1.0..=1.0).contains(&whole), "uninterrupted ρ {whole}");
    for iteration in [37, 111, 222] {
        let checkpoint =
            Checkpoint::load(&checkpoints.join(format!("ckpt-{iteration:012}.sfck"))).unwrap();
        let mut resumed = config();
        resumed.trainer.resume = Some(Box::new(checkpoint));
        let result = common::fit(&resumed);
        let rho = result.epochs[0].shuffle_spearman;
        assert!(
            (-1.0..=1.0).contains(&rho),
            "resumed at {iteration}: shuffle ρ {rho}"
        );
    }
}

/// Outside any cargo project and without CARGO_TARGET_DIR, `train` without DATA uses the demo
/// in `$XDG_CACHE_HOME/streamfit/demo` (here a small one put there beforehand, so nothing big
/// is generated) and writes nothing into `./target`.
#[test]
fn the_demo_is_found_in_the_user_cache_outside_a_cargo_project() {
    let cwd = common::tempdir();
    let cache = common::tempdir();
    let demo = cache.path().join("streamfit").join("demo");
    common::dataset(&demo, Task::Logistic, 2_000, 3, 1, 500, 5);
    assert!(demo.join("truth.json").is_file());
    let mut command = Command::new(common::binary());
    command
        .args(["train", "--epochs", "1", "--no-eval"])
        .current_dir(cwd.path())
        .env_remove("CARGO_TARGET_DIR")
        .env("XDG_CACHE_HOME", cache.path());
    let outcome = common::run_command(command, common::TIMEOUT).ok();
    assert!(
        outcome.stdout.contains("2,000 rows × 3 features"),
        "{}",
        outcome.stdout
    );
    assert!(!cwd.path().join("target").exists());
}

fn trained_model(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data");
    common::dataset(&data, Task::Logistic, 2_000, 3, 1, 500, 7);
    let model = dir.join("model.json");
    common::run_ok(&[
        "train",
        s(&data),
        "-q",
        "--epochs",
        "1",
        "--no-eval",
        "--save-model",
        s(&model),
    ]);
    (data, model)
}

#[test]
fn predict_refuses_an_output_name_that_is_not_parquet() {
    let dir = common::tempdir();
    let (data, model) = trained_model(dir.path());
    for name in ["p.csv", "p.json", "p"] {
        let out = dir.path().join(name);
        let stderr = common::run_err(
            &[
                "predict",
                "-q",
                "--model",
                s(&model),
                s(&data),
                "--out",
                s(&out),
            ],
            2,
        );
        assert!(
            stderr.contains("--out") && stderr.contains(".parquet"),
            "{name}: {stderr}"
        );
        assert!(!out.exists(), "{name} was written");
    }
    for name in ["p.parquet", "p.PARQ"] {
        let out = dir.path().join(name);
        common::run_ok(&[
            "predict",
            "-q",
            "--model",
            s(&model),
            s(&data),
            "--out",
            s(&out),
        ]);
        assert!(out.is_file(), "{name}");
    }
}

#[test]
fn inspect_prints_readable_logical_types_and_codec_levels() {
    let dir = common::tempdir();
    let file = dir.path().join("t.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("x", DataType::Float32, false),
        Field::new("label", DataType::Float32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![1_i64, 2, 3, 4])),
            Arc::new(Float32Array::from(vec![0.5_f32, 1.0, 1.5, 2.0])),
            Arc::new(Float32Array::from(vec![0.0_f32, 1.0, 0.0, 1.0])),
        ],
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
        .build();
    common::write_parquet(&file, &batch, Some(props));
    let out = common::run_ok(&["inspect", s(&file), "--features", "x"]);
    assert!(
        out.stdout.contains("INT64 (TIMESTAMP(MICROS))"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("zstd(1)"), "{}", out.stdout);
    // The table stays aligned: the arrow types of all rows start in one column.
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("columns:"))
        .skip(1)
        .take(4)
        .collect();
    let starts: Vec<Option<usize>> = rows
        .iter()
        .zip(["arrow type", "Timestamp", "Float32", "Float32"])
        .map(|(row, arrow)| row.find(arrow).map(|b| row[..b].chars().count()))
        .collect();
    assert!(
        starts.iter().all(|s| s.is_some() && *s == starts[0]),
        "{starts:?} in\n{}",
        out.stdout
    );
    for debug in ["TimestampType", "zstdlevel", "is_adjusted"] {
        assert!(!out.stdout.contains(debug), "{debug}: {}", out.stdout);
    }
}

/// `train DATA --report REPORT -q --epochs 1 --no-eval` plus `extra`: the report.
fn train_report(data: &Path, report: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "train",
        s(data),
        "--epochs",
        "1",
        "--no-eval",
        "--report",
        s(report),
    ];
    args.extend_from_slice(extra);
    common::run_ok(&args);
    common::read_json(report)
}

/// Without --lr, adam and adamw take 0.001 (PyTorch's Adam default) and print it; sgd,
/// momentum and nesterov keep 0.1; a given --lr wins. A resumed adam run without --lr
/// resolves to the same rate, so the checkpoint's settings match.
#[test]
fn the_default_learning_rate_is_the_optimizers_own() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 2_000, 3, 1, 500, 9);
    let report = dir.path().join("r.json");
    for (optimizer, lr) in [
        ("sgd", 0.1),
        ("momentum", 0.1),
        ("nesterov", 0.1),
        ("adam", 0.001),
        ("adamw", 0.001),
    ] {
        let out = common::run_ok(&[
            "train",
            s(&data),
            "--epochs",
            "1",
            "--no-eval",
            "--optimizer",
            optimizer,
        ]);
        assert!(
            out.stdout.contains(&format!("{optimizer} lr {lr}")),
            "{optimizer}: {}",
            out.stdout
        );
        let json = train_report(&data, &report, &["--optimizer", optimizer]);
        let got = json["optimizer"]["learning_rate"].as_f64().unwrap();
        assert!((got - lr).abs() < 1e-9, "{optimizer}: lr {got}");
    }
    let json = train_report(&data, &report, &["--optimizer", "adam", "--lr", "0.05"]);
    let got = json["optimizer"]["learning_rate"].as_f64().unwrap();
    assert!((got - 0.05).abs() < 1e-7, "lr {got}");

    let checkpoints = dir.path().join("ckpt");
    let ckpt = s(&checkpoints);
    let base = ["train", s(&data), "-q", "--no-eval", "--optimizer", "adam"];
    let mut first = base.to_vec();
    first.extend_from_slice(&["--epochs", "1", "--checkpoint-dir", ckpt]);
    common::run_ok(&first);
    let mut resumed = base.to_vec();
    resumed.extend_from_slice(&[
        "--epochs",
        "2",
        "--checkpoint-dir",
        ckpt,
        "--resume",
        "auto",
    ]);
    common::run_ok(&resumed);
}

/// `--lr-step-epochs 2` decays every two epochs' iterations (2,000 rows at b = 256: 8 a
/// epoch, so every 16); it cannot be combined with `--lr-step-size`.
#[test]
fn lr_step_epochs_counts_epochs() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 2_000, 3, 1, 500, 9);
    let report = dir.path().join("r.json");
    let step = |json: &serde_json::Value| json["optimizer"]["schedule"]["step"]["every"].as_u64();
    let json = train_report(
        &data,
        &report,
        &["--lr-schedule", "step", "--lr-step-epochs", "2"],
    );
    assert_eq!(step(&json), Some(16), "{}", json["optimizer"]);
    let json = train_report(&data, &report, &["--lr-schedule", "step"]);
    assert_eq!(step(&json), Some(8), "{}", json["optimizer"]);
    let json = train_report(
        &data,
        &report,
        &["--lr-schedule", "step", "--lr-step-size", "5"],
    );
    assert_eq!(step(&json), Some(5), "{}", json["optimizer"]);
    let stderr = common::run_err(
        &[
            "train",
            s(&data),
            "--lr-schedule",
            "step",
            "--lr-step-size",
            "5",
            "--lr-step-epochs",
            "2",
        ],
        2,
    );
    assert!(stderr.contains("--lr-step-epochs"), "{stderr}");
    let help = common::run_ok(&["train", "--help"]).stdout;
    assert!(help.contains("--lr-step-epochs"), "{help}");
}
