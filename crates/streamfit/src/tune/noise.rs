//! The gradient-noise measurement: per-sample gradients of a shuffled sample give tr(Σ), an
//! unbiased |G|² and B_noise, and mini-batches drawn from the sample show the variance falling
//! like tr(Σ)/b.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::config::TrainConfig;
use crate::data::RowBlock;
use crate::data::source::Source;
use crate::error::Result;
use crate::model::Model;

use super::result::Noise;
use super::stretch::run_for;

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
    let mut per_sample = vec![0.0f64; n * p];
    let mut g = vec![0.0f32; p];
    for i in 0..n {
        g.fill(0.0);
        model.loss_grad_sum(params, sample.row(i), &sample.targets()[i..=i], &mut g);
        for (dst, &v) in per_sample[i * p..(i + 1) * p].iter_mut().zip(&g) {
            *dst = f64::from(v);
        }
    }
    let mut mean = vec![0.0f64; p];
    for row in per_sample.chunks_exact(p) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n as f64;
        }
    }
    let trace_sigma: f64 = per_sample
        .chunks_exact(p)
        .map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(v, m)| (v - m).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (n - 1) as f64;
    let mean_sq: f64 = mean.iter().map(|m| m * m).sum();
    let grad_norm_sq = (mean_sq - trace_sigma / n as f64).max(f64::MIN_POSITIVE);
    // Variance of the mini-batch gradient, from batches drawn with replacement.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5EED);
    let mut variance = Vec::new();
    let mut b = 1usize;
    while b <= n / 4 {
        let draws = 200;
        let mut total = 0.0;
        let mut batch_mean = vec![0.0f64; p];
        for _ in 0..draws {
            batch_mean.fill(0.0);
            for _ in 0..b {
                let i = rng.random_range(0..n);
                for (m, v) in batch_mean.iter_mut().zip(&per_sample[i * p..(i + 1) * p]) {
                    *m += v / b as f64;
                }
            }
            total += batch_mean
                .iter()
                .zip(&mean)
                .map(|(a, m)| (a - m).powi(2))
                .sum::<f64>();
        }
        variance.push((b as u64, total / draws as f64));
        b *= 4;
    }
    let logs: Vec<(f64, f64)> = variance
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|&(b, v)| ((b as f64).ln(), v.ln()))
        .collect();
    let k = logs.len() as f64;
    let (mx, my) = (
        logs.iter().map(|l| l.0).sum::<f64>() / k,
        logs.iter().map(|l| l.1).sum::<f64>() / k,
    );
    let slope = logs.iter().map(|l| (l.0 - mx) * (l.1 - my)).sum::<f64>()
        / logs.iter().map(|l| (l.0 - mx).powi(2)).sum::<f64>();
    Ok(Noise {
        sample_rows: n,
        trace_sigma,
        grad_norm_sq,
        b_noise: trace_sigma / grad_norm_sq,
        variance,
        slope,
    })
}
