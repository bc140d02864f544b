//! `tune`: measure, then recommend a batch size and a prefetch depth.
//!
//! Three measurements share the time budget (see `docs/tuning.md` for the model):
//!
//! 1. **Time per iteration** for each batch size b: a short stretch of real training (the same
//!    pipeline and gradient code as `train`, timed after two warm-up steps), fitted by weighted
//!    least squares to T(b) = τ_f + τ_d·b (weights 1/T², so every b counts by its relative
//!    error; the reported R² is of that weighted fit).
//! 2. **Gradient noise** at the parameters reached after a short warm-up: per-sample gradients
//!    of a shuffled sample give tr(Σ) and an unbiased |G|², hence the critical batch size
//!    B_noise = tr(Σ)/|G|² (McCandlish et al. 2018). Mini-batches drawn from the sample show the
//!    variance of the mini-batch gradient falling like tr(Σ)/b: the fitted log-log slope is
//!    reported (−1 in theory).
//! 3. **Prefetch depth and readers**: rows/s and stall for each combination; the recommendation
//!    is the smallest depth within 2% of the best throughput.
//!
//! With K(b) = N_iter + C_var/b iterations to a given loss (C_var/N_iter = B_noise), total time
//! K(b)·T(b) is smallest at b_opt = sqrt(B_noise·τ_f/τ_d).

use std::sync::Arc;
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use crate::config::TrainConfig;
use crate::data::RowBlock;
use crate::data::source::Source;
use crate::error::{Error, Result, render_options};
use crate::model::Model;
use crate::optim::Optimizer;
use crate::pipeline::Pipeline;
use crate::run::{PrepareEvent, count_classes};
use crate::train::{BatchSize, GradientEngine};

/// Settings of `tune`.
#[derive(Debug, Clone)]
pub struct TuneConfig {
    /// The data, columns, model, optimizer and pipeline settings of the runs to time (their
    /// batch size, prefetch and readers are varied). Settings that come from the data are
    /// resolved as for training ([`crate::run::count_classes`]); its standardisation,
    /// checkpoints, resume and outputs are not used.
    pub base: TrainConfig,
    /// Batch sizes to time. By default 1, 4, 16, 64, 256, 1024, 4096.
    pub batch_sizes: Vec<u64>,
    /// Prefetch depths to try. By default 0, 1, 2, 4, 8, 16.
    pub prefetch_depths: Vec<usize>,
    /// Reader counts to try. By default 1 and 2.
    pub reader_counts: Vec<usize>,
    /// Wall-clock budget in seconds. By default 60.
    pub budget_seconds: f64,
    /// Rows sampled for the noise measurement. By default 4,096.
    pub noise_rows: usize,
}

/// Time per iteration at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct BatchTiming {
    /// Batch size.
    pub batch_size: u64,
    /// Iterations timed.
    pub iterations: u64,
    /// Mean seconds per iteration.
    pub seconds_per_iteration: f64,
}

/// The gradient-noise measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Noise {
    /// Rows in the sample.
    pub sample_rows: usize,
    /// tr(Σ): summed per-parameter variance of per-sample gradients.
    pub trace_sigma: f64,
    /// |G|²: squared norm of the full gradient (unbiased estimate).
    pub grad_norm_sq: f64,
    /// B_noise = tr(Σ)/|G|².
    pub b_noise: f64,
    /// (b, mean squared distance of a mini-batch gradient from the sample gradient).
    pub variance: Vec<(u64, f64)>,
    /// Slope of log variance against log b (−1 in theory).
    pub slope: f64,
}

/// Throughput at one prefetch depth and reader count.
#[derive(Debug, Clone, Serialize)]
pub struct PrefetchRun {
    /// `--prefetch`.
    pub prefetch: usize,
    /// `--readers`.
    pub readers: usize,
    /// Training rows per second.
    pub rows_per_s: f64,
    /// Share of the time the trainer waited.
    pub stall_fraction: f64,
    /// Memory budget of this setting.
    pub memory_budget_bytes: u64,
}

/// What `tune` measured and recommends (the `--json` object).
#[derive(Debug, Clone, Serialize)]
pub struct TuneResult {
    /// Per batch size.
    pub batch: Vec<BatchTiming>,
    /// Fixed cost per iteration, seconds.
    pub tau_f: f64,
    /// Cost per row, seconds.
    pub tau_d: f64,
    /// R² of the weighted fit.
    pub r_squared: f64,
    /// Gradient noise.
    pub noise: Noise,
    /// sqrt(B_noise·τ_f/τ_d).
    pub b_opt: f64,
    /// b_opt rounded to a power of two within the measured range.
    pub recommended_batch_size: u64,
    /// Per prefetch depth and reader count.
    pub prefetch: Vec<PrefetchRun>,
    /// Smallest depth within 2% of the best throughput.
    pub recommended_prefetch: usize,
    /// Reader count of that run.
    pub recommended_readers: usize,
    /// Memory budget of the recommended setting.
    pub recommended_memory_bytes: u64,
    /// The `train` flags recommended.
    pub flags: String,
}

