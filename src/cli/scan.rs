//! `streamfit scan`: read and decode the data with the training readers, without training (the
//! read ceiling).
//!
//! The pipeline is the library's; this module maps flags, counts the rows as they stream by
//! and prints the throughput.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use streamfit::config::TrainConfig;
use streamfit::data::RowBlock;
use streamfit::pipeline::Pipeline;
use streamfit::telemetry::peak_rss_bytes;

use super::args::{ColumnArgs, ReadArgs};
use super::output::{count, rows_progress, say, thousands};

#[derive(Args, Debug)]
pub(crate) struct ScanArgs {
    /// Parquet files and/or directories of .parquet files, or one shard dataset directory
    #[arg(value_name = "DATA", required = true)]
    data: Vec<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    #[command(flatten)]
    read: ReadArgs,
    /// Print one JSON object instead of a line
    #[arg(long)]
    json: bool,
}

/// Runs `streamfit scan`.
pub(crate) fn run(args: ScanArgs) -> Result<()> {
    let config = TrainConfig {
        data: args.data.clone(),
        columns: args.columns.spec(),
        num_readers: args.read.readers,
        verify_checksums: args.read.verify_checksums,
        read_mode: args.read.read_mode,
        ..TrainConfig::default()
    };
    config.check()?;
    let source = config.open_source()?;
    let num_rows = source.num_rows();
    let pipeline = Pipeline::new(source.clone(), config.pipeline_config(num_rows));
    let started = Instant::now();
    let mut rows = 0u64;
    let mut checksum = 0.0f64;
    let progress = rows_progress(Some(num_rows), "scanned", false);
    let scanned = pipeline.scan(|block: &RowBlock| {
        rows += block.num_rows() as u64;
        progress.inc(block.num_rows() as u64);
        // Touch the decoded rows so the scan cannot be optimised into nothing.
        checksum += f64::from(block.targets().iter().sum::<f32>());
        Ok(())
    });
    progress.finish_and_clear();
    scanned?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let d = source.num_features();
    let decoded_bytes = rows * (d as u64 + 1) * 4;
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "rows": rows,
                "num_features": d,
                "seconds": secs,
                "rows_per_s": rows as f64 / secs,
                "decoded_gb_per_s": decoded_bytes as f64 / 1e9 / secs,
                "file_gb_per_s": source.file_bytes() as f64 / 1e9 / secs,
                "label_sum": checksum,
                "peak_rss_bytes": peak_rss_bytes(),
            })
        );
    } else {
        say!(
            "scan: {} × {} in {:.2} s: {} rows/s, {:.2} GB/s decoded, {:.2} GB/s of file, {}",
            count(rows, "row"),
            count(d as u64, "feature"),
            secs,
            thousands((rows as f64 / secs) as u64),
            decoded_bytes as f64 / 1e9 / secs,
            source.file_bytes() as f64 / 1e9 / secs,
            count(config.num_readers as u64, "reader"),
        );
    }
    Ok(())
}
