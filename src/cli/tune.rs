//! `streamfit tune`: measure, then recommend a batch size and a prefetch depth.
//!
//! The measurements are the library's ([`streamfit::tune`]), on runs built from the same
//! [`TrainConfig`] as `train`'s; this module maps flags and prints the tables or JSON, a
//! progress line per measurement on stderr, and the recommended `train` command: the user's
//! own command line with `tune` replaced by `train`, the tune-only flags dropped and the tuned
//! flags set.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use streamfit::config::TrainConfig;
use streamfit::tune::{SweepVerdict, TuneConfig, TuneEvent, TuneResult, tune_with_events};

use super::args::{ColumnArgs, ModelArgs, standardize_choice};
use super::observer::print_event;
use super::output::{count, megabytes, say, thousands};

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
    /// Times each prefetch/readers setting is timed (interleaved across the settings, within
    /// the budget); the recommendation compares medians and min–max spreads
    #[arg(long, default_value_t = 5, value_name = "N")]
    repeats: usize,
    /// Rows in the shuffle buffer (as in `train`)
    #[arg(long, default_value_t = 65_536, value_name = "ROWS")]
    shuffle_buffer: usize,
    /// Threads computing the gradient [default: all cores]
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Standardise the features (z-score, from one statistics pass) as `train --standardize`
    /// does, so that the gradient noise is measured on the features training sees [default:
    /// when the features' scales are mixed, as train does]
    #[arg(long)]
    standardize: bool,
    /// Time the raw features even when their scales are mixed
    #[arg(long, conflicts_with = "standardize")]
    no_standardize: bool,
    /// Print one JSON object instead of tables
    #[arg(long)]
    json: bool,
    /// Print no progress lines on stderr
    #[arg(long, short)]
    quiet: bool,
}

/// The flags of `tune` that `train` does not take, with whether each takes a value: left out
/// of the recommended command.
const TUNE_ONLY_FLAGS: [(&str, bool); 7] = [
    ("--budget-seconds", true),
    ("--batch-sizes", true),
    ("--prefetch-depths", true),
    ("--readers-list", true),
    ("--repeats", true),
    ("--json", false),
    ("--quiet", false),
];

