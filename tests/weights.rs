//! Issue 15, weights: `--weight-column` multiplies each row's loss by its weight (a step
//! averages by the weights' sum) and `--class-weight balanced` weights class c by
//! N / (C · n_c). Integer weights equal duplicated rows, all-ones weights change nothing (bit
//! for bit), balanced equals the same weights given as a column, and raises the minority
//! class's recall; bad weights are refused with their row; a resume refuses a changed weight
//! option. Also `eval --drop-null-labels` and the `not used:` line's distinct counts.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, StringArray};
use streamfit::comm::SingleProcess;
use streamfit::config::TrainConfig;
use streamfit::data::ColumnSpec;
use streamfit::model::ModelSpec;
use streamfit::pipeline::Shuffle;
use streamfit::run::PreparedRun;
use streamfit::train::{BatchSize, ClassWeight};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A seeded stream of standard normal values (Box–Muller over a 64-bit LCG).
fn normals(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

/// Rows of two features and a label (0..classes), the label a noisy function of the features.
struct Table {
    x1: Vec<f32>,
    x2: Vec<f32>,
    label: Vec<f32>,
}

fn table(n: usize, classes: usize, seed: u64) -> Table {
    let (a, b, noise) = (normals(seed, n), normals(seed + 1, n), normals(seed + 2, n));
    let label = (0..n)
        .map(|i| {
            let score = a[i] - 0.5 * b[i] + 0.7 * noise[i];
            let class = if classes == 2 {
                usize::from(score > 0.0)
            } else {
                usize::from(score > -0.5) + usize::from(score > 0.5)
            };
            class as f32
        })
        .collect();
    Table {
        x1: a,
        x2: b,
        label,
    }
}

/// Writes `t` (and `w`, when given) as one Parquet file.
fn write_table(path: &Path, t: &Table, w: Option<&[f32]>) {
    let f32s = |v: &[f32]| Arc::new(Float32Array::from(v.to_vec())) as ArrayRef;
    let mut columns = vec![("x1", f32s(&t.x1)), ("x2", f32s(&t.x2))];
    if let Some(w) = w {
        columns.push(("w", f32s(w)));
    }
    columns.push(("label", f32s(&t.label)));
    common::write_columns(path, columns);
}

/// A quiet run of `model` on `data` with batch `batch`, unshuffled or seeded.
fn config(data: &Path, model: ModelSpec, batch: BatchSize, shuffle: Shuffle) -> TrainConfig {
    let mut config = TrainConfig {
        data: vec![data.to_path_buf()],
        batch_size: batch,
        shuffle,
        shuffle_buffer_rows: 64,
        standardize: streamfit::train::Standardize::Never,
        ..TrainConfig::default()
    };
    config.trainer.model = model;
    config.trainer.epochs = 15;
    config.trainer.num_threads = 2;
    config.trainer.optimizer.learning_rate = 0.5;
    config
}

fn weighted(mut config: TrainConfig) -> TrainConfig {
    config.columns = ColumnSpec {
        weight: Some("w".into()),
        ..config.columns
    };
    config
}

fn train(config: TrainConfig) -> Vec<f32> {
    let mut run = PreparedRun::new(config, &SingleProcess).expect("prepare");
    run.train(&mut ()).expect("train").params
}

#[track_caller]
fn assert_close(a: &[f32], b: &[f32], tolerance: f32) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= tolerance * (1.0 + y.abs()),
            "{a:?} vs {b:?}"
        );
    }
}

