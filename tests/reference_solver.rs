//! Logistic regression with L2 on a real dataset (UCI breast cancer, standardised; see
//! fixtures/breast_cancer/README.md) reaches the optimum an exact reference solver (scipy
//! L-BFGS, cross-checked with scikit-learn) found for the same objective.

mod common;

use std::path::PathBuf;

use streamfit::model::ModelSpec;
use streamfit::optim::OptimizerKind;
use streamfit::train::{BatchSize, Eval};

#[test]
fn l2_logistic_regression_on_breast_cancer_reaches_the_reference_optimum() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/breast_cancer");
    let reference = common::read_json(&dir.join("reference.json"));
    let lambda = reference["weight_decay"].as_f64().unwrap();
    let mut config = common::config(&dir.join("breast_cancer.parquet"), BatchSize::Full);
    config.trainer.model = ModelSpec::logistic();
    config.trainer.optimizer.kind = OptimizerKind::Nesterov;
    config.trainer.optimizer.learning_rate = 0.5;
    config.trainer.optimizer.weight_decay = lambda as f32;
    config.trainer.epochs = 1_500;
    config.trainer.eval = Eval::EveryEpoch;
    let result = common::fit(&config);

    let data_loss = result.final_loss().unwrap();
    let (weights, bias) = result.params.split_at(result.params.len() - 1);
    let norm2: f64 = weights.iter().map(|w| f64::from(*w).powi(2)).sum();
    let objective = data_loss + lambda / 2.0 * norm2;
    let expected_loss = reference["data_loss"].as_f64().unwrap();
    let expected_objective = reference["objective"].as_f64().unwrap();
    assert!(
        (data_loss - expected_loss).abs() < 1e-3,
        "data loss {data_loss} vs reference {expected_loss}"
    );
    assert!(
        (objective - expected_objective).abs() < 1e-3,
        "objective {objective} vs reference {expected_objective}"
    );
    let expected_weights = reference["weights"].as_array().unwrap();
    for (j, (w, r)) in weights.iter().zip(expected_weights).enumerate() {
        let r = r.as_f64().unwrap();
        assert!((f64::from(*w) - r).abs() < 1e-2, "weight {j}: {w} vs {r}");
    }
    let expected_bias = reference["bias"].as_f64().unwrap();
    assert!((f64::from(bias[0]) - expected_bias).abs() < 1e-2);
    let accuracy = result.epochs.last().unwrap().accuracy.unwrap();
    assert_eq!(accuracy, reference["accuracy"].as_f64().unwrap());
}
