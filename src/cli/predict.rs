//! `streamfit predict` and `streamfit eval`: a saved model applied to data.
//!
//! Reading the model and the data and writing the predictions is the library's
//! ([`streamfit::predict`]); this module maps flags, shows progress and prints the summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use streamfit::eval_metrics::EvalReport;
use streamfit::predict::{
    ApplyConfig, ExtraFigures, count_null_labels, evaluate_model_with, predict,
};

use super::args::ReadArgs;
use super::output::{rows_progress, say, thousands};

#[derive(Args, Debug)]
pub(crate) struct PredictArgs {
    /// Saved model (`train --save-model`): a file or a URL (s3://, gs://, az://, https://)
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Parquet files and/or directories of .parquet files, or one shard dataset directory; the
    /// label column may be absent
    #[arg(value_name = "DATA", required = true)]
    data: Vec<PathBuf>,
    /// Output Parquet file, named .parquet or .parq (other names are refused): `prediction`
    /// (regression), `probability` and `class` (binary), or `class`, `probability` and
    /// `probabilities` (multiclass), one row per input row in input order, then the --keep
    /// columns (written atomically; a local file or an s3://, gs://, az:// URL)
    #[arg(long, value_name = "FILE.parquet")]
    out: PathBuf,
    /// Input columns to copy into the output unchanged, comma-separated (Parquet input only)
    #[arg(long, value_delimiter = ',', value_name = "COL,COL..")]
    keep: Vec<String>,
    #[command(flatten)]
    read: ReadArgs,
    /// Print nothing but errors
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
pub(crate) struct EvalArgs {
    /// Saved model (`train --save-model`): a file or a URL (s3://, gs://, az://, https://)
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Labelled Parquet files and/or directories of .parquet files, or one shard dataset
    #[arg(value_name = "DATA", required = true)]
    data: Vec<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
    /// Print one JSON object: loss, accuracy, auc (and auc_max_error), precision, recall, f1,
    /// confusion ([actual][predicted]) and per_class (softmax: precision, recall and f1 are
    /// macro averages) for a classifier; loss, rmse, r2, mae for regression; rows. AUC comes from
    /// a 4,096-bin histogram of the predicted probability (bounded memory): pairs sharing a bin
    /// count as half, so its error is at most half the share of positive-negative pairs that
    /// share a bin (auc_max_error), never more than that share
    #[arg(long)]
    json: bool,
    /// Leave out the rows whose label is null (counted, and printed: `null_labels` with
    /// --json) [default: a null label is an error]
    #[arg(long)]
    drop_null_labels: bool,
}

fn apply_config(model: &Path, data: &[PathBuf], read: ReadArgs) -> ApplyConfig {
    ApplyConfig {
        model: model.to_path_buf(),
        data: data.to_vec(),
        num_readers: read.readers,
        verify_checksums: read.verify_checksums,
        num_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        read_mode: read.read_mode,
        drop_null_labels: false,
    }
}

/// Runs `streamfit predict`.
pub(crate) fn run_predict(args: PredictArgs) -> Result<()> {
    let config = apply_config(&args.model, &args.data, args.read);
    let started = Instant::now();
    let progress = rows_progress(None, "predicted", args.quiet);
    let summary = predict(&config, &args.out, &args.keep, &|rows| {
        progress.set_position(rows)
    });
    progress.finish_and_clear();
    let summary = summary?;
    if !args.quiet {
        let seconds = started.elapsed().as_secs_f64();
        say!(
            "predict: {} rows in {seconds:.2} s ({} rows/s) → {} (columns: {})",
            thousands(summary.rows),
            thousands((summary.rows as f64 / seconds.max(1e-9)) as u64),
            args.out.display(),
            summary.columns.join(", ")
        );
    }
    Ok(())
}

/// Runs `streamfit eval`.
pub(crate) fn run_eval(args: EvalArgs) -> Result<()> {
    let config = ApplyConfig {
        drop_null_labels: args.drop_null_labels,
        ..apply_config(&args.model, &args.data, args.read)
    };
    let (metrics, rows, report) = evaluate_model_with(&config, ExtraFigures::On)?;
    let dropped = if args.drop_null_labels {
        Some(count_null_labels(&config)?)
    } else {
        None
    };
    if args.json {
        let mut value = serde_json::to_value(metrics).context("serialising the metrics")?;
        let extra = serde_json::to_value(&report).context("serialising the metrics")?;
        if let (Some(value), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            value.extend(extra.clone());
        }
        value["rows"] = rows.into();
        if let Some(dropped) = dropped {
            value["null_labels"] = dropped.into();
        }
        say!(
            "{}",
            serde_json::to_string_pretty(&value).context("serialising the metrics")?
        );
        return Ok(());
    }
    let mut line = format!("eval: {} rows", thousands(rows));
    if let Some(dropped) = dropped {
        line.push_str(&format!(
            " ({} with a null label left out)",
            thousands(dropped)
        ));
    }
    line.push_str(&format!(", loss {:.6}", metrics.loss));
    if let Some(a) = metrics.accuracy {
        // A percentage, as `train` prints it (`--json` keeps the fraction in [0, 1]).
        line.push_str(&format!(", accuracy {:.2}%", a * 100.0));
    }
    if let Some(r) = metrics.rmse {
        line.push_str(&format!(", RMSE {r:.6}"));
    }
    say!("{line}");
    for line in report_lines(&report) {
        say!("{line}");
    }
    Ok(())
}

/// The lines printed after `eval`'s first line: AUC, precision/recall/F1 and the confusion
/// matrix (per class for a multiclass model), or R² and MAE.
fn report_lines(report: &EvalReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let (Some(auc), Some(bound)) = (report.auc, report.auc_max_error) {
        lines.push(format!("  AUC {auc:.4} (histogram, error ≤ {bound:.1e})"));
    }
    if let (Some(p), Some(r), Some(f1)) = (report.precision, report.recall, report.f1) {
        let which = if report.per_class.is_some() {
            "macro "
        } else {
            ""
        };
        lines.push(format!(
            "  {which}precision {p:.4}, {which}recall {r:.4}, {which}F1 {f1:.4}"
        ));
    }
    if let Some(classes) = &report.per_class {
        for c in classes {
            lines.push(format!(
                "  class {}: precision {:.4}, recall {:.4}, F1 {:.4}, support {}",
                c.class,
                c.precision,
                c.recall,
                c.f1,
                thousands(c.support)
            ));
        }
    }
    if let Some(confusion) = &report.confusion {
        lines.push("  confusion (rows: actual class, columns: predicted class):".to_string());
        let width = confusion
            .iter()
            .flatten()
            .map(|n| thousands(*n).len())
            .max()
            .unwrap_or(1);
        for (actual, row) in confusion.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .map(|n| format!("{:>width$}", thousands(*n)))
                .collect();
            lines.push(format!("    {actual:>3}: {}", cells.join(" ")));
        }
    }
    if let (Some(r2), Some(mae)) = (report.r2, report.mae) {
        lines.push(format!("  R² {r2:.6}, MAE {mae:.6}"));
    }
    lines
}