#[test]
fn an_integer_weight_equals_the_row_repeated_in_batch_descent() {
    let dir = common::tempdir();
    for (model, classes) in [(ModelSpec::logistic(), 2), (ModelSpec::softmax(3), 3)] {
        let t = table(300, classes, 7);
        let mut w = vec![1.0f32; 300];
        w[17] = 2.0;
        w[200] = 3.0;
        let with_weights = dir.path().join(format!("w{classes}.parquet"));
        write_table(&with_weights, &t, Some(&w));
        // The same rows without weights, rows 17 and 200 repeated (1 and 2 more times).
        let mut repeated = Table {
            x1: t.x1.clone(),
            x2: t.x2.clone(),
            label: t.label.clone(),
        };
        for i in [17, 200, 200] {
            repeated.x1.push(t.x1[i]);
            repeated.x2.push(t.x2[i]);
            repeated.label.push(t.label[i]);
        }
        let duplicated = dir.path().join(format!("d{classes}.parquet"));
        write_table(&duplicated, &repeated, None);
        let full = |data: &Path| config(data, model.clone(), BatchSize::Full, Shuffle::Off);
        let a = train(weighted(full(&with_weights)));
        let b = train(full(&duplicated));
        assert_close(&a, &b, 1e-5);
    }
}

#[test]
fn weights_of_one_give_bit_identical_parameters() {
    let dir = common::tempdir();
    for (model, classes) in [(ModelSpec::logistic(), 2), (ModelSpec::softmax(3), 3)] {
        let t = table(500, classes, 11);
        let with = dir.path().join(format!("ones{classes}.parquet"));
        write_table(&with, &t, Some(&[1.0; 500]));
        let without = dir.path().join(format!("plain{classes}.parquet"));
        write_table(&without, &t, None);
        let mini =
            |data: &Path| config(data, model.clone(), BatchSize::Rows(32), Shuffle::Seeded(3));
        let a = train(weighted(mini(&with)));
        let b = train(mini(&without));
        assert_eq!(common::bits(&a), common::bits(&b));
    }
}

#[test]
fn balanced_class_weights_equal_those_weights_as_a_column() {
    let dir = common::tempdir();
    for (model, classes) in [(ModelSpec::logistic(), 2), (ModelSpec::softmax(3), 3)] {
        let t = table(400, classes, 5);
        let mut counts = vec![0u64; classes];
        for &y in &t.label {
            counts[y as usize] += 1;
        }
        let weights = streamfit::train::balanced_weights(&counts);
        // N / (C · n_c), the closed form.
        for (c, w) in weights.iter().enumerate() {
            let expected = 400.0 / (classes as f64 * counts[c] as f64);
            assert!((f64::from(*w) - expected).abs() < 1e-6);
        }
        let w: Vec<f32> = t.label.iter().map(|&y| weights[y as usize]).collect();
        let with = dir.path().join(format!("cw{classes}.parquet"));
        write_table(&with, &t, Some(&w));
        let plain = dir.path().join(format!("p{classes}.parquet"));
        write_table(&plain, &t, None);
        let mini =
            |data: &Path| config(data, model.clone(), BatchSize::Rows(50), Shuffle::Seeded(1));
        let mut balanced = mini(&plain);
        balanced.class_weight = ClassWeight::Balanced;
        let a = train(balanced);
        let b = train(weighted(mini(&with)));
        assert_close(&a, &b, 1e-5);
    }
}

#[test]
fn balanced_weights_raise_the_minority_recall_on_a_90_10_set() {
    // Class 0 ~ N(0, 1), class 1 ~ N(1, 1), one row in ten of class 1: the unweighted
    // decision threshold sits near x = 0.5 + ln 9 ≈ 2.7 (recall of class 1 ≈ 5%), the
    // balanced one near x = 0.5 (recall ≈ 69%).
    let n = 4_000;
    let noise = normals(21, n);
    let label: Vec<f32> = (0..n).map(|i| f32::from(u8::from(i % 10 == 0))).collect();
    let x1: Vec<f32> = (0..n).map(|i| noise[i] + label[i]).collect();
    let t = Table {
        x2: vec![0.0; n],
        x1,
        label,
    };
    let dir = common::tempdir();
    let data = dir.path().join("imbalanced.parquet");
    write_table(&data, &t, None);
    let recall = |params: &[f32]| {
        let (mut hit, mut positives) = (0, 0);
        for i in 0..n {
            if t.label[i] == 1.0 {
                positives += 1;
                let z = params[0] * t.x1[i] + params[1] * t.x2[i] + params[2];
                hit += usize::from(z > 0.0);
            }
        }
        hit as f64 / positives as f64
    };
    let base = || {
        let mut c = config(
            &data,
            ModelSpec::logistic(),
            BatchSize::Rows(100),
            Shuffle::Seeded(0),
        );
        c.trainer.epochs = 30;
        c.trainer.optimizer.learning_rate = 0.3;
        c
    };
    let unweighted = recall(&train(base()));
    let mut balanced = base();
    balanced.class_weight = ClassWeight::Balanced;
    let balanced = recall(&train(balanced));
    assert!(unweighted < 0.2, "unweighted recall {unweighted}");
    assert!(balanced > 0.55, "balanced recall {balanced}");
}

