//! Model format 6: a model trained standardised keeps its parameters as learned, in the
//! standardised space, and `predict` and `eval` apply the standardisation to raw data in f64.
//! Each test compares `predict` with a reference written here in f64 (decode, centre, z-score,
//! then the model), `eval` with training's own validation figures, or today's `predict` on
//! older (folded) model files with the predictions the previous version wrote.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, TimestampSecondArray};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::Value;
use streamfit::comm::SingleProcess;
use streamfit::config::TrainConfig;
use streamfit::data::FeatureSelection;
use streamfit::model::ModelSpec;
use streamfit::run::PreparedRun;
use streamfit::train::{ModelFile, Standardize};

const ROWS: usize = 3_000;
/// Midday of 2023-11-15: timestamps of one day around it are far off centre (1.7e9 s, whose
/// f32 resolution is 128 s), so training centres them as it decodes them.
const T0: i64 = 1_700_049_600;

/// Raw columns of one table: a timestamp (seconds), a price in the thousands, a ratio near 1.
struct Table {
    ts: Vec<i64>,
    price: Vec<f64>,
    ratio: Vec<f32>,
}

impl Table {
    fn new(seed: u64) -> Table {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut t = Table {
            ts: Vec::new(),
            price: Vec::new(),
            ratio: Vec::new(),
        };
        for _ in 0..ROWS {
            t.ts.push(T0 + rng.random_range(-43_200i64..43_200));
            t.price.push(rng.random_range(500.0f64..5000.0));
            t.ratio.push(rng.random_range(-1.7f32..1.7));
        }
        t
    }

    /// The known score of row `i`: each column contributes about ±1.
    fn score(&self, i: usize) -> f64 {
        (self.ts[i] - T0) as f64 / 25_000.0
            + (self.price[i] - 2750.0) / 1300.0
            + f64::from(self.ratio[i])
    }

    /// Writes the columns with a regression `target`, a 0/1 `label` and a class id `klass`
    /// (0, 1, 2) derived from the score with seeded noise.
    fn write(&self, path: &Path, seed: u64) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let (mut target, mut label, mut klass) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..ROWS {
            let z = self.score(i) + 0.3 * rng.random_range(-1.0f64..1.0);
            target.push(2.0 * z + 1.0);
            label.push(i64::from(z > 0.0));
            klass.push(if z < -0.8 {
                0
            } else if z < 0.8 {
                1
            } else {
                2
            });
        }
        common::write_columns(
            path,
            vec![
                (
                    "ts",
                    Arc::new(TimestampSecondArray::from(self.ts.clone()).with_timezone("UTC"))
                        as ArrayRef,
                ),
                ("price", Arc::new(Float64Array::from(self.price.clone()))),
                ("ratio", Arc::new(Float32Array::from(self.ratio.clone()))),
                ("target", Arc::new(Float64Array::from(target))),
                ("label", Arc::new(Int64Array::from(label))),
                ("klass", Arc::new(Int64Array::from(klass))),
            ],
        );
    }

    /// Row `i` as training decoded it for `model`: a centred column less its centre (in f64,
    /// then rounded to f32), every value rounded to f32 as the decoder does.
    fn decoded(&self, model: &Value, i: usize) -> Vec<f64> {
        let centre = |name: &str| -> f64 {
            model["standardization"]["centre"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["column"] == name)
                .map_or(0.0, |c| c["value"].as_f64().unwrap())
        };
        model["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let name = f.as_str().unwrap();
                let raw = match name {
                    "ts" => self.ts[i] as f64,
                    "price" => self.price[i],
                    "ratio" => f64::from(self.ratio[i]),
                    other => panic!("unexpected feature {other}"),
                };
                f64::from((raw - centre(name)) as f32)
            })
            .collect()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Trains on `data` with `args` (plus `-q --epochs 3 --batch-size 64 --seed 1`) and saves the
/// model; returns its path and JSON.
fn train(dir: &Path, data: &Path, args: &[&str]) -> (PathBuf, Value) {
    let model = dir.join("model.json");
    let mut all = vec![
        "train",
        s(data),
        "-q",
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--seed",
        "1",
        "--save-model",
        s(&model),
    ];
    all.extend_from_slice(args);
    common::run_ok(&all);
    let json = common::read_json(&model);
    (model, json)
}

