//! The command line: flags, human output, output files and exit codes.
//!
//! Layer 4: nothing imports it. Exit codes: 0 success; 1 a failure of the machine (an output
//! file could not be written); 2 bad input or flags (the message names the file, row group,
//! row and column where they apply).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use streamfit::comm::{Collective, SingleProcess};
use streamfit::config::TrainConfig;
use streamfit::convert::{ConvertConfig, convert};
use streamfit::data::source::ColumnRole;
use streamfit::data::source::Source;
use streamfit::data::source::write::Compression;
use streamfit::data::{ColumnSpec, FeatureSelection, RowBlock};
use streamfit::error::Error;
use streamfit::generate::{GenerateConfig, Task, generate};
use streamfit::inspect::{Inspection, dataset_stats, inspect};
use streamfit::model::{Activation, Head, ModelSpec};
use streamfit::optim::{LrSchedule, OptimizerConfig, OptimizerKind};
use streamfit::pipeline::{LastBatch, Pipeline};
use streamfit::plot::LossCurves;
use streamfit::predict::{ApplyConfig, evaluate_model, predict};
use streamfit::telemetry::{Profile, ProfileLayer, peak_rss_bytes};
use streamfit::train::{
    BatchSize, Checkpoint, CheckpointConfig, EpochSummary, Eval, MetricsWriter, ModelFile, Report,
    SavedOptimizer, SkippedFile, Standardization, StepRecord, TrainObserver, TrainerConfig,
    eval_config, train_ranks,
};
use streamfit::tune::{TuneConfig, tune};
use tracing_chrome::ChromeLayerBuilder;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// `println!` that ends the process quietly when stdout is a closed pipe (`streamfit ... | head`),
/// as a command-line tool killed by SIGPIPE would (exit code 141), instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        write_stdout(format_args!($($arg)*))
    };
}

fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Mini-batch gradient descent on Parquet datasets larger than RAM, with bounded memory.
#[derive(Parser, Debug)]
#[command(name = "streamfit", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a linear, logistic, softmax or MLP model by mini-batch gradient descent,
    /// streaming the data.
    ///
    /// With no DATA, trains on a synthetic demo dataset (1M rows × 64 features, ~260 MB of
    /// Parquet in 4 shards) generated once under target/streamfit-demo/.
    Train(Box<TrainArgs>),
    /// Write a synthetic dataset (Parquet shards plus truth.json) with a known true model.
    Generate(GenerateArgs),
    /// Read and decode the data with the training readers, without training: the read ceiling.
    Scan(ScanArgs),
    /// Convert Parquet into streamfit shards: a memory-mapped, zero-decode format for
    /// repeated training. Each row group becomes one unit, so training on the shards gives the
    /// same batches and parameters as training on the Parquet source with the same seed.
    Convert(ConvertArgs),
    /// Show what is in a dataset and what training would use: columns with their stored and
    /// cast types and roles, rows, units, codecs, bytes per row and the memory budget for the
    /// given training flags; with --stats, per-column statistics from one streamed pass.
    Inspect(InspectArgs),
    /// Measure time per iteration, gradient noise and prefetch/reader throughput on DATA,
    /// then recommend a batch size and prefetch depth (see docs/tuning.md)
    Tune(TuneArgs),
    /// Draw the loss curves of a `--metrics` file as an SVG chart.
    Plot(PlotArgs),
    /// Stream DATA through a saved model and write one prediction per row, in input order,
    /// as Parquet (bounded memory).
    Predict(PredictArgs),
    /// Print a saved model's loss and accuracy (classification) or RMSE (regression) on DATA.
    Eval(EvalArgs),
}

