//! `streamfit convert`: Parquet into streamfit shards.
//!
//! The conversion is the library's ([`streamfit::convert`]); this module maps flags, shows
//! progress, prints what fitting the preprocessing found, and the summary.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use streamfit::convert::{ConvertConfig, ConvertPreprocess, convert_with_events};
use streamfit::data::ColumnSpec;
use streamfit::data::categorical::{CategoricalColumns, Encoding};
use streamfit::data::source::shard::Preprocessing;

use super::args::ColumnArgs;
use super::observer::print_event;
use super::output::{rows_progress, say, thousands};
use super::preprocess::PreprocessArgs;

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
    #[command(flatten)]
    preprocess: PreprocessArgs,
    /// Store far-off-centre columns (e.g. timestamps) as rounded raw values instead of
    /// centring them in f64 before the f32 cast [default: centred where train's scale check
    /// finds them more than 100 of their ranges from zero, as a standardised run centres them]
    #[arg(long)]
    no_centre: bool,
}

/// The stored preprocessing in one line: what the rows hold besides the source's values.
pub(crate) fn preprocessing_line(p: &Preprocessing) -> String {
    let mut parts = Vec::new();
    match &p.categorical.encoding {
        _ if p.categorical.is_empty() => {}
        Encoding::OneHot(vocabularies) => {
            let columns: Vec<String> = vocabularies
                .iter()
                .map(|v| format!("{} ({} values)", v.column, v.values.len()))
                .collect();
            parts.push(format!("one-hot {}", columns.join(", ")));
        }
        Encoding::Hash { buckets } => {
            let columns = match &p.categorical.columns {
                CategoricalColumns::Named(names) => names.join(", "),
                _ => "categorical columns".to_string(),
            };
            parts.push(format!("{columns} hashed into {buckets} buckets"));
        }
        Encoding::Unfitted => {}
    }
    if !p.missing.fill.is_empty() {
        parts.push(format!("fill values of {} columns", p.missing.fill.len()));
    }
    if !p.missing.indicators.is_empty() {
        parts.push(format!("indicators of {}", p.missing.indicators.join(", ")));
    }
    if let Some(positive) = &p.positive_label {
        parts.push(format!("label 1 where `{positive}`"));
    }
    if p.drop_null_labels {
        parts.push("null labels dropped".to_string());
    }
    if !p.centre.is_empty() {
        let columns: Vec<String> = p
            .centre
            .iter()
            .map(|c| format!("{} at {}", c.column, c.value))
            .collect();
        parts.push(format!("centred {}", columns.join(", ")));
    }
    if p.scales_mixed {
        parts.push("scales mixed (train standardises by default)".to_string());
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join("; ")
    }
}

/// Runs `streamfit convert`.
pub(crate) fn run(args: ConvertArgs) -> Result<()> {
    let config = ConvertConfig {
        data: args.data,
        columns: ColumnSpec {
            positive_label: args.preprocess.positive_label.clone(),
            drop_null_labels: args.preprocess.drop_null_labels,
            ..args.columns.spec()
        },
        preprocess: ConvertPreprocess {
            fill_nulls: args.preprocess.fill_nulls,
            null_indicators: args.preprocess.null_indicators,
            categorical: args.preprocess.categorical_columns(),
            max_categories: args.preprocess.max_categories,
            hash_buckets: args.preprocess.hash_buckets,
            centre: !args.no_centre,
        },
        out: args.out,
        shard_rows: args.shard_rows,
        num_readers: args.readers,
    };
    let progress = rows_progress(None, "converted", false);
    let summary = convert_with_events(
        &config,
        &mut |event| progress.suspend(|| print_event(&event, false)),
        &mut |rows| progress.set_position(rows),
    );
    progress.finish_and_clear();
    let summary = summary?;
    if !summary.preprocessing.is_empty() {
        say!(
            "convert: stored encoded ({}), fitted preprocessing in the manifest",
            preprocessing_line(&summary.preprocessing)
        );
    }
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