/// `predict` of `model` on `data`: the outputs per row (one value, or K probabilities).
fn predict(dir: &Path, model: &Path, data: &Path) -> Vec<Vec<f64>> {
    let out = dir.join("p.parquet");
    common::run_ok(&[
        "predict",
        "-q",
        "--model",
        s(model),
        s(data),
        "--out",
        s(&out),
    ]);
    read_outputs(&out)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The reference of a linear, logistic or softmax model file on row `x` (decoded features),
/// in f64: standardised as the file says, then W·x + b (and σ or softmax).
fn reference(model: &Value, x: &[f64]) -> Vec<f64> {
    let z = common::standardised(model, x);
    let d = z.len();
    match model["model"].as_str().unwrap() {
        kind @ ("linear" | "logistic") => {
            let w = common::f32s(&model["weights"]);
            let b = f64::from(model["bias"].as_f64().unwrap() as f32);
            let score = z.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() + b;
            vec![if kind == "linear" {
                score
            } else {
                sigmoid(score)
            }]
        }
        "softmax" => {
            let p = common::f32s(&model["params"]);
            let k = p.len() / (d + 1);
            let logits: Vec<f64> = (0..k)
                .map(|c| {
                    let row = &p[c * d..(c + 1) * d];
                    row.iter().zip(&z).map(|(w, x)| w * x).sum::<f64>() + p[k * d + c]
                })
                .collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            e.iter().map(|v| v / sum).collect()
        }
        other => panic!("no reference for {other}"),
    }
}

#[test]
fn predict_on_raw_data_matches_an_f64_transform_and_the_stored_parameters() {
    let dir = common::tempdir();
    let (train_data, test_data) = (
        dir.path().join("train.parquet"),
        dir.path().join("test.parquet"),
    );
    Table::new(1).write(&train_data, 2);
    let test = Table::new(3);
    test.write(&test_data, 4);
    for (args, outputs) in [
        (vec!["--model", "linear", "--label", "target"], 1),
        (vec!["--model", "logistic", "--label", "label"], 1),
        (
            vec!["--model", "softmax", "--classes", "3", "--label", "klass"],
            3,
        ),
    ] {
        let mut args = args.clone();
        args.extend(["--features", "ts,price,ratio", "--standardize"]);
        let (model_path, model) = train(dir.path(), &train_data, &args);
        assert_eq!(model["version"], 6, "{args:?}");
        let std = common::f32s(&model["standardization"]["std"]);
        assert!(
            std[1] > 1000.0,
            "the price is standardised as learned: {std:?}"
        );
        assert_eq!(model["standardization"]["centre"][0]["column"], "ts");
        let predicted = predict(dir.path(), &model_path, &test_data);
        assert_eq!(predicted.len(), ROWS);
        for (i, got) in predicted.iter().enumerate() {
            let expected = reference(&model, &test.decoded(&model, i));
            assert_eq!(got.len(), outputs);
            for (g, e) in got.iter().zip(&expected) {
                assert!(
                    (g - e).abs() < 1e-5,
                    "{args:?} row {i}: predict {got:?}, reference {expected:?}"
                );
            }
        }
        // The model learned: it beats a constant on the held-out rows.
        if args.contains(&"label") {
            let correct = predicted
                .iter()
                .enumerate()
                .filter(|(i, p)| (p[0] >= 0.5) == (test.score(*i) > 0.0))
                .count();
            assert!(correct > ROWS * 8 / 10, "{correct} of {ROWS} right");
        }
    }
}

#[test]
fn eval_of_a_standardised_mlp_is_its_best_validation_evaluation_bit_for_bit() {
    let dir = common::tempdir();
    let (train_data, valid_data) = (
        dir.path().join("train.parquet"),
        dir.path().join("valid.parquet"),
    );
    Table::new(5).write(&train_data, 6);
    Table::new(7).write(&valid_data, 8);
    let metrics = dir.path().join("m.jsonl");
    let report = dir.path().join("r.json");
    let (model_path, model) = train(
        dir.path(),
        &train_data,
        &[
            "--model",
            "mlp",
            "--hidden",
            "8",
            "--task",
            "binary",
            "--label",
            "label",
            "--features",
            "ts,price,ratio",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--valid",
            s(&valid_data),
            "--eval-every",
            "20",
            "--early-stop",
            "50",
            "--metrics",
            s(&metrics),
            "--report",
            s(&report),
        ],
    );
    assert_eq!(
        model["version"], 6,
        "standardised by default (mixed scales)"
    );
    assert!(model["standardization"]["mean"].is_array());
    let evaluations: Vec<Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("valid_loss").is_some())
        .collect();
    let best = evaluations
        .iter()
        .rfind(|e| e["best"] == true)
        .expect("a best evaluation");
    let report = common::read_json(&report);
    assert_eq!(report["best_iteration"], best["iteration"]);
    // The saved parameters are the best evaluation's, standardised as training did.
    let eval = common::run_ok(&["eval", "--json", "--model", s(&model_path), s(&valid_data)]);
    let eval: Value = serde_json::from_str(&eval.stdout).unwrap();
    assert_eq!(eval["loss"], best["valid_loss"]);
    assert_eq!(eval["accuracy"], best["valid_accuracy"]);
    assert!(eval["accuracy"].as_f64().unwrap() > 0.8, "{eval}");
    // `predict` twice from the saved file gives the same bits.
    let once = predict(dir.path(), &model_path, &valid_data);
    assert_eq!(once, predict(dir.path(), &model_path, &valid_data));
}

