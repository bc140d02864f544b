//! What `eval` reports beyond loss and accuracy/RMSE: ROC AUC, precision, recall, F1 and a
//! confusion matrix for classifiers, R² and MAE for regression ([`EvalTally`], filled one
//! batch of predictions at a time, and the [`EvalReport`] it finishes into).
//!
//! Memory is bounded whatever the row count: a binary model keeps a histogram of
//! [`AUC_BINS`] probability bins (positives and negatives counted per bin), a K-class model a
//! K × K confusion matrix, a regression a handful of sums. Rows are added in the order the
//! caller streams them (file order), so the figures are deterministic. Nothing here reads data.
//!
//! AUC from the histogram: pairs (positive, negative) in different bins are ordered exactly;
//! pairs that share a bin count as half, as ties do. The error is therefore at most half the
//! fraction of positive–negative pairs that share a bin (reported as `auc_max_error`), and never
//! more than the fraction of pairs sharing a bin.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{Head, argmax};

/// Bins of the predicted probability for the AUC histogram.
pub const AUC_BINS: usize = 4096;

/// Running sums over the rows seen so far.
#[derive(Debug, Clone)]
pub enum EvalTally {
    /// Binary: confusion at probability ≥ 0.5 and the score histogram.
    Binary {
        /// `confusion[actual][predicted]`.
        confusion: [[u64; 2]; 2],
        /// Positives per probability bin.
        positives: Vec<u64>,
        /// Negatives per probability bin.
        negatives: Vec<u64>,
    },
    /// Multiclass: `confusion[actual * k + predicted]`.
    Multiclass {
        /// Classes.
        num_classes: usize,
        /// Row-major K × K counts.
        confusion: Vec<u64>,
    },
    /// Regression: sums for R² (label mean and spread merged as in Chan et al.) and MAE.
    Regression {
        /// Rows counted.
        rows: u64,
        /// Mean of the label so far.
        label_mean: f64,
        /// Sum of squared deviations of the label from its mean.
        label_m2: f64,
        /// Sum of squared errors.
        squared_error: f64,
        /// Sum of absolute errors.
        absolute_error: f64,
    },
}

/// The finished figures (those that apply to the head are `Some`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EvalReport {
    /// ROC AUC from the score histogram (binary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auc: Option<f64>,
    /// Upper bound on |histogram AUC − exact AUC|: half the share of positive–negative pairs
    /// that share a bin (binary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auc_max_error: Option<f64>,
    /// Precision of class 1 (binary) or the macro average over classes (multiclass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    /// Recall, as precision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<f64>,
    /// F1, as precision (macro: the mean of the per-class F1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    /// `confusion[actual][predicted]` (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<u64>>>,
    /// Per class precision, recall, F1 and support (multiclass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_class: Option<Vec<ClassFigures>>,
    /// Coefficient of determination (regression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r2: Option<f64>,
    /// Mean absolute error (regression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
}

/// One class's figures; a ratio with a zero denominator is 0 (as scikit-learn's default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassFigures {
    /// Class index.
    pub class: usize,
    /// TP / (TP + FP).
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Rows whose label is this class.
    pub support: u64,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn class_figures(class: usize, tp: u64, fp: u64, fn_: u64) -> ClassFigures {
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    ClassFigures {
        class,
        precision,
        recall,
        f1,
        support: tp + fn_,
    }
}

/// The histogram bin of a probability (clamped to [0, 1]).
pub fn auc_bin(probability: f32) -> usize {
    let p = f64::from(probability).clamp(0.0, 1.0);
    ((p * AUC_BINS as f64) as usize).min(AUC_BINS - 1)
}

impl EvalTally {
    /// Empty sums for a model with this head.
    pub fn new(head: Head) -> Self {
        match head {
            Head::Binary => EvalTally::Binary {
                confusion: [[0; 2]; 2],
                positives: vec![0; AUC_BINS],
                negatives: vec![0; AUC_BINS],
            },
            Head::Multiclass(k) => EvalTally::Multiclass {
                num_classes: k,
                confusion: vec![0; k * k],
            },
            Head::Regression => EvalTally::Regression {
                rows: 0,
                label_mean: 0.0,
                label_m2: 0.0,
                squared_error: 0.0,
                absolute_error: 0.0,
            },
        }
    }