#[derive(Args, Debug)]
struct PlotArgs {
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

#[derive(Args, Debug, Clone)]
struct ColumnArgs {
    /// Feature columns, comma-separated [default: every numeric or boolean column except the label]
    #[arg(long, value_delimiter = ',', conflicts_with = "features_column")]
    features: Option<Vec<String>>,
    /// One FixedSizeList/List column of floats that holds all features of a row
    #[arg(long, value_name = "NAME")]
    features_column: Option<String>,
    /// Label (target) column
    #[arg(long, default_value = "label", value_name = "NAME")]
    label: String,
}

impl ColumnArgs {
    fn spec(&self) -> ColumnSpec {
        let features = match (&self.features, &self.features_column) {
            (Some(cols), _) => FeatureSelection::Columns(cols.clone()),
            (None, Some(col)) => FeatureSelection::ListColumn(col.clone()),
            (None, None) => FeatureSelection::AllNumeric,
        };
        ColumnSpec {
            features,
            label: self.label.clone(),
            ignore_label: false,
        }
    }
}

/// How the data is read (train, scan, inspect).
#[derive(Args, Debug, Clone, Copy)]
struct ReadArgs {
    /// Reader (decoder) threads
    #[arg(long, default_value_t = 2, value_name = "R")]
    readers: usize,
    /// Check each block of shard rows against its CRC32C on first read (shard datasets only)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    verify_checksums: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnBadFile {
    /// Stop with the file's error
    Error,
    /// Leave the file out, with a warning
    Skip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelArg {
    /// Linear regression, mean squared error
    Linear,
    /// Logistic regression, binary cross-entropy (labels 0/1)
    Logistic,
    /// Multiclass logistic regression, softmax cross-entropy (labels 0..K-1)
    Softmax,
    /// Multilayer perceptron (--hidden, --activation, --task)
    Mlp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum HeadArg {
    /// One value, mean squared error
    Regression,
    /// Labels 0/1, binary cross-entropy
    Binary,
    /// Labels 0..K-1, softmax cross-entropy (--classes)
    Multiclass,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ActivationArg {
    Relu,
    Tanh,
}

/// Which model (train, tune).
#[derive(Args, Debug, Clone)]
struct ModelArgs {
    /// Model to train
    #[arg(long, value_enum, default_value = "logistic")]
    model: ModelArg,
    /// Classes K of `--model softmax` or `--task multiclass` [default: the largest label + 1,
    /// found by one streamed pass over the labels]
    #[arg(long, value_name = "K")]
    classes: Option<usize>,
    /// Hidden-layer widths of `--model mlp`, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "64",
        value_name = "W,W.."
    )]
    hidden: Vec<usize>,
    /// Hidden-layer activation of `--model mlp` (ReLU gets He init, tanh Xavier init)
    #[arg(long, value_enum, default_value = "relu")]
    activation: ActivationArg,
    /// Output head of `--model mlp`
    #[arg(long, value_enum, default_value = "binary")]
    task: HeadArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OptimizerArg {
    /// p -= lr·g
    Sgd,
    /// Heavy-ball momentum (--momentum)
    Momentum,
    /// Nesterov momentum (--momentum)
    Nesterov,
    /// Adam (--beta1, --beta2, --eps), weight decay as L2
    Adam,
    /// Adam with decoupled weight decay
    Adamw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScheduleArg {
    /// The base rate throughout
    Constant,
    /// Multiply by --lr-gamma every --lr-step-size iterations
    Step,
    /// Cosine from the base rate to 0 over the run
    Cosine,
}

/// The optimizer (train).
#[derive(Args, Debug, Clone)]
struct OptimizerArgs {
    /// Update rule
    #[arg(long, value_enum, default_value = "sgd")]
    optimizer: OptimizerArg,
    /// Base learning rate (Adam usually wants 0.001-0.01)
    #[arg(long, default_value_t = 0.1)]
    lr: f32,
    /// Momentum μ of momentum and nesterov
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// β1 of adam/adamw
    #[arg(long, default_value_t = 0.9)]
    beta1: f32,
    /// β2 of adam/adamw
    #[arg(long, default_value_t = 0.999)]
    beta2: f32,
    /// ε of adam/adamw
    #[arg(long, default_value_t = 1e-8)]
    eps: f32,
    /// Weight decay λ on the weights (not biases): L2 (λ/2·‖w‖² added to the loss) for sgd,
    /// momentum, nesterov and adam; decoupled for adamw
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Learning-rate schedule after the warm-up
    #[arg(long, value_enum, default_value = "constant")]
    lr_schedule: ScheduleArg,
    /// Iterations between decays of `--lr-schedule step` [default: one epoch]
    #[arg(long, value_name = "STEPS")]
    lr_step_size: Option<u64>,
    /// Factor of each decay of `--lr-schedule step`
    #[arg(long, default_value_t = 0.1)]
    lr_gamma: f32,
    /// Iterations of linear warm-up from lr/N to lr
    #[arg(long, default_value_t = 0, value_name = "N")]
    warmup_steps: u64,
    /// Scale the gradient down to this norm when it is larger [default: no clipping]
    #[arg(long, value_name = "C")]
    clip_grad_norm: Option<f32>,
}

impl OptimizerArgs {
    fn config(&self, steps_per_epoch: u64) -> OptimizerConfig {
        OptimizerConfig {
            kind: match self.optimizer {
                OptimizerArg::Sgd => OptimizerKind::Sgd,
                OptimizerArg::Momentum => OptimizerKind::Momentum,
                OptimizerArg::Nesterov => OptimizerKind::Nesterov,
                OptimizerArg::Adam => OptimizerKind::Adam,
                OptimizerArg::Adamw => OptimizerKind::AdamW,
            },
            learning_rate: self.lr,
            momentum: self.momentum,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            schedule: match self.lr_schedule {
                ScheduleArg::Constant => LrSchedule::Constant,
                ScheduleArg::Step => LrSchedule::Step {
                    every: self.lr_step_size.unwrap_or(steps_per_epoch.max(1)),
                    gamma: self.lr_gamma,
                },
                ScheduleArg::Cosine => LrSchedule::Cosine,
            },
            warmup_steps: self.warmup_steps,
            clip_grad_norm: self.clip_grad_norm,
        }
    }
}

impl ModelArgs {
    /// The model on `source`; K, when not given, is the largest label + 1 (one streamed pass).
    fn spec(&self, source: &Arc<dyn Source>, readers: usize, quiet: bool) -> Result<ModelSpec> {
        let multiclass = self.model == ModelArg::Softmax
            || (self.model == ModelArg::Mlp && self.task == HeadArg::Multiclass);
        let classes = match (multiclass, self.classes) {
            (false, _) => 0,
            (true, Some(k)) => k,
            (true, None) => {
                let started = Instant::now();
                let stats = dataset_stats(source.clone(), readers)?;
                let max = stats.label.max;
                if !(max.is_finite() && max >= 0.0 && max.fract() == 0.0 && max < 1e6) {
                    return Err(Error::config(
                        "classes",
                        format!(
                            "the largest label is {max}, not a class id; multiclass labels are 0..K-1"
                        ),
                    )
                    .into());
                }
                let k = max as usize + 1;
                if !quiet {
                    say!(
                        "classes: {k} (largest label {max} over {} rows, {:.2} s)",
                        thousands(stats.rows),
                        started.elapsed().as_secs_f64()
                    );
                }
                k
            }
        };
        Ok(match self.model {
            ModelArg::Linear => ModelSpec::linear(),
            ModelArg::Logistic => ModelSpec::logistic(),
            ModelArg::Softmax => ModelSpec::softmax(classes),
            ModelArg::Mlp => ModelSpec::mlp(
                self.hidden.clone(),
                match self.activation {
                    ActivationArg::Relu => Activation::Relu,
                    ActivationArg::Tanh => Activation::Tanh,
                },
                match self.task {
                    HeadArg::Regression => Head::Regression,
                    HeadArg::Binary => Head::Binary,
                    HeadArg::Multiclass => Head::Multiclass(classes),
                },
            ),
        })
    }
}

#[derive(Args, Debug)]
struct TrainArgs {
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
    /// evaluated after every epoch: loss and accuracy or RMSE in the epoch lines, the metrics
    /// file and the report
    #[arg(long, value_name = "DATA", num_args = 1..)]
    valid: Vec<PathBuf>,
    /// Stop when the validation loss has not improved for PATIENCE epochs and keep (save) the
    /// best epoch's model; needs --valid [default: off]
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
    /// Read units and rows in file order (no shuffling)
    #[arg(long)]
    no_shuffle: bool,
    /// Batches prepared ahead of the trainer
    #[arg(long, default_value_t = 4, value_name = "P")]
    prefetch: usize,
    #[command(flatten)]
    read: ReadArgs,
    /// Threads computing the gradient [default: all cores]
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Skip the full-data loss pass after each epoch
    #[arg(long)]
    no_eval: bool,
    /// What to do with a Parquet file that cannot be opened (missing, not Parquet, corrupt
    /// footer, encrypted) in a multi-file dataset: stop (`error`) or leave it out with a
    /// warning, counted in the epoch lines and the report (`skip`)
    #[arg(long, value_enum, default_value = "error")]
    on_bad_file: OnBadFile,
    /// At the end, print per-stage busy time, throughput, the trainer's stall, the prefetch
    /// queue's occupancy and a diagnosis (input- or compute-bound); also in the report
    #[arg(long)]
    profile: bool,
    /// Write a Chrome trace-event file of every stage's spans (open it in ui.perfetto.dev)
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    /// Draw the per-iteration batch loss and the per-epoch full-data loss into an SVG chart
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Use a log scale for the loss axis of --plot
    #[arg(long, requires = "plot")]
    plot_log: bool,
    /// Train on z-scored features (one extra streamed pass computes each feature's mean and
    /// std); the saved model is folded back to take raw features
    #[arg(long)]
    standardize: bool,
    /// Print nothing but errors
    #[arg(long, short)]
    quiet: bool,
    /// Write JSON lines: one per iteration and one per epoch
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
    /// Write a JSON report at the end (iterations, loss, rows/s, stall, peak RSS, memory budget)
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Save the trained model as JSON (written atomically, only when training succeeds)
    #[arg(long, value_name = "FILE")]
    save_model: Option<PathBuf>,
    /// Write crash-safe checkpoints into DIR (at every epoch end, every --checkpoint-every
    /// iterations, and on Ctrl-C/SIGTERM)
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

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TaskArg {
    /// x·w+b+noise
    Linear,
    /// 0/1 from σ(x·w+b)
    Logistic,
    /// Class ids 0..K-1 from softmax(W·x+b) (--classes)
    Multiclass,
    /// 0/1: inside the circle f0²+f1² < 2·ln 2 (not linearly separable)
    Circles,
    /// 0/1: f0 and f1 have different signs (not linearly separable)
    Xor,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CompressionArg {
    None,
    Snappy,
    Zstd,
    Lz4,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Kind of label
    #[arg(long, value_enum, default_value = "logistic")]
    task: TaskArg,
    /// Classes K of `--task multiclass`
    #[arg(long, default_value_t = 10, value_name = "K")]
    classes: usize,
    /// Total rows
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Feature columns f0..f{D-1}
    #[arg(long, default_value_t = 64)]
    features: usize,
    /// Number of Parquet files
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Rows per row group
    #[arg(long, default_value_t = 65_536)]
    row_group_rows: usize,
    /// Page compression
    #[arg(long, value_enum, default_value = "snappy")]
    compression: CompressionArg,
    /// Seed of every random draw
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print nothing but errors
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// Saved model (`train --save-model`)
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Parquet files and/or directories of .parquet files, or one shard dataset directory; the
    /// label column may be absent
    #[arg(value_name = "DATA", required = true)]
    data: Vec<PathBuf>,
    /// Output Parquet file: `prediction` (regression), `probability` and `class` (binary), or
    /// `class`, `probability` and `probabilities` (multiclass), one row per input row in input
    /// order, then the --keep columns (written atomically)
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
struct EvalArgs {
    /// Saved model (`train --save-model`)
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Labelled Parquet files and/or directories of .parquet files, or one shard dataset
    #[arg(value_name = "DATA", required = true)]
    data: Vec<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
    /// Print one JSON object: loss, accuracy or rmse, rows
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ScanArgs {
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

#[derive(Args, Debug)]
struct ConvertArgs {
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

#[derive(Args, Debug)]
struct TuneArgs {
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

#[derive(Args, Debug)]
struct InspectArgs {
    /// Parquet files and/or directories of .parquet files, or one shard dataset directory
    #[arg(value_name = "DATA", required = true)]
    data: Vec<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Also stream every used column once: count, mean, std, min, max, nulls, non-finite
    /// values. Exits with code 2 after printing when a used column holds a null or NaN/inf
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

fn parse_batch_size(s: &str) -> Result<BatchSize, String> {
    if s.eq_ignore_ascii_case("full") {
        return Ok(BatchSize::Full);
    }
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1, or `full`".to_string()),
        Ok(b) => Ok(BatchSize::Rows(b)),
        Err(_) => Err(format!("`{s}` is not a number of rows or `full`")),
    }
}

/// Parses the arguments, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    streamfit::error::set_option_style(streamfit::error::OptionStyle::Flag);
    let cli = Cli::parse();
    #[cfg(feature = "mpi")]
    let mpi = streamfit::comm::mpi_world();
    #[cfg(feature = "mpi")]
    let comm: &dyn Collective = match &mpi {
        Some(world) => world,
        None => &SingleProcess,
    };
    #[cfg(not(feature = "mpi"))]
    let comm: &dyn Collective = &SingleProcess;
    if !cfg!(feature = "mpi") && streamfit::comm::launched_by_mpi() {
        eprintln!(
            "warning: started by an MPI launcher, but this streamfit runs as a single process (build it with `--features mpi` for data-parallel training)"
        );
    }
    match run(cli, comm) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e
                .chain()
                .find_map(|c| c.downcast_ref::<Error>())
                .is_some_and(|e| matches!(e, Error::Interrupted { .. }))
            {
                130
            } else if e
                .chain()
                .find_map(|c| c.downcast_ref::<Error>())
                .is_some_and(Error::is_input_error)
            {
                2
            } else {
                1
            };
            if comm.size() > 1 && code == 130 {
                // Every rank stopped at the same step (the signal is agreed on collectively)
                // and rank 0 wrote the checkpoint: end normally.
                if comm.rank() == 0 {
                    eprintln!("error: {e:#}");
                }
            } else if comm.size() > 1 {
                // The other ranks may be waiting in a collective: end the whole job.
                eprintln!("error: rank {} of {}: {e:#}", comm.rank(), comm.size());
                comm.abort(code);
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code as u8)
        }
    }
}

fn run(cli: Cli, comm: &dyn Collective) -> Result<()> {
    if comm.size() > 1 && !matches!(cli.command, Command::Train(_)) {
        return Err(Error::config(
            "mpirun",
            "only `train` runs data-parallel; run the other commands without mpirun",
        )
        .into());
    }
    match cli.command {
        Command::Train(args) => run_train(*args, comm),
        Command::Generate(args) => run_generate(args),
        Command::Scan(args) => run_scan(args),
        Command::Convert(args) => run_convert(args),
        Command::Inspect(args) => run_inspect(args),
        Command::Tune(args) => run_tune(args),
        Command::Plot(args) => {
            check_output_dir(&args.out)?;
            LossCurves::from_metrics(&args.metrics)?.draw(&args.out, args.log_y)?;
            say!("plot: wrote {}", args.out.display());
            Ok(())
        }
        Command::Predict(args) => run_predict(args),
        Command::Eval(args) => run_eval(args),
    }
}

fn apply_config(model: &Path, data: &[PathBuf], read: ReadArgs) -> ApplyConfig {
    ApplyConfig {
        model: model.to_path_buf(),
        data: data.to_vec(),
        num_readers: read.readers,
        verify_checksums: read.verify_checksums,
        num_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

fn run_predict(args: PredictArgs) -> Result<()> {
    check_output_dir(&args.out)?;
    let config = apply_config(&args.model, &args.data, args.read);
    let started = Instant::now();
    let progress = rows_progress(None, "predicted");
    if args.quiet {
        progress.set_draw_target(ProgressDrawTarget::hidden());
    }
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

fn run_eval(args: EvalArgs) -> Result<()> {
    let config = apply_config(&args.model, &args.data, args.read);
    let (metrics, rows) = evaluate_model(&config)?;
    if args.json {
        let mut value = serde_json::to_value(metrics).context("serialising the metrics")?;
        value["rows"] = rows.into();
        say!(
            "{}",
            serde_json::to_string_pretty(&value).context("serialising the metrics")?
        );
        return Ok(());
    }
    let mut line = format!("eval: {} rows, loss {:.6}", thousands(rows), metrics.loss);
    if let Some(a) = metrics.accuracy {
        line.push_str(&format!(", accuracy {:.4}", a));
    }
    if let Some(r) = metrics.rmse {
        line.push_str(&format!(", RMSE {r:.6}"));
    }
    say!("{line}");
    Ok(())
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    let config = GenerateConfig {
        task: match args.task {
            TaskArg::Linear => Task::Linear,
            TaskArg::Logistic => Task::Logistic,
            TaskArg::Multiclass => Task::Multiclass,
            TaskArg::Circles => Task::Circles,
            TaskArg::Xor => Task::Xor,
        },
        classes: args.classes,
        rows: args.rows,
        features: args.features,
        shards: args.shards,
        row_group_rows: args.row_group_rows,
        compression: match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Lz4 => Compression::Lz4,
        },
        seed: args.seed,
        out: args.out,
        ..GenerateConfig::default()
    };
    run_generate_config(&config, args.quiet)
}

fn run_generate_config(config: &GenerateConfig, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let total = config.rows;
    let progress = Progress::new(quiet);
    generate(config, &|rows| progress.update(rows, total))?;
    progress.clear();
    let bytes = dir_bytes(&config.out);
    let secs = started.elapsed().as_secs_f64();
    if !quiet {
        say!(
            "wrote {} rows × {} features to {} in {} file(s): {} in {:.1} s ({:.0} MB/s)",
            thousands(config.rows),
            config.features,
            config.out.display(),
            config.shards,
            megabytes(bytes),
            secs,
            bytes as f64 / 1e6 / secs.max(1e-9),
        );
    }
    Ok(())
}

/// The demo dataset of `train` without DATA, generated once.
fn demo_dataset(quiet: bool) -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("streamfit-demo");
    if dir.join("truth.json").is_file() {
        return Ok(dir);
    }
    let partial = target.join("streamfit-demo.partial");
    let _ = std::fs::remove_dir_all(&partial);
    if !quiet {
        say!(
            "no DATA given: generating the demo dataset (1,000,000 rows × 64 features, logistic) in {}",
            dir.display()
        );
    }
    let config = GenerateConfig {
        out: partial.clone(),
        ..GenerateConfig::default()
    };
    let started = Instant::now();
    run_generate_config(&config, true)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir)
        .with_context(|| format!("cannot move {} to {}", partial.display(), dir.display()))?;
    if !quiet {
        say!(
            "wrote the demo dataset to {} in {:.1} s",
            dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(dir)
}

fn run_train(mut args: TrainArgs, comm: &dyn Collective) -> Result<()> {
    if comm.size() > 1 {
        if args.data.is_empty() {
            return Err(Error::config(
                "data",
                "give the data explicitly in a data-parallel run (the demo dataset is not generated under mpirun)",
            )
            .into());
        }
        if comm.rank() != 0 {
            // Only rank 0 prints and writes files.
            args.quiet = true;
            args.metrics = None;
            args.report = None;
            args.save_model = None;
            args.plot = None;
            args.trace = None;
            args.profile = false;
        }
    }
    let data = if args.data.is_empty() {
        vec![demo_dataset(args.quiet)?]
    } else {
        args.data.clone()
    };
    let mut trainer = TrainerConfig {
        optimizer: args.optim.config(1),
        init_seed: args.seed,
        early_stop: args.early_stop,
        epochs: args.epochs,
        eval: if args.no_eval {
            Eval::Off
        } else {
            Eval::EveryEpoch
        },
        ..TrainerConfig::default()
    };
    if let Some(t) = args.threads {
        trainer.num_threads = t;
    }
    let mut config = TrainConfig {
        data,
        columns: args.columns.spec(),
        batch_size: args.batch_size,
        last_batch: if args.drop_last {
            LastBatch::Drop
        } else {
            LastBatch::Keep
        },
        seed: args.seed,
        shuffle: !args.no_shuffle,
        shuffle_buffer_rows: args.shuffle_buffer,
        prefetch: args.prefetch,
        num_readers: args.read.readers,
        verify_checksums: args.read.verify_checksums,
        skip_bad_files: args.on_bad_file == OnBadFile::Skip,
        valid: args.valid.clone(),
        rank: comm.rank(),
        world: comm.size(),
        trainer,
    };
    config.check()?;
    let (source, skipped) = config.open_source_skipping()?;
    config.trainer.model = args.model.spec(&source, config.num_readers, args.quiet)?;
    config.check()?;
    let valid_source = config.open_valid()?;
    for (path, error) in &skipped {
        eprintln!(
            "warning: skipping unreadable file {}: {error}",
            path.display()
        );
    }
    let num_rows = source.num_rows();
    let d = source.num_features();
    let pipeline_config = config.pipeline_config(num_rows);
    let budget = config.memory_budget_bytes(&source);
    if args.standardize {
        let started = Instant::now();
        let stats = dataset_stats(source.clone(), config.num_readers)?;
        config.trainer.standardize = Some(Standardization::from_stats(&stats));
        if !args.quiet {
            say!(
                "standardize: mean and std of {} features over {} rows in {:.2} s",
                d,
                thousands(stats.rows),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if args.checkpoint_every == Some(0) {
        return Err(Error::config("checkpoint_every", "must be at least 1").into());
    }
    if args.keep_checkpoints == 0 {
        return Err(Error::config("keep_checkpoints", "must be at least 1").into());
    }
    config.trainer.checkpoint = args.checkpoint_dir.clone().map(|dir| CheckpointConfig {
        dir,
        every_steps: args.checkpoint_every,
        keep: args.keep_checkpoints,
    });
    if let (Some(dir), None) = (&args.checkpoint_dir, &args.resume)
        && Checkpoint::exists_in(dir)
    {
        return Err(Error::config(
            "checkpoint_dir",
            format!(
                "{} already holds checkpoints; continue that run with --resume auto, or use an empty directory",
                dir.display()
            ),
        )
        .into());
    }
    if let Some(which) = &args.resume {
        let dir = match (which.as_str(), &args.checkpoint_dir) {
            ("auto", Some(dir)) => dir.clone(),
            ("auto", None) => {
                return Err(Error::config("resume", "`auto` needs --checkpoint-dir").into());
            }
            (path, _) => PathBuf::from(path),
        };
        let fresh_auto = which == "auto" && !Checkpoint::exists_in(&dir);
        if !fresh_auto {
            let (checkpoint, path, warnings) = Checkpoint::load_latest(&dir)?;
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            // Newer files were skipped as corrupt: set them aside so they neither count
            // towards --keep-checkpoints nor shadow the checkpoints this run writes (rank 0
            // does it in a data-parallel run; it alone writes checkpoints).
            let newer = if comm.rank() == 0 {
                Checkpoint::newer_than(&dir, checkpoint.iteration)?
            } else {
                Vec::new()
            };
            for newer in newer {
                let aside = newer.with_extension("sfck.corrupt");
                if std::fs::rename(&newer, &aside).is_ok() {
                    eprintln!("warning: moved {} to {}", newer.display(), aside.display());
                }
            }
            if !args.quiet {
                say!(
                    "resume: {} (iteration {}, epoch {})",
                    path.display(),
                    thousands(checkpoint.iteration),
                    checkpoint.next_epoch + 1
                );
            }
            config.trainer.resume = Some(Box::new(checkpoint));
        }
    }
    let profiler = args.profile.then(ProfileLayer::new);
    let (chrome, _trace_guard) = match &args.trace {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| Error::output(path, e))?;
            let (layer, guard) = ChromeLayerBuilder::new()
                .writer(file)
                .include_args(true)
                .include_locations(false)
                .build();
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let log_filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(log_filter),
        )
        .with(profiler.clone())
        .with(chrome)
        .try_init();
    let interrupt = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal sets the flag (training stops at the next step boundary); a second
        // one, with the flag already set, exits at once with code 130.
        signal_hook::flag::register_conditional_shutdown(signal, 130, interrupt.clone())
            .and_then(|_| signal_hook::flag::register(signal, interrupt.clone()))
            .context("installing the signal handlers")?;
    }
    config.trainer.interrupt = Some(interrupt);
    let pipeline = Pipeline::new(source.clone(), pipeline_config);
    config.trainer.optimizer = args.optim.config(pipeline.steps_in_epoch(0));
    let valid_pipeline = valid_source
        .as_ref()
        .map(|v| Pipeline::new(v.clone(), eval_config(pipeline.config(), v)));
    if pipeline.steps_per_epoch() == 0 {
        return Err(Error::config(
            "batch_size",
            format!(
                "with --drop-last, a batch of {} rows leaves no full batch in {num_rows} rows",
                pipeline.config().step_rows
            ),
        )
        .into());
    }
    // Fail on an unwritable output before training, not after.
    for path in [&args.report, &args.save_model, &args.plot]
        .into_iter()
        .flatten()
    {
        check_output_dir(path)?;
    }
    let mut metrics = args
        .metrics
        .as_deref()
        .map(MetricsWriter::create)
        .transpose()?;
    let quiet = args.quiet;
    if !quiet {
        say!(
            "data: {} rows × {} features in {} file(s), {} units, {} on disk; label `{}`",
            thousands(num_rows),
            d,
            source.files().len(),
            source.units().len(),
            megabytes(source.file_bytes()),
            source.schema().label,
        );
        let batch = match config.batch_size {
            BatchSize::Full => format!("full ({} rows)", thousands(num_rows)),
            BatchSize::Rows(b) => thousands(b),
        };
        say!(
            "train: {} model, batch {batch}, {} iterations/epoch, {} epoch(s), {} lr {}, {} reader(s), {} gradient thread(s)",
            config.trainer.model.describe(),
            thousands(pipeline.steps_in_epoch(0)),
            config.trainer.epochs,
            format!("{:?}", config.trainer.optimizer.kind).to_lowercase(),
            config.trainer.optimizer.learning_rate,
            config.num_readers,
            config.trainer.num_threads,
        );
        if comm.size() > 1 {
            say!(
                "mpi: {} ranks, each reading 1 in {} units of the plan and up to {} rows of each step (iterations/epoch: the first epoch's largest share)",
                comm.size(),
                comm.size(),
                thousands(pipeline.config().step_rows),
            );
        }
        if let Some(v) = &valid_source {
            say!(
                "valid: {} rows in {} file(s), evaluated after every epoch{}",
                thousands(v.num_rows()),
                v.files().len(),
                config.trainer.early_stop.map_or(String::new(), |p| format!(
                    "; early stop after {p} epoch(s) without improvement"
                ))
            );
        }
        say!(
            "memory budget: {} (shuffle buffer {} rows, prefetch {} batches, {} readers)",
            megabytes(budget),
            thousands(if config.shuffle {
                config.shuffle_buffer_rows.min(num_rows as usize) as u64
            } else {
                0
            }),
            config.prefetch,
            config.num_readers,
        );
    }
    let total_steps = pipeline.total_steps(config.trainer.epochs);
    let progress = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(total_steps), ProgressDrawTarget::stderr())
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:30} {human_pos}/{human_len} iterations, {per_sec}, ETA {eta} {msg}",
        )
        .expect("a valid template"),
    );
    if let Some(checkpoint) = &config.trainer.resume {
        progress.set_position(checkpoint.iteration);
        progress.reset_eta();
    }
    let mut observer = CliObserver {
        curves: args.plot.as_ref().map(|_| LossCurves::default()),
        quiet,
        progress: progress.clone(),
        skipped_files: skipped.len(),
        epochs: config.trainer.epochs,
        metrics: metrics.as_mut(),
        row_ids: args
            .debug_row_ids
            .clone()
            .map(|dir| RowIdLog::new(dir, comm.rank())),
    };
    let started = Instant::now();
    let trained = train_ranks(
        &pipeline,
        valid_pipeline.as_ref(),
        &config.trainer,
        &mut observer,
        comm,
    );
    progress.finish_and_clear();
    let observer_curves = observer.curves.take();
    let result = trained?;
    let profile = profiler.map(|layer| {
        let epochs = &result.epochs;
        let asks: f64 = epochs
            .iter()
            .map(|e| e.iterations as f64)
            .sum::<f64>()
            .max(1.0);
        let weighted = |f: fn(&EpochSummary) -> f64| {
            epochs
                .iter()
                .map(|e| f(e) * e.iterations as f64)
                .sum::<f64>()
                / asks
        };
        Profile::build(
            &layer.take(),
            started.elapsed().as_secs_f64(),
            4 * (d as u64 + 1),
            result.stall_fraction(),
            weighted(|e| e.queue_occupancy),
            weighted(|e| e.queue_full_fraction),
        )
    });
    let last = result.epochs.last();
    let report = Report {
        model: config.trainer.model.kind,
        final_accuracy: last.and_then(|e| e.accuracy),
        final_rmse: last.and_then(|e| e.rmse),
        final_valid: last.and_then(|e| e.valid),
        best_epoch: result.best_epoch,
        stopped_early: result.stopped_early,
        optimizer: Some(config.trainer.optimizer.clone()),
        ranks: (comm.size() > 1).then_some(comm.size()),
        rows: num_rows,
        num_features: d,
        batch_size: pipeline.config().step_rows * comm.size() as u64,
        epochs: result.epochs.len(),
        iterations: result.iterations(),
        iterations_per_epoch: result.iterations_per_epoch,
        rows_per_epoch: result.rows_per_epoch,
        final_loss: result.final_loss(),
        seconds: result.seconds,
        rows_per_s: result.rows_per_s(),
        stall_fraction: result.stall_fraction(),
        peak_rss_bytes: peak_rss_bytes(),
        memory_budget_bytes: budget,
        epoch_summaries: result.epochs.clone(),
        resumed: result.resumed,
        profile: profile.clone(),
        skipped_files: skipped
            .iter()
            .map(|(path, error)| SkippedFile {
                path: path.clone(),
                error: error.clone(),
            })
            .collect(),
    };
    if let (Some(stopped), Some(best), false) = (result.stopped_early, result.best_epoch, quiet) {
        say!(
            "early stop: no validation improvement for {} epoch(s) after epoch {best}; stopped after epoch {stopped}, keeping epoch {best}",
            stopped - best,
        );
    } else if let (Some(best), false) = (result.best_epoch, quiet) {
        say!("best validation loss at epoch {best}; its model is the one kept");
    }
    if let (Some(info), false) = (result.resumed, quiet) {
        say!(
            "resumed at iteration {} (epoch {}): re-read {} rows to rebuild the shuffle buffer",
            thousands(info.from_iteration),
            info.epoch,
            thousands(info.rows_reread),
        );
    }
    if let Some(path) = &args.save_model {
        ModelFile {
            standardization: config.trainer.standardize.clone(),
            optimizer: Some(SavedOptimizer {
                config: config.trainer.optimizer.clone(),
                state: result.optimizer_state.clone(),
            }),
            ..ModelFile::new(
                &config.trainer.model,
                source.schema().feature_names.clone(),
                source.schema().label.clone(),
                &result.params,
            )
        }
        .save(path)?;
    }
    if let Some(path) = &args.report {
        report.save(path)?;
    }
    if let (Some(path), Some(curves)) = (&args.plot, observer_curves) {
        curves.draw(path, args.plot_log)?;
    }
    if let Some(profile) = &profile {
        let queue_batches =
            pipeline.config().queue_groups() * pipeline.config().batches_per_group();
        print_profile(profile, queue_batches);
    }
    if !quiet {
        say!(
            "done: {} iterations in {:.2} s, {} rows/s, stall {:.1}%, peak RSS {}{}",
            thousands(report.iterations),
            report.seconds,
            thousands(report.rows_per_s as u64),
            report.stall_fraction * 100.0,
            report.peak_rss_bytes.map_or("n/a".to_string(), megabytes),
            args.save_model.as_ref().map_or(String::new(), |p| format!(
                "; model saved to {}",
                p.display()
            )),
        );
    }
    Ok(())
}

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
        say!(
            "  {:<10}  {:<26}  {:>8.3}  {:>6.1}%  {:>12}  {:>9.0}",
            stage.stage,
            stage.threads.join(","),
            stage.busy_seconds,
            stage.share_of_wall * 100.0,
            thousands(stage.rows_per_s as u64),
            stage.mb_per_s,
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

struct CliObserver<'a> {
    quiet: bool,
    /// Loss curves kept for `--plot`.
    curves: Option<LossCurves>,
    /// The progress bar (hidden with --quiet or when stderr is not a terminal).
    progress: ProgressBar,
    /// Files left out by `--on-bad-file skip`.
    skipped_files: usize,
    epochs: usize,
    metrics: Option<&'a mut MetricsWriter>,
    /// `--debug-row-ids`.
    row_ids: Option<RowIdLog>,
}

/// Writes the row ids of every batch (`--debug-row-ids`): one file per rank and epoch.
struct RowIdLog {
    dir: PathBuf,
    rank: usize,
    epoch: usize,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl RowIdLog {
    fn new(dir: PathBuf, rank: usize) -> Self {
        RowIdLog {
            dir,
            rank,
            epoch: 0,
            out: None,
        }
    }

    fn write(&mut self, epoch: usize, ids: &[u64]) -> std::io::Result<()> {
        use std::io::Write;
        if self.out.is_none() || self.epoch != epoch {
            if let Some(mut old) = self.out.take() {
                old.flush()?;
            }
            let path = self
                .dir
                .join(format!("rank-{}-epoch-{epoch}.txt", self.rank));
            self.out = Some(std::io::BufWriter::new(std::fs::File::create(path)?));
            self.epoch = epoch;
        }
        let out = self.out.as_mut().expect("opened above");
        let line: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        writeln!(out, "{}", line.join(" "))?;
        out.flush()
    }
}

impl TrainObserver for CliObserver<'_> {
    fn on_batch(&mut self, epoch: usize, row_ids: &[u64]) -> streamfit::error::Result<()> {
        if let Some(log) = self.row_ids.as_mut() {
            log.write(epoch, row_ids)
                .map_err(|e| Error::output(&log.dir, e))?;
        }
        Ok(())
    }

    fn on_step(&mut self, step: &StepRecord) -> streamfit::error::Result<()> {
        if let Some(m) = self.metrics.as_deref_mut() {
            m.step(step)?;
        }
        self.progress.inc(1);
        if let Some(curves) = self.curves.as_mut() {
            curves.steps.push((step.iteration, step.batch_loss));
        }
        if step.iteration.is_multiple_of(64) {
            self.progress.set_message(format!(
                "epoch {}/{}, batch loss {:.4}",
                step.epoch, self.epochs, step.batch_loss
            ));
        }
        Ok(())
    }

    fn on_epoch(&mut self, e: &EpochSummary) -> streamfit::error::Result<()> {
        if let (Some(curves), Some(loss)) = (self.curves.as_mut(), e.full_loss) {
            let at = curves.steps.last().map_or(0, |s| s.0);
            curves.epochs.push((at, loss));
        }
        if let Some(m) = self.metrics.as_deref_mut() {
            m.epoch(e)?;
        }
        if !self.quiet {
            let mut loss = e
                .full_loss
                .map_or("n/a (--no-eval)".to_string(), |l| format!("{l:.6}"));
            if let Some(a) = e.accuracy {
                loss.push_str(&format!(", accuracy {:.2}%", a * 100.0));
            }
            if let Some(r) = e.rmse {
                loss.push_str(&format!(", RMSE {r:.5}"));
            }
            if let Some(v) = e.valid {
                loss.push_str(&format!(", valid loss {:.6}", v.loss));
                if let Some(a) = v.accuracy {
                    loss.push_str(&format!(" accuracy {:.2}%", a * 100.0));
                }
                if let Some(r) = v.rmse {
                    loss.push_str(&format!(" RMSE {r:.5}"));
                }
            }
            let skipped = match self.skipped_files {
                0 => String::new(),
                n => format!(", {n} unreadable file(s) skipped"),
            };
            self.progress.suspend(|| {
                say!(
                    "epoch {}/{}: {} iterations, {} rows, loss {loss}, {} rows/s, stall {:.1}%, shuffle ρ {}, {:.1} units/step, {:.2} s (+{:.2} s eval){skipped}",
                    e.epoch,
                    self.epochs,
                    thousands(e.iterations),
                    thousands(e.rows),
                    thousands(e.rows_per_s as u64),
                    e.stall_fraction * 100.0,
                    if e.shuffle_spearman.is_finite() {
                        format!("{:.3}", e.shuffle_spearman)
                    } else {
                        "n/a".to_string()
                    },
                    e.units_per_step,
                    e.seconds,
                    e.eval_seconds,
                )
            });
        }
        Ok(())
    }
}

/// A progress bar counting rows on stderr (drawn only when stderr is a terminal).
fn rows_progress(total: Option<u64>, verb: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = match total {
        Some(_) => {
            format!("{{bar:30}} {{human_pos}}/{{human_len}} rows {verb}, {{per_sec}}, ETA {{eta}}")
        }
        None => format!("{{spinner}} {{human_pos}} rows {verb}, {{per_sec}}"),
    };
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template"));
    bar
}

/// Errors unless `path`'s directory exists, so a typo fails before a long run, not after.
fn check_output_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(
            Error::output(path, format!("directory {} does not exist", dir.display())).into(),
        );
    }
    Ok(())
}

fn run_convert(args: ConvertArgs) -> Result<()> {
    let config = ConvertConfig {
        data: args.data,
        columns: args.columns.spec(),
        out: args.out,
        shard_rows: args.shard_rows,
        num_readers: args.readers,
    };
    let progress = rows_progress(None, "converted");
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

fn run_tune(args: TuneArgs) -> Result<()> {
    let mut base = TrainConfig {
        data: args.data.clone(),
        columns: args.columns.spec(),
        shuffle_buffer_rows: args.shuffle_buffer,
        ..TrainConfig::default()
    };
    base.trainer.optimizer.learning_rate = args.lr;
    base.check()?;
    base.trainer.model = args.model.spec(&base.open_source()?, 2, args.json)?;
    if let Some(t) = args.threads {
        base.trainer.num_threads = t;
    }
    let result = tune(&TuneConfig {
        base,
        batch_sizes: args.batch_sizes.clone(),
        prefetch_depths: args.prefetch_depths.clone(),
        reader_counts: args.readers_list.clone(),
        budget_seconds: args.budget_seconds,
        noise_rows: 16_384,
    })?;
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

fn run_inspect(args: InspectArgs) -> Result<()> {
    let config = TrainConfig {
        data: args.data.clone(),
        columns: args.columns.spec(),
        batch_size: args.batch_size,
        shuffle_buffer_rows: args.shuffle_buffer,
        prefetch: args.prefetch,
        num_readers: args.read.readers,
        verify_checksums: args.read.verify_checksums,
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
    say!("columns:");
    say!(
        "  {:<width$}  {:<7}  {:<24}  {:<12}  note",
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
            "  {:<width$}  {:<7}  {:<24}  {:<12}  {}",
            c.name,
            role,
            c.stored_type,
            c.arrow_type,
            c.note
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
}

fn run_scan(args: ScanArgs) -> Result<()> {
    let config = TrainConfig {
        data: args.data.clone(),
        columns: args.columns.spec(),
        num_readers: args.read.readers,
        verify_checksums: args.read.verify_checksums,
        ..TrainConfig::default()
    };
    config.check()?;
    let source = config.open_source()?;
    let num_rows = source.num_rows();
    let pipeline = Pipeline::new(source.clone(), config.pipeline_config(num_rows));
    let started = Instant::now();
    let mut rows = 0u64;
    let mut checksum = 0.0f64;
    let progress = rows_progress(Some(num_rows), "scanned");
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
            "scan: {} rows × {} features in {:.2} s: {} rows/s, {:.2} GB/s decoded, {:.2} GB/s of file, {} reader(s)",
            thousands(rows),
            d,
            secs,
            thousands((rows as f64 / secs) as u64),
            decoded_bytes as f64 / 1e9 / secs,
            source.file_bytes() as f64 / 1e9 / secs,
            config.num_readers,
        );
    }
    Ok(())
}

/// A one-line progress indicator on stderr, shown only on a terminal.
struct Progress {
    enabled: bool,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        use std::io::IsTerminal;
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    fn update(&self, done: u64, total: u64) {
        if self.enabled {
            eprint!(
                "\r{} / {} rows ({:.0}%)",
                thousands(done),
                thousands(total),
                done as f64 * 100.0 / total.max(1) as f64
            );
        }
    }

    fn clear(&self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