#[test]
fn bad_weights_are_refused_with_their_row_and_value() {
    let dir = common::tempdir();
    let t = table(6, 2, 3);
    for (name, w, value) in [
        (
            "negative",
            vec![1.0f32, 1.0, 1.0, -1.0, 1.0, 1.0],
            "weight -1",
        ),
        ("nan", vec![1.0, 1.0, 1.0, f32::NAN, 1.0, 1.0], "weight NaN"),
        (
            "inf",
            vec![1.0, 1.0, 1.0, f32::INFINITY, 1.0, 1.0],
            "weight inf",
        ),
    ] {
        let path = dir.path().join(format!("{name}.parquet"));
        write_table(&path, &t, Some(&w));
        let err = common::run_err(&["train", s(&path), "-q", "--weight-column", "w"], 2);
        assert!(
            err.contains(&format!(
                "row group 0, row 3: {value} in column `w` is not a finite number ≥ 0 (the column named by --weight-column)"
            )),
            "{name}: {err}"
        );
    }
    let path = dir.path().join("null.parquet");
    common::write_columns(
        &path,
        vec![
            (
                "x1",
                Arc::new(Float32Array::from(vec![1.0f32, 2.0, 3.0])) as ArrayRef,
            ),
            (
                "w",
                Arc::new(Float64Array::from(vec![Some(1.0), None, Some(2.0)])),
            ),
            (
                "label",
                Arc::new(Float32Array::from(vec![0.0f32, 1.0, 0.0])),
            ),
        ],
    );
    let err = common::run_err(&["train", s(&path), "-q", "--weight-column", "w"], 2);
    assert!(err.contains("row 1: weight null in column `w`"), "{err}");
    // Never a feature; never the label; a column that exists.
    let err = common::run_err(
        &[
            "train",
            s(&path),
            "-q",
            "--weight-column",
            "w",
            "--features",
            "x1,w",
        ],
        2,
    );
    assert!(err.contains("`w` is the --weight-column"), "{err}");
    let err = common::run_err(&["train", s(&path), "-q", "--weight-column", "label"], 2);
    assert!(err.contains("`label` is the label column"), "{err}");
    let err = common::run_err(
        &[
            "train",
            s(&path),
            "-q",
            "--class-weight",
            "balanced",
            "--model",
            "linear",
        ],
        2,
    );
    assert!(err.contains("--class-weight"), "{err}");
}

