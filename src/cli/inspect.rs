//! `streamfit inspect`: what is in a dataset and what training would use, optionally with
//! per-column statistics.
//!
//! The inspection is the library's ([`streamfit::inspect`]); this module maps flags and prints
//! it as text or JSON. A null or non-finite value in a used column, or a named feature column
//! missing from some files (without `--fill-nulls`, which `train` takes), exits with code 2
//! after the printout.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use streamfit::config::TrainConfig;
use streamfit::data::source::ColumnRole;
use streamfit::error::render_options;
use streamfit::inspect::{Inspection, inspect};
use streamfit::train::BatchSize;

use super::args::{ColumnArgs, ReadArgs, parse_batch_size};
use super::output::{megabytes, say, thousands};

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// Parquet files and/or directories of .parquet files, or one shard dataset directory
    #[arg(value_name = "DATA", required = true)]
    data: Vec<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Also stream every used column once: count, mean, std, min, max, nulls, non-finite
    /// values; and each string column's estimated distinct values and most frequent values.
    /// Exits with code 2 after printing when a used column holds a null or NaN/inf
    #[arg(long)]
    stats: bool,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
    /// Batch size the memory budget is computed for (as in `train`)
    #[arg(long, default_value = "256", value_parser = parse_batch_size)]
    batch_size: BatchSize,
    /// Shuffle-buffer rows the memory budget is computed for (as in `train`)
    #[arg(long, default_value_t = 65_536, value_name = "ROWS")]
    shuffle_buffer: usize,
    /// Prefetch depth the memory budget is computed for (as in `train`)
    #[arg(long, default_value_t = 4, value_name = "P")]
    prefetch: usize,
    #[command(flatten)]
    read: ReadArgs,
}

/// Runs `streamfit inspect`.
pub(crate) fn run(args: InspectArgs) -> Result<()> {
    let config = TrainConfig {
        data: args.data.clone(),
        columns: args.columns.spec(),
        batch_size: args.batch_size,
        shuffle_buffer_rows: args.shuffle_buffer,
        prefetch: args.prefetch,
        num_readers: args.read.readers,
        verify_checksums: args.read.verify_checksums,
        read_mode: args.read.read_mode,
        ..TrainConfig::default()
    };
    let (found, problem) = inspect(&config, args.stats)?;
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&found).context("serialising the inspection")?
        );
    } else {
        print_inspection(&found, &config);
    }
    match problem {
        Some(e) => Err(anyhow::Error::new(e).context("training would stop here")),
        None => Ok(()),
    }
}

fn print_inspection(found: &Inspection, config: &TrainConfig) {
    say!(
        "dataset: {}, {} file(s), {}, {} rows in {} {}s ({} to {} rows each)",
        found.format,
        found.files.len(),
        megabytes(found.file_bytes),
        thousands(found.rows),
        thousands(found.num_units as u64),
        found.unit_kind,
        thousands(found.unit_sizes.min_rows),
        thousands(found.unit_sizes.max_rows),
    );
    say!("codecs: {}", found.codecs.join(", "));
    say!(
        "bytes per row: {:.1} in the files, {} decoded ({} features + label, f32)",
        found.file_bytes_per_row,
        found.decoded_bytes_per_row,
        found.num_features,
    );
    say!(
        "features: {} column(s); label: `{}`",
        found.num_features,
        found.label_column
    );
    if let Some(stored) = &found.preprocessing {
        say!(
            "stored encoded by convert (applied as stored, saved with the model): {}",
            super::convert::preprocessing_line(stored)
        );
    }
    say!(
        "memory budget of train (batch {}, shuffle buffer {} rows, prefetch {}, {} readers): {}",
        match config.batch_size {
            BatchSize::Rows(b) => thousands(b),
            BatchSize::Full => "full".to_string(),
        },
        thousands(config.shuffle_buffer_rows as u64),
        config.prefetch,
        config.num_readers,
        megabytes(found.memory_budget_bytes),
    );
    let width = found
        .schema
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(6);
    // The type columns are as wide as their longest entry (at least 24 and 12), so a long
    // type such as `INT64 (TIMESTAMP(MICROS))` keeps the table aligned.
    let stored = found
        .schema
        .iter()
        .map(|c| c.stored_type.chars().count())
        .fold(24, usize::max);
    let arrow = found
        .schema
        .iter()
        .map(|c| c.arrow_type.chars().count())
        .fold(12, usize::max);
    say!("columns:");
    say!(
        "  {:<width$}  {:<7}  {:<stored$}  {:<arrow$}  note",
        "name",
        "role",
        "stored type",
        "arrow type"
    );
    for c in &found.schema {
        let role = match c.role {
            ColumnRole::Feature => "feature",
            ColumnRole::Label => "label",
            ColumnRole::Unused => "-",
        };
        say!(
            "  {:<width$}  {:<7}  {:<stored$}  {:<arrow$}  {}",
            c.name,
            role,
            c.stored_type,
            c.arrow_type,
            render_options(&c.note)
        );
    }
    if let (Some(columns), Some(label)) = (&found.columns, &found.label) {
        let width = columns
            .iter()
            .chain(std::iter::once(label))
            .map(|c| c.name.len())
            .max()
            .unwrap_or(6)
            .max(6);
        say!("statistics (finite values):");
        say!(
            "  {:<width$}  {:>12}  {:>6}  {:>10}  {:>12}  {:>12}  {:>12}  {:>12}",
            "column",
            "count",
            "nulls",
            "non-finite",
            "mean",
            "std",
            "min",
            "max"
        );
        for c in columns.iter().chain(std::iter::once(label)) {
            say!(
                "  {:<width$}  {:>12}  {:>6}  {:>10}  {:>12.6}  {:>12.6}  {:>12.6}  {:>12.6}",
                c.name,
                thousands(c.count),
                c.nulls,
                c.non_finite,
                c.mean,
                c.std,
                c.min,
                c.max
            );
        }
    }
    if let Some(categories) = found.categories.as_ref().filter(|c| !c.is_empty()) {
        say!("string columns (categorical candidates: --categorical NAME, or --hash-buckets):");
        for c in categories {
            let top: Vec<String> = c
                .top
                .iter()
                .map(|(value, n)| format!("{value} {}", thousands(*n)))
                .collect();
            say!(
                "  {}: ~{} distinct, {} null; most frequent: {}",
                c.column,
                thousands(c.distinct),
                thousands(c.nulls),
                top.join(", ")
            );
        }
    }
}
