//! What `tune` measured and recommends: the `--json` object and its parts.

use serde::Serialize;

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