#[test]
fn model_files_of_formats_2_and_5_still_predict_what_the_previous_version_wrote() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/folded_models");
    let dir = common::tempdir();
    for (model, data, written) in [
        ("logistic_v5.json", "data.parquet", "logistic_v5.parquet"),
        ("softmax_v2.json", "plain.parquet", "softmax_v2.parquet"),
    ] {
        let saved = common::read_json(&fixtures.join(model));
        assert!(saved["standardization"]["mean"].is_array(), "{model}");
        assert!(saved["version"].as_u64().unwrap() < 6, "{model}");
        let now = predict(dir.path(), &fixtures.join(model), &fixtures.join(data));
        let then = read_outputs(&fixtures.join(written));
        assert_eq!(now.len(), then.len(), "{model}");
        for (i, (a, b)) in now.iter().zip(&then).enumerate() {
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() < 1e-6,
                    "{model} row {i}: now {a:?}, then {b:?}"
                );
            }
        }
    }
}

/// The outputs per row of a predictions file: one value, or K probabilities.
fn read_outputs(path: &Path) -> Vec<Vec<f64>> {
    let mut rows = Vec::new();
    for batch in &common::read_parquet(path) {
        if let Some(lists) = batch.column_by_name("probabilities") {
            let lists = lists.as_fixed_size_list();
            for i in 0..batch.num_rows() {
                let p = lists.value(i);
                let p = p.as_primitive::<Float32Type>().values();
                rows.push(p.iter().map(|&v| f64::from(v)).collect());
            }
        } else {
            let name = ["prediction", "probability"]
                .into_iter()
                .find(|c| batch.column_by_name(c).is_some())
                .unwrap();
            let values = batch
                .column_by_name(name)
                .unwrap()
                .as_primitive::<Float32Type>();
            rows.extend(values.values().iter().map(|&v| vec![f64::from(v)]));
        }
    }
    rows
}

#[test]
fn the_library_result_holds_the_parameters_the_model_file_stores() {
    let dir = common::tempdir();
    let data = dir.path().join("train.parquet");
    Table::new(9).write(&data, 10);
    let mut config = TrainConfig {
        data: vec![data],
        ..TrainConfig::default()
    };
    config.columns.features = FeatureSelection::Columns(vec![
        "ts".to_string(),
        "price".to_string(),
        "ratio".to_string(),
    ]);
    config.columns.label = "label".to_string();
    config.trainer.model = ModelSpec::logistic();
    config.standardize = Standardize::Always;
    config.outputs.save_model = Some(dir.path().join("model.json"));
    let mut run = PreparedRun::new(config, &SingleProcess).unwrap();
    let result = run.train(&mut ()).unwrap();
    let report = run.report(&result, None);
    run.write_outputs(&result, &report).unwrap();
    let file = ModelFile::load(&dir.path().join("model.json")).unwrap();
    assert_eq!(file.version, 6);
    assert_eq!(file.parameters(), result.params, "stored as learned");
    let standardization = file.standardization_to_apply().unwrap();
    assert_eq!(
        Some(standardization),
        run.config().trainer.standardize.as_ref()
    );
    assert_eq!(standardization.centre[0].column, "ts");
}
