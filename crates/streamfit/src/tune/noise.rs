//! The gradient-noise measurement: per-sample gradients of a shuffled sample give tr(Σ), an
//! unbiased |G|² and B_noise; mini-batches drawn from the sample show the variance of the
//! mini-batch gradient, drawn as an epoch draws them (disjoint rows, without replacement:
//! (1 − b/n)·tr(Σ)/b) and, for comparison, with replacement (tr(Σ)·(n − 1)/n/b).
//!
//! The sample is the first rows of a shuffled epoch of the training pipeline; the batches are
//! then drawn from it uniformly at random (seeded), so they measure uniform shuffling, not the
//! shuffle buffer's approximation of it (`shuffle ρ` in `train` reports that).

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::config::TrainConfig;
use crate::data::RowBlock;
use crate::data::source::Source;
use crate::error::Result;
use crate::model::Model;

use super::result::{Noise, VariancePoint};
use super::stretch::run_for;

/// Seed of the mini-batch draws.
const DRAW_SEED: u64 = 0x5EED;

/// Batches averaged per batch size (fewer when b·p is large: see [`num_batches`]).
const MAX_BATCHES: usize = 200;

/// How a mini-batch takes its rows from the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Draw {
    /// b independent uniform draws: a row can appear twice.
    WithReplacement,
    /// b distinct rows: consecutive blocks of a seeded permutation, a new permutation when
    /// fewer than b rows are left, as an epoch of uniformly shuffled training draws them.
    WithoutReplacement,
}

/// Per-sample gradients at one point: `n` rows of `p` values, row-major, with their mean.
pub(super) struct PerSample {
    values: Vec<f64>,
    p: usize,
    mean: Vec<f64>,
}

