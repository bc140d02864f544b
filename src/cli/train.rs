//! `streamfit train`: its flags, how they map onto the library's [`TrainConfig`], and what it
//! prints.
//!
//! The library prepares the run ([`PreparedRun`]: data, classes, standardisation, resume,
//! pipelines, outputs) and trains; this module maps flags, prints the plan and the summary,
//! and sets up what belongs to the process: the progress bar, tracing, the signal handlers and
//! the demo dataset when no DATA is given.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use streamfit::comm::Collective;
use streamfit::config::{OnBadFile, Outputs, Resume, TrainConfig};
use streamfit::data::ColumnSpec;
use streamfit::error::Error;
use streamfit::pipeline::{LastBatch, Shuffle};
use streamfit::run::PreparedRun;
use streamfit::telemetry::Profile;
use streamfit::train::{BatchSize, ClassWeight, Eval, TrainResult, TrainerConfig};

use super::args::{
    ColumnArgs, ModelArgs, OptimizerArgs, ReadArgs, parse_batch_size, standardize_choice,
};
use super::generate::demo_dataset;
use super::logging;
use super::observer::{CliObserver, RowIdLog, print_event};
use super::output::{count, iterations_progress, megabytes, say, thousands};
use super::preprocess::PreprocessArgs;
use super::unused::not_used;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnBadFileArg {
    /// Stop with the file's error
    Error,
    /// Leave the file out, with a warning
    Skip,
}

