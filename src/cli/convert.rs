//! `streamfit convert`: Parquet into streamfit shards.
//!
//! The conversion is the library's ([`streamfit::convert`]); this module maps flags, shows
//! progress and prints the summary.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use streamfit::convert::{ConvertConfig, convert};

use super::args::ColumnArgs;
use super::output::{rows_progress, say, thousands};

#[derive(Args, Debug)]
pub(crate) struct ConvertArgs {
    /// Parquet files and/or directories of .parquet files with one schema
    #[arg(value_name = "DATA", required = true)]
    data: Vec<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Output directory of the shard dataset (must not exist; written as DIR.partial, then renamed)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Rows per shard file, whole row groups only [default: about 256 MB of rows]
    #[arg(long, value_name = "N")]
    shard_rows: Option<u64>,
    /// Reader (decoder) threads
    #[arg(long, default_value_t = 2, value_name = "R")]
    readers: usize,
}

/// Runs `streamfit convert`.
pub(crate) fn run(args: ConvertArgs) -> Result<()> {
    let config = ConvertConfig {
        data: args.data,
        columns: args.columns.spec(),
        out: args.out,
        shard_rows: args.shard_rows,
        num_readers: args.readers,
    };
    let progress = rows_progress(None, "converted", false);
    let summary = convert(&config, &mut |rows| progress.set_position(rows));
    progress.finish_and_clear();
    let summary = summary?;
    say!(
        "convert: {} rows × {} features, {} units → {} shard(s) in {} ({:.1} MB, from {:.1} MB of Parquet) in {:.2} s ({:.0} MB/s written)",
        thousands(summary.rows),
        summary.num_features,
        summary.units,
        summary.shards,
        config.out.display(),
        summary.bytes as f64 / 1e6,
        summary.source_bytes as f64 / 1e6,
        summary.seconds,
        summary.bytes as f64 / 1e6 / summary.seconds.max(1e-9),
    );
    Ok(())
}
