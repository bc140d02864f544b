//! Feature standardisation: train on z-scored features, save a model for raw ones.
//!
//! Unscaled real-world columns (a price in the thousands next to a ratio near 1) give plain SGD
//! a gradient dominated by the large column, and it diverges at any learning rate that moves
//! the small ones. With `standardize`, every batch is rewritten in place as
//! z = (x − mean) / std before the gradient (one fused pass over the batch the trainer owns
//! anyway), and the learned parameters are folded back at the end:
//! w_j = w'_j / std_j and b = b' − Σ_j w'_j · mean_j / std_j for every unit of the input layer
//! (the one output of a linear model, each class of softmax, each first-layer unit of an MLP),
//! so the saved model scores raw features exactly as the trained one scores standardised ones
//! (up to rounding).

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
    /// values, and the folded parameters apply to them, so `predict` decodes them the same.
    /// Empty when none.
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

    /// Rewrites every row of `block` as (x − mean) / std.
    pub fn apply(&self, block: &mut RowBlock) {
        let d = self.mean.len();
        let inv: Vec<f32> = self.std.iter().map(|s| 1.0 / s).collect();
        for row in block.features_mut().chunks_exact_mut(d) {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&inv) {
                *x = (*x - m) * s;
            }
        }
    }

    /// Parameters for raw features equivalent to `params` for standardised ones. The model's
    /// input layer is the `[width × d]` weight matrix at the start of `params`, followed by its
    /// `width` biases (width 1 for the linear models); the rest is unchanged.
    pub fn fold(&self, params: &[f32], width: usize) -> Vec<f32> {
        let d = self.mean.len();
        let mut out = params.to_vec();
        for r in 0..width {
            let mut bias = f64::from(params[width * d + r]);
            let row = &params[r * d..(r + 1) * d];
            for (j, ((&trained, &mean), &std)) in
                row.iter().zip(&self.mean).zip(&self.std).enumerate()
            {
                let w = f64::from(trained) / f64::from(std);
                bias -= w * f64::from(mean);
                out[r * d + j] = w as f32;
            }
            out[width * d + r] = bias as f32;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_parameters_score_raw_rows_like_the_trained_ones_score_standardised_rows() {
        let s = Standardization {
            mean: vec![1000.0, -2.0],
            std: vec![250.0, 0.5],
            centre: Vec::new(),
        };
        let params = [0.7f32, -1.3, 0.2];
        let raw = [1400.0f32, -1.0];
        let mut block = RowBlock::with_capacity(2, 1);
        block.push_row(&raw, 0.0, 0);
        s.apply(&mut block);
        let z = block.row(0);
        assert_eq!(z, &[1.6, 2.0]);
        let trained = params[0] * z[0] + params[1] * z[1] + params[2];
        let folded = s.fold(&params, 1);
        let raw_score = folded[0] * raw[0] + folded[1] * raw[1] + folded[2];
        assert!(
            (trained - raw_score).abs() < 1e-4,
            "{trained} vs {raw_score}"
        );
    }
}