#[derive(Args, Debug)]
pub(crate) struct TrainArgs {
    /// Parquet files and/or directories of .parquet files with one schema, or one shard dataset directory [default: the demo dataset]
    #[arg(value_name = "DATA")]
    data: Vec<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    optim: OptimizerArgs,
    /// Validation data (Parquet files/directories or a shard dataset with the same columns),
    /// evaluated after every epoch (or every --eval-every iterations): loss and accuracy or
    /// RMSE in the epoch lines, the metrics file and the report; one path per --valid, repeat
    /// it for more
    #[arg(long, value_name = "DATA")]
    valid: Vec<PathBuf>,
    /// Hold out this fraction (0 < F < 1) of the training data's units (row groups, shard
    /// blocks) as validation data: round(F × units), chosen by --seed (not by the reader or
    /// thread count); training never sees them. Instead of --valid
    #[arg(long, value_name = "F", conflicts_with = "valid")]
    valid_fraction: Option<f64>,
    /// Validate on the first N rows (in file order) of the validation data only [default: all]
    #[arg(long, value_name = "N")]
    valid_rows: Option<u64>,
    /// Evaluate the validation data every STEPS iterations (counted over the whole run) and
    /// after the last one, printed as it happens and written to the metrics file, instead of
    /// after every epoch; needs --valid or --valid-fraction
    #[arg(long, value_name = "STEPS")]
    eval_every: Option<u64>,
    /// Stop when the validation loss has not improved for PATIENCE evaluations in a row
    /// (epochs, or evaluations of --eval-every) and keep (save) the best evaluation's model;
    /// needs --valid or --valid-fraction [default: off]
    #[arg(long, value_name = "PATIENCE")]
    early_stop: Option<usize>,
    /// Rows per iteration: a number (1 = SGD) or `full` (batch gradient descent, one update per epoch)
    #[arg(long, default_value = "256", value_parser = parse_batch_size)]
    batch_size: BatchSize,
    /// Drop the last partial batch of each epoch (floor(N/b) iterations instead of ceil)
    #[arg(long)]
    drop_last: bool,
    /// Passes over the data
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Seed of every random choice (unit order, shuffle buffer, initial MLP weights)
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rows held by the shuffle buffer (memory: rows × (4·features + 12) bytes)
    #[arg(long, default_value_t = 65_536, value_name = "ROWS")]
    shuffle_buffer: usize,
    /// Split the shuffle buffer into K independent reservoirs, run on up to K threads (the
    /// batch order depends on K, never on the thread count; 1 keeps the one-buffer order)
    #[arg(long, default_value_t = 1, value_name = "K")]
    shuffle_lanes: usize,
    /// Read units and rows in file order (no shuffling)
    #[arg(long)]
    no_shuffle: bool,
    /// Batches prepared ahead of the trainer
    #[arg(long, default_value_t = 4, value_name = "P")]
    prefetch: usize,
    /// Shrink the shuffle buffer (then the prefetch depth) until the memory budget fits MB
    /// megabytes, and say what was chosen [default: the settings as given; a budget larger than
    /// the memory available (cgroup limit, else physical memory) is refused]
    #[arg(long, value_name = "MB")]
    memory_limit: Option<u64>,
    #[command(flatten)]
    read: ReadArgs,
    /// Threads computing the gradient [default: all cores]
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// After each epoch, also compute the exact full-data loss and accuracy or RMSE at the
    /// epoch's final parameters, in a separate streamed pass that reads the training data a
    /// second time [default: the epoch's running training loss only]
    #[arg(long, conflicts_with = "no_eval")]
    full_loss: bool,
    /// No full-data pass after each epoch: the default now (the epoch's running training loss
    /// costs no pass); accepted so that older command lines still run
    #[arg(long)]
    no_eval: bool,
    /// What to do with a file that cannot be opened (missing, not Parquet, corrupt footer,
    /// encrypted) in a multi-file dataset, or whose data fails while being read: stop
    /// (`error`) or leave it out with a warning, counted in the epoch lines and the report
    /// (`skip`; a file failing mid-epoch is dropped from that point on, its remaining rows
    /// counted as skipped)
    #[arg(long, value_enum, default_value = "error")]
    on_bad_file: OnBadFileArg,
    /// At the end, print per-stage busy time, throughput, the trainer's stall, the prefetch
    /// queue's occupancy and a diagnosis (input- or compute-bound); also in the report
    #[arg(long)]
    profile: bool,
    /// Write a Chrome trace-event file of every stage's spans (open it in ui.perfetto.dev)
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    /// Draw the per-iteration batch loss, its moving average, the per-epoch training loss and
    /// the validation loss into an SVG chart
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Log scale for the loss axis of --plot (as `plot --log-y`)
    #[arg(long, requires = "plot", alias = "plot-log")]
    log_y: bool,
    /// Train on z-scored features (one extra streamed pass computes each feature's mean and
    /// std); the saved model keeps them and applies them itself, so predict and eval take raw
    /// features [default: when the
    /// features' scales are mixed: ranges more than 100 times apart, or a column centred
    /// more than 100 of its ranges from zero, judged from the Parquet footer statistics or
    /// the first row group]
    #[arg(long)]
    standardize: bool,
    /// Train on the raw values even when their scales are mixed
    #[arg(long, conflicts_with = "standardize")]
    no_standardize: bool,
    #[command(flatten)]
    preprocess: PreprocessArgs,
    /// Multiply each row's loss by its value in COLUMN (numeric, cast like a feature; never a
    /// feature itself); a step averages by its weights' sum. A null, NaN, infinite or negative
    /// weight is an error. Validation and eval figures stay unweighted [default: every row 1]
    #[arg(long, value_name = "COLUMN")]
    weight_column: Option<String>,
    /// `balanced`: weight class c by N / (C · n_c) from exact label counts (one more pass;
    /// logistic, softmax, MLP classifiers); multiplies --weight-column
    #[arg(long, value_name = "none|balanced", default_value = "none", value_parser = parse_class_weight)]
    class_weight: ClassWeight,
    /// Print nothing but errors
    #[arg(long, short)]
    quiet: bool,
    /// Write JSON lines: one per iteration and one per epoch
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
    /// Write a JSON report at the end (iterations, loss, rows/s, stall, peak RSS, memory budget;
    /// a local file or an s3://, gs://, az:// URL)
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Save the trained model as JSON (written atomically, only when training succeeds; a local
    /// file or an s3://, gs://, az:// URL)
    #[arg(long, value_name = "FILE")]
    save_model: Option<PathBuf>,
    /// Write crash-safe checkpoints into DIR, a local directory or an object-storage prefix
    /// such as s3://bucket/run1/ (at every epoch end, every --checkpoint-every iterations,
    /// and on Ctrl-C/SIGTERM)
    #[arg(long, value_name = "DIR")]
    checkpoint_dir: Option<PathBuf>,
    /// Also checkpoint every N iterations [default: only at epoch ends]
    #[arg(long, value_name = "N", requires = "checkpoint_dir")]
    checkpoint_every: Option<u64>,
    /// Checkpoints to keep in --checkpoint-dir (older ones are deleted)
    #[arg(long, default_value_t = 2, value_name = "K")]
    keep_checkpoints: usize,
    /// Continue exactly where a run stopped: a checkpoint directory, or `auto` for
    /// --checkpoint-dir (which starts fresh when it holds no checkpoint yet)
    #[arg(long, value_name = "DIR|auto")]
    resume: Option<String>,
    /// Testing aid: write the row ids of every batch this process trains on, one line per
    /// batch, to DIR/rank-R-epoch-E.txt
    #[arg(long, value_name = "DIR", hide = true)]
    debug_row_ids: Option<PathBuf>,
}

impl TrainArgs {
    /// The run's options on `data`.
    fn config(&self, data: Vec<PathBuf>) -> TrainConfig {
        let mut trainer = TrainerConfig {
            init_seed: self.seed,
            early_stop: self.early_stop,
            eval_every: self.eval_every,
            epochs: self.epochs,
            eval: if self.full_loss {
                Eval::EveryEpoch
            } else {
                Eval::Off
            },
            ..TrainerConfig::default()
        };
        if let Some(t) = self.threads {
            trainer.num_threads = t;
        }
        let mut config = TrainConfig {
            data,
            columns: ColumnSpec {
                positive_label: self.preprocess.positive_label.clone(),
                drop_null_labels: self.preprocess.drop_null_labels,
                weight: self.weight_column.as_ref().map(|w| w.trim().to_string()),
                ..self.columns.spec()
            },
            batch_size: self.batch_size,
            last_batch: if self.drop_last {
                LastBatch::Drop
            } else {
                LastBatch::Keep
            },
            shuffle: if self.no_shuffle {
                Shuffle::Off
            } else {
                Shuffle::Seeded(self.seed)
            },
            shuffle_buffer_rows: self.shuffle_buffer,
            shuffle_lanes: self.shuffle_lanes,
            prefetch: self.prefetch,
            num_readers: self.read.readers,
            verify_checksums: self.read.verify_checksums,
            read_mode: self.read.read_mode,
            on_bad_file: match self.on_bad_file {
                OnBadFileArg::Error => OnBadFile::Error,
                OnBadFileArg::Skip => OnBadFile::Skip,
            },
            valid: self.valid.clone(),
            valid_rows: self.valid_rows,
            memory_limit_mb: self.memory_limit,
            valid_fraction: self.valid_fraction,
            standardize: standardize_choice(self.standardize, self.no_standardize),
            fill_nulls: self.preprocess.fill_nulls,
            null_indicators: self.preprocess.null_indicators,
            categorical: self.preprocess.categorical_columns(),
            max_categories: self.preprocess.max_categories,
            hash_buckets: self.preprocess.hash_buckets,
            class_weight: self.class_weight,
            checkpoint_dir: self.checkpoint_dir.clone(),
            checkpoint_every: self.checkpoint_every,
            keep_checkpoints: self.keep_checkpoints,
            resume: self.resume.as_deref().map(|which| match which {
                "auto" => Resume::Auto,
                path => Resume::Path(PathBuf::from(path)),
            }),
            outputs: Outputs {
                save_model: self.save_model.clone(),
                report: self.report.clone(),
                metrics: self.metrics.clone(),
                plot: self.plot.clone(),
                plot_log: self.log_y,
                trace: self.trace.clone(),
                profile: self.profile,
            },
            trainer,
            ..TrainConfig::default()
        };
        self.model.apply(&mut config);
        self.optim.apply(&mut config);
        config
    }
}

/// Runs `streamfit train`.
pub(crate) fn run(args: TrainArgs, comm: &dyn Collective) -> Result<()> {
    if comm.size() > 1 && args.data.is_empty() {
        return Err(Error::config(
            "data",
            "give the data explicitly in a data-parallel run (the demo dataset is not generated under mpirun)",
        )
        .into());
    }
    // Only rank 0 prints (and writes files: the library sees to that).
    let quiet = args.quiet || comm.rank() != 0;
    let data = if args.data.is_empty() {
        vec![demo_dataset(quiet)?]
    } else {
        args.data.clone()
    };
    let mut config = args.config(data);
    let interrupt = Arc::new(AtomicBool::new(false));
    config.trainer.interrupt = Some(interrupt.clone());
    let mut run = PreparedRun::with_events(config, comm, &mut |event| print_event(event, quiet))?;
    let outputs = run.config().outputs.clone();
    let mut tracing = logging::init(outputs.profile, outputs.trace.as_deref())?;
    install_signal_handlers(&interrupt)?;
    if !quiet {
        print_plan(&run, comm);
    }
    let epochs = run.config().trainer.epochs;
    let progress = iterations_progress(run.pipeline().total_steps(epochs as u64), quiet);
    if let Some(checkpoint) = run.resume() {
        progress.set_position(checkpoint.iteration);
        progress.reset_eta();
    }
    let mut observer = CliObserver {
        quiet,
        progress: progress.clone(),
        skipped_files: run.skipped_files().len(),
        epochs,
        row_ids: args
            .debug_row_ids
            .clone()
            .map(|dir| RowIdLog::new(dir, comm.rank())),
    };
    let started = Instant::now();
    let trained = run.train(&mut observer);
    progress.finish_and_clear();
    let result = trained?;
    let profile = tracing
        .profiler
        .take()
        .map(|layer| run.profile(&layer.take(), started.elapsed().as_secs_f64(), &result));
    let report = run.report(&result, profile.clone());
    if !quiet {
        print_outcome(&result, run.config().trainer.eval_every);
    }
    run.write_outputs(&result, &report)?;
    // A trace that could not be written (a full disk) fails the run after its other outputs.
    tracing.finish()?;
    if let Some(profile) = &profile {
        let queue = run.pipeline().config();
        print_profile(profile, queue.queue_groups() * queue.batches_per_group());
    }
    if !quiet {
        say!(
            "done: {} in {:.2} s, {}{} rows/s, stall {:.1}%, peak RSS {}{}",
            count(report.iterations, "iteration"),
            report.seconds,
            report
                .train_loss
                .map_or(String::new(), |l| format!("train loss {l:.6}, ")),
            thousands(report.rows_per_s as u64),
            report.stall_fraction * 100.0,
            report.peak_rss_bytes.map_or("n/a".to_string(), megabytes),
            outputs
                .save_model
                .as_ref()
                .map_or(String::new(), |p| format!(
                    "; model saved to {}",
                    p.display()
                )),
        );
    }
    Ok(())
}

/// Installs the SIGINT/SIGTERM handlers: the first signal sets `interrupt` (training stops at
/// the next step boundary); a second one, with the flag already set, exits at once with 130.
fn install_signal_handlers(interrupt: &Arc<AtomicBool>) -> Result<()> {
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, interrupt.clone())
            .and_then(|_| signal_hook::flag::register(signal, interrupt.clone()))
            .context("installing the signal handlers")?;
    }
    Ok(())
}