/// Runs `streamfit tune`.
pub(crate) fn run(args: TuneArgs) -> Result<()> {
    let mut base = TrainConfig {
        data: args.data.clone(),
        columns: args.columns.spec(),
        shuffle_buffer_rows: args.shuffle_buffer,
        standardize: standardize_choice(args.standardize, args.no_standardize),
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
        repeats: args.repeats,
        budget_seconds: args.budget_seconds,
        noise_rows: 16_384,
    };
    let result = tune_with_events(&config, &mut |event| {
        report_progress(event, args.json, args.quiet)
    })?;
    let command = recommended_command(std::env::args_os().skip(1), &result);
    if args.json {
        let mut json = serde_json::to_value(&result).context("serialising the result")?;
        json["command"] = serde_json::Value::String(command);
        say!(
            "{}",
            serde_json::to_string_pretty(&json).context("serialising the result")?
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
    print_noise(&result);
    print_sweep(&result);
    say!(
        "recommended (memory budget {}):",
        megabytes(result.recommended_memory_bytes)
    );
    say!("{command}");
    Ok(())
}

/// Prints what preparing the runs found (as `train` does, on stdout unless `--json`) and one
/// line per measurement on stderr unless `--quiet`.
fn report_progress(event: TuneEvent<'_>, json: bool, quiet: bool) {
    match event {
        TuneEvent::Prepared(event) => print_event(event, json || quiet),
        _ if quiet => {}
        TuneEvent::BatchTimed {
            timing,
            index,
            count,
        } => eprintln!(
            "tune: batch {index}/{count}: b = {}, {} iterations, {:.2} µs/iteration",
            timing.batch_size,
            timing.iterations,
            timing.seconds_per_iteration * 1e6
        ),
        TuneEvent::NoiseMeasured(noise) => eprintln!(
            "tune: gradient noise over {} rows: B_noise = {:.0}",
            noise.sample_rows, noise.b_noise
        ),
        TuneEvent::PrefetchTimed {
            sample,
            index,
            count,
        } => eprintln!(
            "tune: pipeline {index}/{count}: prefetch {}, readers {}, repeat {}: {} rows/s, {:.1}% stall",
            sample.prefetch,
            sample.readers,
            sample.repeat,
            thousands(sample.rows_per_s as u64),
            sample.stall_fraction * 100.0
        ),
    }
}

/// Prints the gradient-noise figures and the mini-batch variance table.
fn print_noise(result: &TuneResult) {
    let noise = &result.noise;
    say!(
        "gradient noise ({} rows): tr(Σ) = {:.4}, |G|² = {:.4}, B_noise = {:.0}",
        thousands(noise.sample_rows as u64),
        noise.trace_sigma,
        noise.grad_norm_sq,
        noise.b_noise
    );
    say!("mini-batch gradient variance |g_b − g|², batches drawn from the sample:");
    say!(
        "  {:>6}  {:>12}  {:>16}  {:>6}  {:>14}",
        "batch",
        "disjoint rows",
        "(1 − b/n)·tr(Σ)/b",
        "ratio",
        "with replacement"
    );
    for v in &noise.variance {
        say!(
            "  {:>6}  {:>13.4e}  {:>17.4e}  {:>6.3}  {:>16.4e}",
            v.batch_size,
            v.without_replacement,
            v.predicted,
            v.without_replacement / v.predicted,
            v.with_replacement
        );
    }
    say!(
        "  log-log slope {:.2} for disjoint rows (training's draw; steeper than −1 as b nears n), {:.2} with replacement",
        noise.slope,
        noise.slope_with_replacement
    );
    say!(
        "b_opt = sqrt(B_noise·τ_f/((1 − B_noise/N)·τ_d)) = {:.0} (N = {}) → batch size {}",
        result.b_opt,
        thousands(result.dataset_rows),
        result.recommended_batch_size
    );
}

/// Prints the prefetch/readers table (median and min–max per setting) and the verdict.
fn print_sweep(result: &TuneResult) {
    say!(
        "prefetch and readers (batch {}, {} each, interleaved):",
        result.recommended_batch_size,
        count(result.repeats as u64, "repeat")
    );
    say!(
        "  {:>8}  {:>7}  {:>12}  {:>25}  {:>7}  {:>10}",
        "prefetch",
        "readers",
        "median rows/s",
        "min–max rows/s",
        "stall",
        "memory"
    );
    for r in &result.prefetch {
        say!(
            "  {:>8}  {:>7}  {:>13}  {:>25}  {:>6.1}%  {:>10}",
            r.prefetch,
            r.readers,
            thousands(r.median_rows_per_s as u64),
            format!(
                "{}–{}",
                thousands(r.min_rows_per_s as u64),
                thousands(r.max_rows_per_s as u64)
            ),
            r.stall_fraction * 100.0,
            megabytes(r.memory_budget_bytes)
        );
    }
    match result.sweep_verdict {
        SweepVerdict::NoMeasurableDifference => say!(
            "no measurable difference: no setting's min–max spread lies wholly below the best's; \
             keeping the defaults (prefetch {}, readers {})",
            result.recommended_prefetch,
            result.recommended_readers
        ),
        SweepVerdict::Measurable => say!(
            "best median: prefetch {}, readers {}; recommended: prefetch {}, readers {} \
             (the smallest depth, then fewest readers, whose median is within the best's spread)",
            result.best_prefetch,
            result.best_readers,
            result.recommended_prefetch,
            result.recommended_readers
        ),
    }
}

/// `arg` with the query string and user info of a URL in it removed (a presigned or SAS
/// signature is a secret, never printed): `URL` or `--flag=URL`.
fn without_secrets(arg: String) -> String {
    use streamfit::data::source::remote::{is_url, redact};
    let (prefix, value) = match arg.split_once('=') {
        Some((name, value)) if name.starts_with("--") => (format!("{name}="), value),
        _ => (String::new(), arg.as_str()),
    };
    if is_url(std::path::Path::new(value)) {
        format!("{prefix}{}", redact(value))
    } else {
        arg
    }
}

/// The `train` command line recommended for the `tune` arguments `args` (without the program
/// name): `tune` becomes `train`, the flags of [`TUNE_ONLY_FLAGS`] are dropped and
/// `--batch-size` is set to the tuned value, and `--prefetch` and `--readers` too when the
/// sweep found a measurable difference (in place when given, in either `--flag value` or
/// `--flag=value` form; appended otherwise). Arguments that need it are shell-quoted, and URLs
/// lose their query strings (a presigned URL's signature is a secret, never printed).
fn recommended_command(args: impl IntoIterator<Item = OsString>, result: &TuneResult) -> String {
    let mut tuned = vec![("--batch-size", result.recommended_batch_size.to_string())];
    if result.sweep_verdict == SweepVerdict::Measurable {
        tuned.push(("--prefetch", result.recommended_prefetch.to_string()));
        tuned.push(("--readers", result.recommended_readers.to_string()));
    }
    let mut set = vec![false; tuned.len()];
    let mut out = vec!["streamfit".to_string()];
    let mut args = args
        .into_iter()
        .map(|a| without_secrets(a.to_string_lossy().into_owned()));
    let mut subcommand_seen = false;
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        if !subcommand_seen && arg == "tune" {
            subcommand_seen = true;
            out.push("train".to_string());
            continue;
        }
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (arg.as_str(), None),
        };
        let name = if name == "-q" { "--quiet" } else { name };
        if let Some(&(_, takes_value)) = TUNE_ONLY_FLAGS.iter().find(|(flag, _)| *flag == name) {
            if takes_value && inline_value.is_none() {
                args.next();
            }
            continue;
        }
        if let Some(i) = tuned.iter().position(|(flag, _)| *flag == name) {
            set[i] = true;
            let value = &tuned[i].1;
            if inline_value.is_some() {
                out.push(format!("{name}={value}"));
            } else {
                out.push(arg.clone());
                args.next();
                out.push(value.clone());
            }
            continue;
        }
        out.push(arg);
    }
    // Appended flags go before a `--`, where they are still flags.
    let end = out.iter().position(|a| a == "--").unwrap_or(out.len());
    let appended: Vec<String> = tuned
        .iter()
        .zip(&set)
        .filter(|(_, given)| !**given)
        .flat_map(|((flag, value), _)| [flag.to_string(), value.clone()])
        .collect();
    out.splice(end..end, appended);
    out.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` as one shell word: unchanged when it has only characters no shell treats specially,
/// else in single quotes (a `'` inside written `'\''`).
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(verdict: SweepVerdict) -> TuneResult {
        TuneResult {
            batch: Vec::new(),
            tau_f: 0.0,
            tau_d: 0.0,
            r_squared: 0.0,
            noise: streamfit::tune::Noise {
                sample_rows: 0,
                trace_sigma: 0.0,
                grad_norm_sq: 0.0,
                b_noise: 0.0,
                variance: Vec::new(),
                slope: 0.0,
                slope_with_replacement: 0.0,
            },
            dataset_rows: 0,
            b_opt: 0.0,
            recommended_batch_size: 32,
            repeats: 3,
            prefetch: Vec::new(),
            sweep_verdict: verdict,
            best_prefetch: 8,
            best_readers: 2,
            recommended_prefetch: 2,
            recommended_readers: 1,
            recommended_memory_bytes: 0,
            flags: String::new(),
        }
    }

    fn command(args: &[&str]) -> String {
        let result = result(SweepVerdict::Measurable);
        recommended_command(args.iter().map(OsString::from), &result)
    }

    #[test]
    fn without_a_measurable_difference_prefetch_and_readers_are_not_set() {
        let result = result(SweepVerdict::NoMeasurableDifference);
        let args = ["tune", "d", "--repeats", "5", "--model", "linear"];
        assert_eq!(
            recommended_command(args.iter().map(OsString::from), &result),
            "streamfit train d --model linear --batch-size 32"
        );
    }

    #[test]
    fn recommended_command_never_shows_a_presigned_query_string() {
        let shown = command(&[
            "tune",
            "https://host/f.parquet?X-Amz-Signature=SECRET",
            "--valid=https://u:p@host/v.parquet?sig=SECRET",
        ]);
        assert!(
            !shown.contains("SECRET") && !shown.contains("u:p"),
            "{shown}"
        );
        assert!(shown.contains("https://host/f.parquet"), "{shown}");
        assert!(shown.contains("--valid=https://host/v.parquet"), "{shown}");
    }

    #[test]
    fn recommended_command_keeps_the_users_flags_and_sets_the_tuned_ones() {
        assert_eq!(
            command(&[
                "tune",
                "data dir",
                "--model",
                "mlp",
                "--hidden=8,4",
                "--budget-seconds",
                "5",
                "--json",
                "-q",
                "--batch-sizes=1,2",
                "--repeats=2",
                "--label",
                "it's",
            ]),
            "streamfit train 'data dir' --model mlp --hidden=8,4 --label 'it'\\''s' \
             --batch-size 32 --prefetch 2 --readers 1"
        );
    }

    #[test]
    fn tuned_flags_given_by_the_user_are_replaced_in_place() {
        assert_eq!(
            command(&["tune", "d", "--batch-size=7", "--prefetch", "9", "--", "-x"]),
            "streamfit train d --batch-size=32 --prefetch 2 --readers 1 -- -x"
        );
    }
}
