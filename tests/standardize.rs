//! `train --standardize`: badly scaled columns make plain SGD diverge; standardised training
//! converges, and the saved model (its parameters as learned, with the statistics) predicts
//! from raw features, standardised as the file says, with the loss that training reported.

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const ROWS: usize = 20_000;

/// `price` ~ 5000 ± 1000, `ratio` ~ 0 ± 0.01, `z` ~ 0 ± 1 (uniform with those spreads);
/// label = 0.002·price + 50·ratio + z + 1 + noise.
fn columns() -> (Vec<[f32; 3]>, Vec<f32>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let mut u = || rng.random_range(-1.732f32..1.732);
    let rows: Vec<[f32; 3]> = (0..ROWS)
        .map(|_| [5000.0 + 1000.0 * u(), 0.01 * u(), u()])
        .collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    let labels = rows
        .iter()
        .map(|x| 0.002 * x[0] + 50.0 * x[1] + x[2] + 1.0 + 0.05 * rng.random_range(-1.0f32..1.0))
        .collect();
    (rows, labels)
}

fn write(path: &std::path::Path) {
    let (rows, labels) = columns();
    let col =
        |j: usize| Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r[j]))) as ArrayRef;
    let batch = RecordBatch::try_from_iter([
        ("price", col(0)),
        ("ratio", col(1)),
        ("z", col(2)),
        ("label", Arc::new(Float32Array::from(labels)) as ArrayRef),
    ])
    .unwrap();
    common::write_parquet(path, &batch, None);
}

#[test]
fn standardised_training_converges_where_plain_sgd_diverges() {
    let dir = common::tempdir();
    let data = dir.path().join("scaled.parquet");
    write(&data);
    let model = dir.path().join("model.json");
    let report = dir.path().join("report.json");
    let args = |standardize: bool| {
        let mut a = vec![
            "train",
            data.to_str().unwrap(),
            "--model",
            "linear",
            "--batch-size",
            "64",
            "--lr",
            "0.05",
            "--epochs",
            "4",
            "--quiet",
            "--full-loss",
            "--save-model",
            model.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ];
        a.push(if standardize {
            "--standardize"
        } else {
            "--no-standardize"
        });
        a
    };

    let stderr = common::run_err(&args(false), 2);
    assert!(stderr.contains("diverged"), "{stderr}");
    assert!(stderr.contains("--standardize"), "{stderr}");
    assert!(!model.exists(), "a diverged run wrote a model");

    common::run_ok(&args(true));
    let report = common::read_json(&report);
    let final_loss = report["full_loss"].as_f64().unwrap();
    assert!(final_loss < 0.01, "final loss {final_loss}");

    // The saved weights apply to the standardised features: standardising the raw rows as the
    // file says gives the reported loss.
    let saved = common::read_json(&model);
    assert_eq!(saved["version"], 6);
    let w: Vec<f64> = saved["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let b = saved["bias"].as_f64().unwrap();
    let std = common::f32s(&saved["standardization"]["std"]);
    let raw_price_weight = w[0] / std[0];
    assert!(
        (raw_price_weight - 0.002).abs() < 2e-4,
        "price weight {raw_price_weight} per unit of price"
    );
    let (rows, labels) = columns();
    let mse = rows
        .iter()
        .zip(&labels)
        .map(|(x, &y)| {
            let z = common::standardised(&saved, &x.map(f64::from));
            let p = b + (0..3).map(|j| w[j] * z[j]).sum::<f64>();
            (p - f64::from(y)).powi(2)
        })
        .sum::<f64>()
        / ROWS as f64;
    assert!(
        (mse - final_loss).abs() <= 0.05 * final_loss + 1e-4,
        "raw-feature loss {mse} vs reported {final_loss}"
    );
}