/// The lines before training: data, model and loop, ranks, validation, memory budget.
fn print_plan(run: &PreparedRun<'_>, comm: &dyn Collective) {
    let config = run.config();
    let source = run.source();
    let pipeline = run.pipeline();
    let num_rows = source.num_rows();
    say!(
        "data: {} × {} in {}, {}, {} on disk; label `{}`",
        count(num_rows, "row"),
        count(source.num_features() as u64, "feature"),
        count(source.files().len() as u64, "file"),
        count(source.units().len() as u64, "unit"),
        megabytes(source.file_bytes()),
        source.schema().label,
    );
    if let Some(line) = not_used(source.as_ref(), config.columns.weight.as_deref()) {
        say!("{line}");
    }
    if let Some(weight) = &config.trainer.weights.column {
        say!("weights: each row's loss × its `{weight}` (a step averages by the weights' sum)");
    }
    let batch = match config.batch_size {
        BatchSize::Full => format!("full ({} rows)", thousands(num_rows)),
        BatchSize::Rows(b) => thousands(b),
    };
    say!(
        "train: {} model, batch {batch}, {}/epoch, {}, {} lr {}, {}, {}",
        config.trainer.model.describe(),
        count(pipeline.steps_in_epoch(0), "iteration"),
        count(config.trainer.epochs as u64, "epoch"),
        format!("{:?}", config.trainer.optimizer.kind).to_lowercase(),
        config.trainer.optimizer.learning_rate,
        count(config.num_readers as u64, "reader"),
        count(config.trainer.num_threads as u64, "gradient thread"),
    );
    if comm.size() > 1 {
        say!(
            "mpi: {} ranks, each reading 1 in {} units of the plan and up to {} rows of each step (iterations/epoch: the first epoch's largest share)",
            comm.size(),
            comm.size(),
            thousands(pipeline.config().step_rows),
        );
    }
    if let Some(v) = run.valid_source() {
        print_validation(run, v.as_ref());
    }
    say!(
        "memory budget: {} (shuffle buffer {}, prefetch {}, {}{})",
        megabytes(run.memory_budget_bytes()),
        count(run.shuffle_rows(), "row"),
        count(config.prefetch as u64, "batch"),
        count(config.num_readers as u64, "reader"),
        if run.reads_explicitly() {
            "; files read explicitly, pages dropped behind the readers"
        } else {
            ""
        },
    );
}

