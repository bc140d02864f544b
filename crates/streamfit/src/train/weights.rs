//! Row weights: what multiplies each row's loss, and how the trainer finds it in a batch.
//!
//! Two sources, which multiply: a weight column («weight_column»: the pipeline delivers each
//! row's weight as one value after its features, and the trainer splits it off before
//! anything reads the features), and per-class weights («class_weight» `balanced`: class c
//! weighs N / (C · n_c), from the label counts of the statistics pass). A weighted step
//! averages its gradient and loss by its weight sum instead of its row count
//! ([`GradientEngine::accumulate_weighted`](super::GradientEngine::accumulate_weighted)).
//! Evaluation passes (the full-data loss, validation, `eval`) stay unweighted. Without
//! weights nothing here runs: the trainer's unweighted step is unchanged.

use serde::{Deserialize, Serialize};

use crate::data::RowBlock;
use crate::error::{Error, Result};

/// How classes are weighted («class_weight»).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ClassWeight {
    /// Every class weighs 1. The default.
    #[default]
    None,
    /// Class c weighs N / (C · n_c): N labelled rows, C classes, n_c rows of class c (a class
    /// with no row weighs 0, and takes no part).
    Balanced,
}

impl std::str::FromStr for ClassWeight {
    type Err = Error;

    /// `none` or `balanced`.
    fn from_str(text: &str) -> Result<Self> {
        match text.trim() {
            "none" => Ok(ClassWeight::None),
            "balanced" => Ok(ClassWeight::Balanced),
            other => Err(Error::config(
                "class_weight",
                format!("`{other}` is not `none` or `balanced`"),
            )),
        }
    }
}

impl std::fmt::Display for ClassWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClassWeight::None => "none",
            ClassWeight::Balanced => "balanced",
        })
    }
}

/// The balanced weights N / (C · n_c) of classes with `counts[c]` rows each (C =
/// `counts.len()`; a class with no row weighs 0). Computed in f64, rounded to f32 once.
pub fn balanced_weights(counts: &[u64]) -> Vec<f32> {
    let total: u64 = counts.iter().sum();
    let classes = counts.len() as f64;
    counts
        .iter()
        .map(|&n| {
            if n == 0 {
                0.0
            } else {
                (total as f64 / (classes * n as f64)) as f32
            }
        })
        .collect()
}

/// What the trainer multiplies each row's loss by. Recorded in checkpoints: a resume must
/// weight the same. By default nothing (every row weighs 1).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RowWeights {
    /// The weight column, whose value each row carries after its features. By default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Class c's weight is `class_weights[c]` (by the row's target: 0/1 for a binary head,
    /// the class id for a multiclass one). Empty: none. By default empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_weights: Vec<f32>,
}

impl RowWeights {
    /// True when rows are weighted at all.
    pub fn any(&self) -> bool {
        self.column.is_some() || !self.class_weights.is_empty()
    }

    /// Each row's weight of `rows` into `out` (cleared first): the carried weight, split off
    /// the rows' features when there is a weight column, times its class's weight. The
    /// targets have passed the head's label check.
    pub fn take(&self, rows: &mut RowBlock, out: &mut Vec<f32>) {
        out.clear();
        if self.column.is_some() {
            rows.split_off_last_column(out);
        } else {
            out.resize(rows.num_rows(), 1.0);
        }
        if !self.class_weights.is_empty() {
            for (w, &t) in out.iter_mut().zip(rows.targets()) {
                *w *= self.class_weights.get(t as usize).copied().unwrap_or(1.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_weights_are_n_over_c_times_n_c() {
        // 90/10: 100 / (2 · 90) and 100 / (2 · 10).
        let w = balanced_weights(&[90, 10]);
        assert_eq!(w, [(100.0 / 180.0) as f32, 5.0]);
        // An empty class weighs 0 and still counts in C: 6 / (3 · 3).
        let two_thirds = (6.0f64 / 9.0) as f32;
        assert_eq!(balanced_weights(&[3, 0, 3]), [two_thirds, 0.0, two_thirds]);
    }

    #[test]
    fn column_and_class_weights_multiply() {
        let mut rows = RowBlock::with_capacity(2, 3);
        rows.push_row(&[1.0, 2.0], 1.0, 0);
        rows.push_row(&[3.0, 0.5], 0.0, 1);
        rows.push_row(&[5.0, 0.0], 1.0, 2);
        let weights = RowWeights {
            column: Some("w".into()),
            class_weights: vec![4.0, 0.5],
        };
        let mut out = vec![9.0];
        weights.take(&mut rows, &mut out);
        assert_eq!(out, [1.0, 2.0, 0.0]);
        assert_eq!(rows.features(), &[1.0, 3.0, 5.0]);
        assert!(!RowWeights::default().any());
    }

    #[test]
    fn class_weight_parses_its_two_names() {
        assert_eq!(
            " balanced".parse::<ClassWeight>().unwrap(),
            ClassWeight::Balanced
        );
        assert_eq!("none".parse::<ClassWeight>().unwrap(), ClassWeight::None);
        let err = "auto".parse::<ClassWeight>().unwrap_err().to_string();
        assert!(err.contains("class_weight"), "{err}");
    }
}