    /// Adds rows: `outputs` holds the model's predictions (one per row, K per row for a
    /// K-class model), `targets` the labels. A multiclass label outside 0..K is an error.
    pub fn add(&mut self, outputs: &[f32], targets: &[f32]) -> Result<()> {
        match self {
            EvalTally::Binary {
                confusion,
                positives,
                negatives,
            } => {
                for (&p, &y) in outputs.iter().zip(targets) {
                    let actual = usize::from(y >= 0.5);
                    confusion[actual][usize::from(p >= 0.5)] += 1;
                    let bins = if actual == 1 {
                        &mut *positives
                    } else {
                        &mut *negatives
                    };
                    bins[auc_bin(p)] += 1;
                }
            }
            EvalTally::Multiclass {
                num_classes,
                confusion,
            } => {
                let k = *num_classes;
                for (out, &y) in outputs.chunks_exact(k).zip(targets) {
                    if !(y >= 0.0 && (y as usize) < k && y.fract() == 0.0) {
                        return Err(Error::config(
                            "data",
                            format!("label {y} is not a class of this {k}-class model (0..{k})"),
                        ));
                    }
                    confusion[y as usize * k + argmax(out)] += 1;
                }
            }
            EvalTally::Regression {
                rows,
                label_mean,
                label_m2,
                squared_error,
                absolute_error,
            } => {
                for (&p, &y) in outputs.iter().zip(targets) {
                    let (p, y) = (f64::from(p), f64::from(y));
                    *rows += 1;
                    let delta = y - *label_mean;
                    *label_mean += delta / *rows as f64;
                    *label_m2 += delta * (y - *label_mean);
                    let e = p - y;
                    *squared_error += e * e;
                    *absolute_error += e.abs();
                }
            }
        }
        Ok(())
    }

    /// The figures over all rows added.
    pub fn report(&self) -> EvalReport {
        match self {
            EvalTally::Binary {
                confusion,
                positives,
                negatives,
            } => {
                let num_pos: u64 = positives.iter().sum();
                let num_neg: u64 = negatives.iter().sum();
                let pairs = num_pos as f64 * num_neg as f64;
                let (mut ordered, mut tied, mut neg_below) = (0.0, 0.0, 0u64);
                for (&pos, &neg) in positives.iter().zip(negatives) {
                    ordered += pos as f64 * neg_below as f64;
                    tied += pos as f64 * neg as f64;
                    neg_below += neg;
                }
                let (auc, auc_max_error) = if pairs > 0.0 {
                    (
                        Some((ordered + 0.5 * tied) / pairs),
                        Some(0.5 * tied / pairs),
                    )
                } else {
                    (None, None)
                };
                let positive = class_figures(1, confusion[1][1], confusion[0][1], confusion[1][0]);
                EvalReport {
                    auc,
                    auc_max_error,
                    precision: Some(positive.precision),
                    recall: Some(positive.recall),
                    f1: Some(positive.f1),
                    confusion: Some(confusion.iter().map(|r| r.to_vec()).collect()),
                    ..EvalReport::default()
                }
            }
            EvalTally::Multiclass {
                num_classes,
                confusion,
            } => {
                let k = *num_classes;
                let per_class: Vec<ClassFigures> = (0..k)
                    .map(|c| {
                        let tp = confusion[c * k + c];
                        let predicted: u64 = (0..k).map(|a| confusion[a * k + c]).sum();
                        let actual: u64 = confusion[c * k..(c + 1) * k].iter().sum();
                        class_figures(c, tp, predicted - tp, actual - tp)
                    })
                    .collect();
                let mean = |f: fn(&ClassFigures) -> f64| {
                    per_class.iter().map(f).sum::<f64>() / k.max(1) as f64
                };
                EvalReport {
                    precision: Some(mean(|c| c.precision)),
                    recall: Some(mean(|c| c.recall)),
                    f1: Some(mean(|c| c.f1)),
                    confusion: Some(confusion.chunks(k.max(1)).map(<[u64]>::to_vec).collect()),
                    per_class: Some(per_class),
                    ..EvalReport::default()
                }
            }
            EvalTally::Regression {
                rows,
                label_m2,
                squared_error,
                absolute_error,
                ..
            } => {
                let n = (*rows).max(1) as f64;
                EvalReport {
                    r2: Some(if *label_m2 > 0.0 {
                        1.0 - squared_error / label_m2
                    } else {
                        0.0
                    }),
                    mae: Some(absolute_error / n),
                    ..EvalReport::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_separated_scores_is_one_and_of_one_bin_is_half() {
        let mut tally = EvalTally::new(Head::Binary);
        tally
            .add(&[0.1, 0.2, 0.8, 0.9], &[0.0, 0.0, 1.0, 1.0])
            .unwrap();
        assert_eq!(tally.report().auc, Some(1.0));
        assert_eq!(tally.report().auc_max_error, Some(0.0));
        let mut tally = EvalTally::new(Head::Binary);
        tally.add(&[0.5, 0.5], &[0.0, 1.0]).unwrap();
        assert_eq!(tally.report().auc, Some(0.5));
        assert_eq!(tally.report().auc_max_error, Some(0.5));
    }

    #[test]
    fn multiclass_label_out_of_range_is_an_error() {
        let mut tally = EvalTally::new(Head::Multiclass(2));
        assert!(tally.add(&[0.3, 0.7], &[2.0]).is_err());
    }
}
