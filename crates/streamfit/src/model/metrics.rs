//! Evaluation figures: summed loss, correct predictions and squared error over rows
//! ([`EvalSums`], added across chunks and ranks), and the mean figures a run reports
//! ([`Metrics`]).
//!
//! Which figure a model gets follows from its [`Head`] alone: accuracy for a classifier, RMSE
//! for regression. Nothing here runs a pass over data; the trainer and `eval` do.

use serde::{Deserialize, Serialize};

use super::differentiable::Model;
use super::spec::Head;

/// Summed evaluation figures over some rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvalSums {
    /// Rows counted.
    pub rows: u64,
    /// Summed loss.
    pub loss: f64,
    /// Correct predictions (classification).
    pub correct: u64,
    /// Summed squared error of the prediction (regression).
    pub squared_error: f64,
}

impl EvalSums {
    /// Adds `other`'s sums.
    pub fn add(&mut self, other: &EvalSums) {
        self.rows += other.rows;
        self.loss += other.loss;
        self.correct += other.correct;
        self.squared_error += other.squared_error;
    }

    /// Loss, then accuracy (classification) or RMSE (regression).
    pub fn metrics(&self, head: Head) -> Metrics {
        let n = self.rows.max(1) as f64;
        Metrics {
            loss: self.loss / n,
            accuracy: head.is_classifier().then(|| self.correct as f64 / n),
            rmse: (!head.is_classifier()).then(|| (self.squared_error / n).sqrt()),
        }
    }
}

/// Mean loss plus accuracy or RMSE.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean loss.
    pub loss: f64,
    /// Share of rows classified correctly (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Root mean squared error (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
}

/// Loss, accuracy and squared error of `model` over the rows; `scratch` holds predictions.
pub fn eval_sums(
    model: &dyn Model,
    params: &[f32],
    features: &[f32],
    targets: &[f32],
    scratch: &mut Vec<f32>,
) -> EvalSums {
    let head = model.head();
    let k = head.outputs();
    scratch.clear();
    scratch.resize(targets.len() * k, 0.0);
    let mut sums = EvalSums {
        rows: targets.len() as u64,
        loss: model.loss_and_predict(params, features, targets, scratch),
        ..EvalSums::default()
    };
    for (out, &y) in scratch.chunks_exact(k).zip(targets) {
        match head {
            Head::Regression => {
                let e = f64::from(out[0]) - f64::from(y);
                sums.squared_error += e * e;
            }
            Head::Binary => sums.correct += u64::from((out[0] >= 0.5) == (y >= 0.5)),
            Head::Multiclass(_) => sums.correct += u64::from(argmax(out) as f32 == y),
        }
    }
    sums
}

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}
