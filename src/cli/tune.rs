//! `streamfit tune`: measure, then recommend a batch size and a prefetch depth.
//!
//! The measurements are the library's ([`streamfit::tune`]), on runs built from the same
//! [`TrainConfig`] as `train`'s; this module maps flags and prints the tables or JSON.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use streamfit::config::TrainConfig;
use streamfit::tune::{TuneConfig, tune_with_events};

use super::args::{ColumnArgs, ModelArgs};
use super::observer::print_event;
use super::output::{megabytes, say, thousands};

#[derive(Args, Debug)]
pub(crate) struct TuneArgs {
    /// Parquet files and/or directories of .parquet files, or one shard dataset directory
    #[arg(value_name = "DATA", required = true)]
    data: Vec<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Learning rate of the short training stretches
    #[arg(long, default_value_t = 0.1)]
    lr: f32,
    /// Wall-clock budget for all measurements, seconds
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    budget_seconds: f64,
    /// Batch sizes to time
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64,256,1024,4096")]
    batch_sizes: Vec<u64>,
    /// Prefetch depths to try
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,4,8,16")]
    prefetch_depths: Vec<usize>,
    /// Reader counts to try
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    readers_list: Vec<usize>,
    /// Rows in the shuffle buffer (as in `train`)
    #[arg(long, default_value_t = 65_536, value_name = "ROWS")]
    shuffle_buffer: usize,
    /// Threads computing the gradient [default: all cores]
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Print one JSON object instead of tables
    #[arg(long)]
    json: bool,
}

/// Runs `streamfit tune`.
pub(crate) fn run(args: TuneArgs) -> Result<()> {
    let mut base = TrainConfig {
        data: args.data.clone(),
        columns: args.columns.spec(),
        shuffle_buffer_rows: args.shuffle_buffer,
        ..TrainConfig::default()
    };
    base.trainer.optimizer.learning_rate = args.lr;
    args.model.apply(&mut base);
    if let Some(t) = args.threads {
        base.trainer.num_threads = t;
    }
    let config = TuneConfig {
        base,
        batch_sizes: args.batch_sizes.clone(),
        prefetch_depths: args.prefetch_depths.clone(),
        reader_counts: args.readers_list.clone(),
        budget_seconds: args.budget_seconds,
        noise_rows: 16_384,
    };
    let result = tune_with_events(&config, &mut |event| print_event(event, args.json))?;
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&result).context("serialising the result")?
        );
        return Ok(());
    }
    say!("time per iteration:");
    say!(
        "  {:>6}  {:>10}  {:>14}",
        "batch",
        "iterations",
        "µs/iteration"
    );
    for t in &result.batch {
        say!(
            "  {:>6}  {:>10}  {:>14.2}",
            t.batch_size,
            t.iterations,
            t.seconds_per_iteration * 1e6
        );
    }
    say!(
        "  fit T(b) = τ_f + τ_d·b: τ_f = {:.2} µs, τ_d = {:.1} ns/row, R² = {:.3} (weighted by 1/T²)",
        result.tau_f * 1e6,
        result.tau_d * 1e9,
        result.r_squared
    );
    let noise = &result.noise;
    say!(
        "gradient noise ({} rows): tr(Σ) = {:.4}, |G|² = {:.4}, B_noise = {:.0}; variance vs b slope {:.2} (theory −1)",
        noise.sample_rows,
        noise.trace_sigma,
        noise.grad_norm_sq,
        noise.b_noise,
        noise.slope
    );
    say!(
        "b_opt = sqrt(B_noise·τ_f/τ_d) = {:.0} → batch size {}",
        result.b_opt,
        result.recommended_batch_size
    );
    say!(
        "prefetch and readers (batch {}):",
        result.recommended_batch_size
    );
    say!(
        "  {:>8}  {:>7}  {:>12}  {:>7}  {:>10}",
        "prefetch",
        "readers",
        "rows/s",
        "stall",
        "memory"
    );
    for r in &result.prefetch {
        say!(
            "  {:>8}  {:>7}  {:>12}  {:>6.1}%  {:>10}",
            r.prefetch,
            r.readers,
            thousands(r.rows_per_s as u64),
            r.stall_fraction * 100.0,
            megabytes(r.memory_budget_bytes)
        );
    }
    say!(
        "recommended: streamfit train {} {} (memory budget {})",
        args.data
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        result.flags,
        megabytes(result.recommended_memory_bytes)
    );
    Ok(())
}