/// Steps of b = 256 before the noise is measured: a little way into training, where the
/// gradient is still large against its noise (at convergence |G| → 0 and B_noise → ∞).
const WARM_UP_STEPS: u64 = 50;

/// Runs every measurement within the budget; see the module docs.
pub fn tune(config: &TuneConfig) -> Result<TuneResult> {
    tune_with_events(config, &mut |_| {})
}

/// Tunes like [`tune`], handing what preparing the runs finds (the classes counted) to
/// `on_event` as it happens.
pub fn tune_with_events(
    config: &TuneConfig,
    on_event: &mut dyn FnMut(&PrepareEvent),
) -> Result<TuneResult> {
    if config.batch_sizes.len() < 2 || config.batch_sizes.contains(&0) {
        return Err(Error::config(
            "batch_sizes",
            "give at least two batch sizes, each at least 1",
        ));
    }
    if config.prefetch_depths.is_empty() || config.reader_counts.contains(&0) {
        return Err(Error::config(
            "prefetch_depths/readers_list",
            "give at least one depth and reader counts of at least 1",
        ));
    }
    if !config.budget_seconds.is_finite() || config.budget_seconds <= 0.0 {
        return Err(Error::config("budget_seconds", "must be positive"));
    }
    config.base.check()?;
    let source = config.base.open_source()?;
    let base = resolve(&config.base, &source, on_event)?;
    let config = &TuneConfig {
        base,
        ..config.clone()
    };
    let model = config.base.trainer.model.build(source.num_features());
    let model = model.as_ref();
    let budget = config.budget_seconds;
    let runs = config.prefetch_depths.len() * config.reader_counts.len();
    let batch_share = 0.45 * budget / config.batch_sizes.len() as f64;
    let prefetch_share = 0.45 * budget / runs as f64;

    // Warm-up: parameters a little way into training, where the noise is measured.
    let mut params = model.init_params(config.base.trainer.init_seed);
    run_for(
        &config.base,
        &source,
        model,
        &mut params,
        256,
        0.0,
        Some(WARM_UP_STEPS),
        None,
    )?;

    let mut batch = Vec::with_capacity(config.batch_sizes.len());
    for &b in &config.batch_sizes {
        let mut scratch = params.clone();
        let timed = run_for(
            &config.base,
            &source,
            model,
            &mut scratch,
            b,
            batch_share,
            None,
            None,
        )?;
        batch.push(BatchTiming {
            batch_size: b,
            iterations: timed.iterations,
            seconds_per_iteration: timed.seconds / timed.iterations.max(1) as f64,
        });
    }
    let (tau_f, tau_d, r_squared) = weighted_fit(&batch);
    let noise = measure_noise(&config.base, &source, model, &params, config.noise_rows)?;
    let b_opt = if tau_d > 0.0 && tau_f > 0.0 && noise.b_noise > 0.0 {
        (noise.b_noise * tau_f / tau_d).sqrt()
    } else {
        f64::NAN
    };
    let smallest = *config.batch_sizes.iter().min().expect("two sizes");
    let largest = *config.batch_sizes.iter().max().expect("two sizes");
    let recommended_batch_size = if b_opt.is_finite() {
        (2f64.powf(b_opt.max(1.0).log2().round()) as u64).clamp(smallest, largest)
    } else {
        256u64.clamp(smallest, largest)
    };

    let mut prefetch = Vec::with_capacity(runs);
    for &readers in &config.reader_counts {
        for &depth in &config.prefetch_depths {
            let mut base = config.base.clone();
            base.prefetch = depth;
            base.num_readers = readers;
            let mut scratch = params.clone();
            let timed = run_for(
                &base,
                &source,
                model,
                &mut scratch,
                recommended_batch_size,
                prefetch_share,
                None,
                None,
            )?;
            base.batch_size = BatchSize::Rows(recommended_batch_size);
            prefetch.push(PrefetchRun {
                prefetch: depth,
                readers,
                rows_per_s: timed.rows as f64 / timed.seconds.max(1e-9),
                stall_fraction: timed.stall / timed.seconds.max(1e-9),
                memory_budget_bytes: base.memory_budget_bytes(&source),
            });
        }
    }
    let best = prefetch.iter().map(|r| r.rows_per_s).fold(0.0f64, f64::max);
    let chosen = prefetch
        .iter()
        .filter(|r| r.rows_per_s >= 0.98 * best)
        .min_by_key(|r| (r.prefetch, r.readers))
        .expect("at least one run");
    let flags = render_options(&format!(
        "«batch_size» {recommended_batch_size} «prefetch» {} «readers» {}",
        chosen.prefetch, chosen.readers
    ))
    .into_owned();
    Ok(TuneResult {
        batch,
        tau_f,
        tau_d,
        r_squared,
        b_opt,
        recommended_batch_size,
        recommended_prefetch: chosen.prefetch,
        recommended_readers: chosen.readers,
        recommended_memory_bytes: chosen.memory_budget_bytes,
        noise,
        prefetch,
        flags,
    })
}

