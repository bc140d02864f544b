//! Feature standardisation: train on z-scored features, and save the model as it was learned.
//!
//! Unscaled real-world columns (a price in the thousands next to a ratio near 1) give plain SGD
//! a gradient dominated by the large column, and it diverges at any learning rate that moves
//! the small ones. With `standardize`, every batch is rewritten in place as
//! z = (x − mean) / std, computed in f64 and rounded once to f32, before the gradient (one
//! fused pass over the batch the trainer owns anyway). The parameters stay in that space: the
//! model file (version 6) carries them as learned together with the mean and std, and
//! `predict`, `eval` and the Python package apply [`Standardization::apply`] to every decoded
//! row before the forward pass, so a saved model scores exactly as the trained one did (no
//! parameters folded back, which rounded once and needed a linear input layer). Files of
//! versions 2 to 5 hold parameters folded back to raw features; their record is not applied
//! again (see [`crate::train::ModelFile::standardization_to_apply`]).

use serde::{Deserialize, Serialize};

use crate::data::RowBlock;
use crate::data::schema::ColumnCentre;
use crate::data::stats::DatasetStats;

/// When a run standardises its features («standardize»).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Standardize {
    /// When the scale check finds the raw features on mixed scales (see
    /// [`crate::run::ScaleCheck`]). The default.
    #[default]
    Auto,
    /// Always (`--standardize`).
    Always,
    /// Never: train on the raw values even when their scales are mixed (`--no-standardize`).
    Never,
}

/// Per-feature mean and standard deviation used to z-score the features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    /// Mean of each feature.
    pub mean: Vec<f32>,
    /// Standard deviation of each feature (a constant column keeps 1, so it maps to 0).
    pub std: Vec<f32>,
    /// The large-magnitude columns the decoder centres in f64 before the f32 cast (the
    /// scale check found them far off centre): `mean` and `std` are those of the centred
    /// values, so `predict` decodes them the same before standardising. Empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub centre: Vec<ColumnCentre>,
}

impl Standardization {
    /// From the statistics of a dataset (its finite values).
    pub fn from_stats(stats: &DatasetStats) -> Self {
        let (mean, std) = stats
            .features
            .iter()
            .map(|c| {
                let std = if c.std.is_finite() && c.std > 0.0 {
                    c.std as f32
                } else {
                    1.0
                };
                let mean = if c.mean.is_finite() {
                    c.mean as f32
                } else {
                    0.0
                };
                (mean, std)
            })
            .unzip();
        Standardization {
            mean,
            std,
            centre: Vec::new(),
        }
    }

    /// Rewrites every row of `block` as (x − mean) / std, in f64 (see [`Self::apply_rows`]).
    pub fn apply(&self, block: &mut RowBlock) {
        self.apply_rows(block.features_mut());
    }

    /// Rewrites `features`, rows of `mean.len()` values one after another, as
    /// (x − mean) / std: each value is computed in f64 and rounded once to f32, so training,
    /// `predict`, `eval` and the Python package give the same bits, and a numpy reference
    /// computing in float64 agrees to the f32 rounding.
    pub fn apply_rows(&self, features: &mut [f32]) {
        let d = self.mean.len();
        if d == 0 {
            return;
        }
        let mean: Vec<f64> = self.mean.iter().map(|&m| f64::from(m)).collect();
        let inv: Vec<f64> = self.std.iter().map(|&s| 1.0 / f64::from(s)).collect();
        for row in features.chunks_exact_mut(d) {
            for ((x, m), s) in row.iter_mut().zip(&mean).zip(&inv) {
                *x = ((f64::from(*x) - m) * s) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_standardised_in_f64_and_rounded_once() {
        let s = Standardization {
            mean: vec![1000.0, -2.0],
            std: vec![250.0, 0.3],
            centre: Vec::new(),
        };
        let raw = [1400.0f32, -1.0, 1000.1, 7.5];
        let mut block = RowBlock::with_capacity(2, 2);
        block.push_row(&raw[..2], 0.0, 0);
        block.push_row(&raw[2..], 0.0, 1);
        s.apply(&mut block);
        // (x − mean) / std computed in f64 (the reference a numpy user writes), then rounded.
        let expected: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let j = i % 2;
                ((f64::from(x) - f64::from(s.mean[j])) / f64::from(s.std[j])) as f32
            })
            .collect();
        assert_eq!(block.features(), &expected[..]);
        assert_eq!(block.row(0)[0], 1.6);
    }
}
