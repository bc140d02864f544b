//! `streamfit plot`: the loss curves of a `--metrics` file as an SVG chart.
//!
//! Reading the file and drawing are the library's ([`streamfit::plot`]); this module only
//! maps flags, refuses an output that is the metrics file or cannot be written, and prints
//! where the chart went.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use streamfit::output_path::{InputSet, WriteMode};
use streamfit::plot::LossCurves;

use super::output::say;

#[derive(Args, Debug)]
pub(crate) struct PlotArgs {
    /// A JSON-lines file written by `train --metrics`
    #[arg(value_name = "METRICS.jsonl")]
    metrics: PathBuf,
    /// Output SVG file
    #[arg(long, value_name = "FILE.svg")]
    out: PathBuf,
    /// Log scale for the loss axis
    #[arg(long)]
    log_y: bool,
}

/// Runs `streamfit plot`.
pub(crate) fn run(args: PlotArgs) -> Result<()> {
    let mut inputs = InputSet::new();
    inputs.add_file(&args.metrics);
    inputs.check_file("out", &args.out, WriteMode::Replace)?;
    LossCurves::from_metrics(&args.metrics)?.draw(&args.out, args.log_y)?;
    say!("plot: wrote {}", args.out.display());
    Ok(())
}