/// The plan's validation line: where the validation data comes from, how much of it is
/// evaluated, when, and early stopping.
fn print_validation(run: &PreparedRun<'_>, valid: &dyn streamfit::data::source::Source) {
    let config = run.config();
    let from = match &config.trainer.held_out {
        Some(h) => format!(
            "{} of {} units held out of the training data (--valid-fraction {}, seed {}), {} (training on the other {})",
            thousands(h.units.len() as u64),
            thousands(h.total_units),
            h.fraction,
            h.seed,
            count(h.rows, "row"),
            count(run.source().num_rows(), "row"),
        ),
        None => format!(
            "{} in {}",
            count(run.valid_total_rows().unwrap_or(valid.num_rows()), "row"),
            count(valid.files().len() as u64, "file")
        ),
    };
    let part = match config.valid_rows {
        Some(_) => format!(", the first {} validated", count(valid.num_rows(), "row")),
        None => String::new(),
    };
    let when = match config.trainer.eval_every {
        Some(k) => format!(
            "evaluated every {} and after the last",
            count(k, "iteration")
        ),
        None => "evaluated after every epoch".to_string(),
    };
    let unit = if config.trainer.eval_every.is_some() {
        "evaluation"
    } else {
        "epoch"
    };
    say!(
        "valid: {from}{part}, {when}{}",
        config.trainer.early_stop.map_or(String::new(), |p| format!(
            "; early stop after {} without improvement",
            count(p as u64, unit)
        ))
    );
}

