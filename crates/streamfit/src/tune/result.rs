//! What `tune` measured and recommends: the `--json` object and its parts. Every field's
//! unit is in its doc comment (and in `docs/tuning.md`).

use serde::Serialize;

/// Time per iteration at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct BatchTiming {
    /// Batch size, rows.
    pub batch_size: u64,
    /// Iterations timed.
    pub iterations: u64,
    /// Mean seconds per iteration.
    pub seconds_per_iteration: f64,
}

/// The variance of the mini-batch gradient at one batch size, measured on the noise sample.
#[derive(Debug, Clone, Serialize)]
pub struct VariancePoint {
    /// Batch size b, rows.
    pub batch_size: u64,
    /// Mean of |g_b − g|² over batches of b disjoint rows (without replacement, as an epoch
    /// draws them), g_b the batch's mean gradient and g the sample's; squared gradient units.
    pub without_replacement: f64,
    /// The same over batches of b rows drawn with replacement; squared gradient units.
    pub with_replacement: f64,
    /// (1 − b/n)·tr(Σ)/b, n the sample's rows: what `without_replacement` is in expectation;
    /// squared gradient units.
    pub predicted: f64,
}

/// The gradient-noise measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Noise {
    /// Rows in the sample, n.
    pub sample_rows: usize,
    /// tr(Σ): summed per-parameter variance of per-sample gradients (denominator n − 1);
    /// squared gradient units.
    pub trace_sigma: f64,
    /// |G|²: squared norm of the full gradient (unbiased estimate); squared gradient units.
    pub grad_norm_sq: f64,
    /// B_noise = tr(Σ)/|G|², rows.
    pub b_noise: f64,
    /// The mini-batch variance for b = 1, 4, 16, ... up to n/4.
    pub variance: Vec<VariancePoint>,
    /// Slope of log `without_replacement` against log b (dimensionless): −1 while b ≪ n,
    /// steeper as b nears n, since the variance falls as (1 − b/n)/b.
    pub slope: f64,
    /// Slope of log `with_replacement` against log b (dimensionless; −1 up to sampling error).
    pub slope_with_replacement: f64,
}

/// Throughput of one prefetch depth and reader count, repeated.
#[derive(Debug, Clone, Serialize)]
pub struct PrefetchRun {
    /// `--prefetch`, batches.
    pub prefetch: usize,
    /// `--readers`, threads.
    pub readers: usize,
    /// Training rows per second of each repeat, in the order they ran.
    pub rows_per_s_repeats: Vec<f64>,
    /// Median of `rows_per_s_repeats`, rows per second.
    pub median_rows_per_s: f64,
    /// Smallest of `rows_per_s_repeats`, rows per second.
    pub min_rows_per_s: f64,
    /// Largest of `rows_per_s_repeats`, rows per second.
    pub max_rows_per_s: f64,
    /// Median share of the time the trainer waited for data, in [0, 1].
    pub stall_fraction: f64,
    /// Memory budget of this setting, bytes.
    pub memory_budget_bytes: u64,
}

/// What the prefetch/readers sweep found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepVerdict {
    /// Some setting's min–max spread lies wholly below the best setting's (every repeat of it
    /// was slower than every repeat of the best): the smallest depth (then fewest readers)
    /// whose median is within the best setting's spread is recommended.
    Measurable,
    /// Every setting's spread reaches the best setting's (or one setting was swept): the
    /// settings make no measurable difference and the defaults are kept.
    NoMeasurableDifference,
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
    /// R² of the weighted fit (dimensionless).
    pub r_squared: f64,
    /// Gradient noise.
    pub noise: Noise,
    /// Rows in the dataset, N (an epoch's rows).
    pub dataset_rows: u64,
    /// sqrt(B_noise·τ_f / ((1 − B_noise/N)·τ_d)), rows; `null` (infinite) when B_noise ≥ N,
    /// where the largest batch size is best.
    pub b_opt: f64,
    /// b_opt rounded to a power of two within the measured range, rows.
    pub recommended_batch_size: u64,
    /// Times each prefetch setting ran, interleaved across the settings.
    pub repeats: usize,
    /// Per prefetch depth and reader count.
    pub prefetch: Vec<PrefetchRun>,
    /// Whether the sweep found a measurable difference.
    pub sweep_verdict: SweepVerdict,
    /// Depth of the setting with the largest median throughput, batches.
    pub best_prefetch: usize,
    /// Reader count of that setting, threads.
    pub best_readers: usize,
    /// The recommended depth, batches: the smallest whose median is within the best setting's
    /// spread, or the default when the verdict is `no_measurable_difference`.
    pub recommended_prefetch: usize,
    /// The recommended reader count, threads (as `recommended_prefetch`).
    pub recommended_readers: usize,
    /// Memory budget of the recommended setting, bytes.
    pub recommended_memory_bytes: u64,
    /// The `train` flags recommended (`--prefetch` and `--readers` only when the sweep found
    /// a measurable difference).
    pub flags: String,
}