/// `base` with the settings that come from the data resolved on `source`: the classes of a
/// multiclass model and a step schedule's step size (one epoch at the base batch size).
fn resolve(
    base: &TrainConfig,
    source: &Arc<dyn Source>,
    on_event: &mut dyn FnMut(&PrepareEvent),
) -> Result<TrainConfig> {
    let mut base = base.clone();
    if let Some(event) = count_classes(&mut base, source)? {
        on_event(&event);
    }
    base.check()?;
    let pipeline = Pipeline::new(source.clone(), base.pipeline_config(source.num_rows()));
    base.set_epoch_steps(pipeline.steps_in_epoch(0));
    Ok(base)
}

/// What a timed stretch of training did.
struct Timed {
    iterations: u64,
    rows: u64,
    seconds: f64,
    stall: f64,
}

/// Trains from `params` with batch size `b` for about `seconds` (at least a few steps; more
/// epochs when one is shorter than that; at most `max_steps` when given), timing after two
/// warm-up steps. With `collect`, also keeps the first rows seen.
#[allow(clippy::too_many_arguments)]
fn run_for(
    base: &TrainConfig,
    source: &Arc<dyn Source>,
    model: &dyn Model,
    params: &mut [f32],
    b: u64,
    seconds: f64,
    max_steps: Option<u64>,
    mut collect: Option<(&mut RowBlock, usize)>,
) -> Result<Timed> {
    let mut config = base.clone();
    config.batch_size = BatchSize::Rows(b);
    let pipeline = Pipeline::new(source.clone(), config.pipeline_config(source.num_rows()));
    let mut engine = GradientEngine::new(model, config.trainer.num_threads)?;
    let mut optimizer = Optimizer::new(
        config.trainer.optimizer.clone(),
        model.decays(),
        u64::MAX,
        None,
    );
    let mut grad = vec![0.0f32; params.len()];
    let (mut steps, mut timed_steps, mut rows) = (0u64, 0u64, 0u64);
    let mut started = Instant::now();
    let mut stall = 0.0;
    'epochs: for epoch in 0..1_000 {
        let mut stream = pipeline.epoch(epoch)?;
        let mut stall_from = 0.0;
        while let Some(batch) = stream.next() {
            let batch = batch?;
            if let Some((sample, limit)) = collect.as_mut() {
                let take = (*limit - sample.num_rows()).min(batch.rows.num_rows());
                sample.extend_from(&batch.rows, 0..take);
            }
            crate::train::check_labels(source.as_ref(), model.head(), &batch.rows)?;
            engine.accumulate(params, &batch.rows);
            if steps >= 2 {
                rows += batch.rows.num_rows() as u64;
            }
            if !batch.ends_step {
                continue;
            }
            drop(batch);
            engine.finish_step(&mut grad);
            if grad.iter().all(|g| g.is_finite()) {
                optimizer.step(params, &mut grad);
            }
            steps += 1;
            if steps == 2 {
                started = Instant::now();
                stall_from = stream.wait_time().as_secs_f64();
            } else if steps > 2 {
                timed_steps += 1;
            }
            let collecting = collect
                .as_ref()
                .is_some_and(|(sample, limit)| sample.num_rows() < *limit);
            let enough = steps > 2
                && timed_steps >= 3
                && started.elapsed().as_secs_f64() >= seconds
                && !collecting;
            if enough || max_steps.is_some_and(|m| steps >= m) {
                stall += stream.wait_time().as_secs_f64() - stall_from;
                break 'epochs;
            }
        }
        stall += stream.wait_time().as_secs_f64() - stall_from;
    }
    Ok(Timed {
        iterations: timed_steps,
        rows,
        seconds: started.elapsed().as_secs_f64(),
        stall: stall.max(0.0),
    })
}

/// Fits T(b) = τ_f + τ_d·b with weights 1/T²; returns (τ_f, τ_d, weighted R²).
fn weighted_fit(timings: &[BatchTiming]) -> (f64, f64, f64) {
    let points: Vec<(f64, f64, f64)> = timings
        .iter()
        .filter(|t| t.iterations > 0 && t.seconds_per_iteration > 0.0)
        .map(|t| {
            let y = t.seconds_per_iteration;
            (t.batch_size as f64, y, 1.0 / (y * y))
        })
        .collect();
    let sw: f64 = points.iter().map(|p| p.2).sum();
    if points.len() < 2 || sw == 0.0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mx = points.iter().map(|p| p.2 * p.0).sum::<f64>() / sw;
    let my = points.iter().map(|p| p.2 * p.1).sum::<f64>() / sw;
    let sxx: f64 = points.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = points.iter().map(|p| p.2 * (p.1 - my).powi(2)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let residual: f64 = points
        .iter()
        .map(|p| p.2 * (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    (intercept, slope, 1.0 - residual / syy)
}

/// Per-sample gradients of a shuffled sample at `params`; see the module docs.
fn measure_noise(
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