/// The lines after training: early stopping and resuming.
fn print_outcome(result: &TrainResult, eval_every: Option<u64>) {
    // Where the kept model was evaluated: an epoch's end, or an iteration of --eval-every.
    let best_at = |epoch: usize| match (eval_every, result.best_iteration) {
        (Some(_), Some(it)) => format!("iteration {} (epoch {epoch})", thousands(it)),
        _ => format!("epoch {epoch}"),
    };
    match (result.stopped_early, result.best_epoch, eval_every) {
        (Some(stopped), Some(best), Some(k)) => {
            let last = result.last_validation.map_or(0, |l| l.iteration);
            let since = last.saturating_sub(result.best_iteration.unwrap_or(0)) / k.max(1);
            say!(
                "early stop: no validation improvement in {} after {}; stopped at iteration {} (epoch {stopped}), keeping the model of {}",
                count(since, "evaluation"),
                best_at(best),
                thousands(last),
                best_at(best),
            );
        }
        (Some(stopped), Some(best), None) => say!(
            "early stop: no validation improvement for {} epoch(s) after epoch {best}; stopped after epoch {stopped}, keeping epoch {best}",
            stopped - best,
        ),
        (None, Some(best), _) => say!(
            "best validation loss at {}; its model is the one kept",
            best_at(best)
        ),
        _ => {}
    }
    if let Some(info) = result.resumed {
        say!(
            "resumed at iteration {} (epoch {}): re-read {} rows to rebuild the shuffle buffer",
            thousands(info.from_iteration),
            info.epoch,
            thousands(info.rows_reread),
        );
    }
}

/// `--profile`'s table and diagnosis.
fn print_profile(profile: &Profile, queue_batches: usize) {
    say!("profile (wall {:.2} s):", profile.wall_seconds);
    say!(
        "  {:<10}  {:<26}  {:>8}  {:>7}  {:>12}  {:>9}",
        "stage",
        "threads",
        "busy s",
        "share",
        "rows/s",
        "MB/s"
    );
    for stage in &profile.stages {
        // A stage that carries no rows (waiting, updating) has no throughput: `-`.
        let (rows_per_s, mb_per_s) = if stage.rows == 0 {
            ("-".to_string(), "-".to_string())
        } else {
            (
                thousands(stage.rows_per_s as u64),
                format!("{:.0}", stage.mb_per_s),
            )
        };
        say!(
            "  {:<10}  {:<26}  {:>8.3}  {:>6.1}%  {:>12}  {:>9}",
            stage.stage,
            stage.threads.join(","),
            stage.busy_seconds,
            stage.share_of_wall * 100.0,
            rows_per_s,
            mb_per_s,
        );
    }
    say!(
        "  trainer stall {:.1}%; prefetch queue (holds {queue_batches} batches): mean {:.1} waiting, full {:.1}% of the time",
        profile.stall_fraction * 100.0,
        profile.queue_mean_occupancy,
        profile.queue_full_fraction * 100.0
    );
    say!("  diagnosis: {}", profile.diagnosis);
}

/// `--class-weight none|balanced`.
fn parse_class_weight(text: &str) -> Result<ClassWeight, String> {
    text.parse::<ClassWeight>()
        .map_err(|e| streamfit::error::render_options(&e.to_string()).into_owned())
}