#[test]
fn the_weight_column_is_no_feature_and_joins_the_report() {
    let dir = common::tempdir();
    let data = dir.path().join("t.parquet");
    let t = table(200, 2, 9);
    write_table(&data, &t, Some(&[2.0; 200]));
    let report = dir.path().join("report.json");
    let out = common::run_ok(&[
        "train",
        s(&data),
        "--weight-column",
        "w",
        "--class-weight",
        "balanced",
        "--report",
        s(&report),
    ]);
    assert!(out.stdout.contains("× 2 features"), "{}", out.stdout);
    assert!(
        out.stdout.contains("class weights (balanced"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("not used: w"), "{}", out.stdout);
    let report = common::read_json(&report);
    assert_eq!(report["weight_column"], "w");
    assert_eq!(report["num_features"], 2);
    assert_eq!(report["class_weights"].as_array().map(Vec::len), Some(2));
}

#[test]
fn resume_refuses_a_changed_weight_option() {
    let dir = common::tempdir();
    let data = dir.path().join("t.parquet");
    let t = table(200, 2, 13);
    write_table(&data, &t, Some(&[1.5; 200]));
    let checkpoints = dir.path().join("ckpt");
    let run = |extra: &[&str], resume: bool| {
        let mut args = vec![
            "train",
            s(&data),
            "-q",
            "--batch-size",
            "20",
            "--checkpoint-dir",
            s(&checkpoints),
        ];
        args.extend(extra);
        if resume {
            args.extend(["--resume", "auto"]);
        }
        common::run(&args, common::TIMEOUT)
    };
    run(&["--weight-column", "w"], false).ok();
    let err = run(&[], true).fails_with(2);
    assert!(
        err.contains("--weight-column was Some(\"w\"), now None"),
        "{err}"
    );
    let err = run(
        &["--weight-column", "w", "--class-weight", "balanced"],
        true,
    )
    .fails_with(2);
    assert!(
        err.contains("--class-weight was none, now balanced"),
        "{err}"
    );
    run(&["--weight-column", "w"], true).ok();
}

#[test]
fn eval_drops_null_labels_and_counts_them() {
    let dir = common::tempdir();
    let train_file = dir.path().join("train.parquet");
    write_table(&train_file, &table(100, 2, 2), None);
    let model = dir.path().join("model.json");
    common::run_ok(&["train", s(&train_file), "-q", "--save-model", s(&model)]);
    let test = dir.path().join("test.parquet");
    common::write_columns(
        &test,
        vec![
            (
                "x1",
                Arc::new(Float32Array::from(vec![1.0f32, -1.0, 2.0, 0.5])) as ArrayRef,
            ),
            (
                "x2",
                Arc::new(Float32Array::from(vec![0.0f32, 1.0, 0.0, 0.0])),
            ),
            (
                "label",
                Arc::new(Float32Array::from(vec![
                    Some(1.0f32),
                    None,
                    Some(1.0),
                    None,
                ])),
            ),
        ],
    );
    let err = common::run_err(&["eval", "--model", s(&model), s(&test)], 2);
    assert!(err.contains("null in column `label`"), "{err}");
    let out = common::run_ok(&["eval", "--model", s(&model), s(&test), "--drop-null-labels"]);
    assert!(
        out.stdout
            .contains("eval: 2 rows (2 with a null label left out)"),
        "{}",
        out.stdout
    );
    let out = common::run_ok(&[
        "eval",
        "--model",
        s(&model),
        s(&test),
        "--drop-null-labels",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (json["rows"].as_u64(), json["null_labels"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn the_not_used_line_estimates_a_string_column_distinct_values() {
    let dir = common::tempdir();
    let data = dir.path().join("ids.parquet");
    let n = 1_000;
    let ids: Vec<String> = (0..n).map(|i| format!("customer-{i}")).collect();
    common::write_columns(
        &data,
        vec![
            ("id", Arc::new(StringArray::from(ids)) as ArrayRef),
            (
                "visits",
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
            ),
            (
                "label",
                Arc::new(Float32Array::from_iter_values(
                    (0..n).map(|i| (i % 2) as f32),
                )),
            ),
        ],
    );
    let out = common::run_ok(&["train", s(&data), "--no-standardize"]);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("not used:"))
        .unwrap_or_else(|| panic!("no not-used line: {}", out.stdout));
    let estimate: u64 = line
        .split_once("(Utf8, ~")
        .and_then(|(_, rest)| rest.split_once(" distinct"))
        .map(|(n, _)| n.replace(',', "").parse().unwrap())
        .unwrap_or_else(|| panic!("{line}"));
    // HyperLogLog with 4,096 registers: ~1.6% standard error; linear counting is closer here.
    assert!(estimate.abs_diff(1_000) <= 30, "{line}");
    assert!(
        line.ends_with("distinct: pass --categorical id or --hash-buckets to use it)"),
        "{line}"
    );
}