impl PerSample {
    /// `values` holds `values.len() / p` rows of `p` gradient values.
    pub(super) fn new(values: Vec<f64>, p: usize) -> Self {
        let n = values.len() / p;
        let mut mean = vec![0.0f64; p];
        for row in values.chunks_exact(p) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v / n as f64;
            }
        }
        Self { values, p, mean }
    }

    fn num_rows(&self) -> usize {
        self.values.len() / self.p
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.p..(i + 1) * self.p]
    }

    /// tr(Σ): the per-parameter variances (denominator n − 1), summed.
    pub(super) fn trace_sigma(&self) -> f64 {
        self.values
            .chunks_exact(self.p)
            .map(|row| {
                row.iter()
                    .zip(&self.mean)
                    .map(|(v, m)| (v - m).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / (self.num_rows() - 1) as f64
    }

    /// Mean of |g_b − g|² over `num_batches` batches of `b` rows drawn as `draw` says, g_b the
    /// batch's mean gradient and g the sample's. `b` is at most the sample's rows.
    pub(super) fn minibatch_variance(
        &self,
        b: usize,
        num_batches: usize,
        draw: Draw,
        rng: &mut Xoshiro256PlusPlus,
    ) -> f64 {
        let n = self.num_rows();
        assert!((1..=n).contains(&b), "batch of {b} rows from {n}");
        let mut order: Vec<usize> = (0..n).collect();
        let mut next = n;
        let mut batch_mean = vec![0.0f64; self.p];
        let mut total = 0.0;
        let mut rows = Vec::with_capacity(b);
        for _ in 0..num_batches {
            rows.clear();
            match draw {
                Draw::WithReplacement => rows.extend((0..b).map(|_| rng.random_range(0..n))),
                Draw::WithoutReplacement => {
                    if n - next < b {
                        order.shuffle(rng);
                        next = 0;
                    }
                    rows.extend_from_slice(&order[next..next + b]);
                    next += b;
                }
            }
            batch_mean.fill(0.0);
            for &i in &rows {
                for (m, v) in batch_mean.iter_mut().zip(self.row(i)) {
                    *m += v / b as f64;
                }
            }
            total += batch_mean
                .iter()
                .zip(&self.mean)
                .map(|(a, m)| (a - m).powi(2))
                .sum::<f64>();
        }
        total / num_batches as f64
    }
}

/// Batches averaged at batch size `b` for `p` parameters: [`MAX_BATCHES`], fewer when that
/// would add more than 2^26 gradient values (at least 8).
fn num_batches(b: usize, p: usize) -> usize {
    ((1usize << 26) / (b * p).max(1)).clamp(8, MAX_BATCHES)
}

/// Per-sample gradients of a shuffled sample at `params`; see the module docs.
pub(super) fn measure_noise(
    base: &TrainConfig,
    source: &Arc<dyn Source>,
    model: &dyn Model,
    params: &[f32],
    sample_rows: usize,
) -> Result<Noise> {
    let d = source.num_features();
    // The per-sample gradients take n × p f64: at most 2^24 of them (128 MB), so a large model
    // measures its noise on fewer rows.
    let per_sample_cap = (1usize << 24) / params.len().max(1);
    let n = sample_rows
        .min(per_sample_cap)
        .min(source.num_rows() as usize)
        .max(2);
    let mut sample = RowBlock::with_capacity(d, n);
    let mut scratch = params.to_vec();
    // Collect the first n rows of a shuffled epoch (the training run itself is discarded).
    run_for(
        base,
        source,
        model,
        &mut scratch,
        256,
        0.0,
        None,
        Some((&mut sample, n)),
    )?;
    let n = sample.num_rows();
    let p = params.len();
    let mut values = vec![0.0f64; n * p];
    let mut g = vec![0.0f32; p];
    for i in 0..n {
        g.fill(0.0);
        model.loss_grad_sum(params, sample.row(i), &sample.targets()[i..=i], &mut g);
        for (dst, &v) in values[i * p..(i + 1) * p].iter_mut().zip(&g) {
            *dst = f64::from(v);
        }
    }
    let per_sample = PerSample::new(values, p);
    let trace_sigma = per_sample.trace_sigma();
    let mean_sq: f64 = per_sample.mean.iter().map(|m| m * m).sum();
    let grad_norm_sq = (mean_sq - trace_sigma / n as f64).max(f64::MIN_POSITIVE);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(DRAW_SEED);
    let mut variance = Vec::new();
    let mut b = 1usize;
    while b <= n / 4 {
        let batches = num_batches(b, p);
        variance.push(VariancePoint {
            batch_size: b as u64,
            without_replacement: per_sample.minibatch_variance(
                b,
                batches,
                Draw::WithoutReplacement,
                &mut rng,
            ),
            with_replacement: per_sample.minibatch_variance(
                b,
                batches,
                Draw::WithReplacement,
                &mut rng,
            ),
            predicted: (1.0 - b as f64 / n as f64) * trace_sigma / b as f64,
        });
        b *= 4;
    }
    let slope = log_log_slope(
        variance
            .iter()
            .map(|v| (v.batch_size, v.without_replacement)),
    );
    let slope_with_replacement =
        log_log_slope(variance.iter().map(|v| (v.batch_size, v.with_replacement)));
    Ok(Noise {
        sample_rows: n,
        trace_sigma,
        grad_norm_sq,
        b_noise: trace_sigma / grad_norm_sq,
        variance,
        slope,
        slope_with_replacement,
    })
}

/// Least-squares slope of ln v against ln b over the points with v > 0 (NaN for fewer than 2).
fn log_log_slope(points: impl Iterator<Item = (u64, f64)>) -> f64 {
    let logs: Vec<(f64, f64)> = points
        .filter(|(_, v)| *v > 0.0)
        .map(|(b, v)| ((b as f64).ln(), v.ln()))
        .collect();
    let k = logs.len() as f64;
    let mx = logs.iter().map(|l| l.0).sum::<f64>() / k;
    let my = logs.iter().map(|l| l.1).sum::<f64>() / k;
    logs.iter().map(|l| (l.0 - mx) * (l.1 - my)).sum::<f64>()
        / logs.iter().map(|l| (l.0 - mx).powi(2)).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use rand_distr::{Distribution, Normal};

    use super::*;

    /// 1,000 rows of 3 gradient values drawn from N(0, 1), N(2, 3²) and N(−1, 0.5²) (seed 7):
    /// a synthetic dataset whose exact tr(Σ) is computed from the rows themselves.
    fn synthetic() -> PerSample {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let columns = [(0.0, 1.0), (2.0, 3.0), (-1.0, 0.5)];
        let values = (0..1_000)
            .flat_map(|_| columns.map(|(m, s)| Normal::new(m, s).unwrap().sample(&mut rng)))
            .collect();
        PerSample::new(values, 3)
    }

    #[test]
    fn variance_without_replacement_follows_the_finite_population_correction() {
        // Sampling theory (e.g. Cochran, Sampling Techniques, thm 2.2): the mean of b of n rows
        // drawn without replacement has variance (1 − b/n)·S²/b, S² the n − 1 variance.
        let sample = synthetic();
        let (n, trace) = (1_000.0, sample.trace_sigma());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        for b in [1usize, 10, 100, 500, 900] {
            let measured = sample.minibatch_variance(b, 4_000, Draw::WithoutReplacement, &mut rng);
            let predicted = (1.0 - b as f64 / n) * trace / b as f64;
            let ratio = measured / predicted;
            assert!(
                (0.93..1.07).contains(&ratio),
                "b {b}: {measured} vs {predicted}"
            );
        }
    }

    #[test]
    fn variance_with_replacement_has_no_correction() {
        // b independent draws: the population variance (denominator n) over b, whatever b.
        let sample = synthetic();
        let (n, trace) = (1_000.0, sample.trace_sigma());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        for b in [1usize, 100, 900] {
            let measured = sample.minibatch_variance(b, 4_000, Draw::WithReplacement, &mut rng);
            let predicted = trace * (n - 1.0) / n / b as f64;
            let ratio = measured / predicted;
            assert!(
                (0.93..1.07).contains(&ratio),
                "b {b}: {measured} vs {predicted}"
            );
        }
    }

    #[test]
    fn batches_without_replacement_use_distinct_rows() {
        // Rows 0..8 of one value each, equal to the row number: a batch of all 8 distinct rows
        // has the sample's mean exactly, so its variance is 0 (with replacement it is not).
        let sample = PerSample::new((0..8).map(f64::from).collect(), 1);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        assert_eq!(
            sample.minibatch_variance(8, 50, Draw::WithoutReplacement, &mut rng),
            0.0
        );
        assert!(sample.minibatch_variance(8, 50, Draw::WithReplacement, &mut rng) > 0.0);
    }

    #[test]
    fn log_log_slope_of_a_power_law_is_its_exponent() {
        let points = [1u64, 4, 16, 64].map(|b| (b, 3.0 / b as f64));
        assert!((log_log_slope(points.into_iter()) + 1.0).abs() < 1e-12);
    }
}
