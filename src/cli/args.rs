//! Flag groups shared by several subcommands (columns, reading, model, optimizer) and how each
//! maps onto the library's options.
//!
//! Each group is a clap `Args` struct flattened into the subcommands that take it, with a method
//! that writes its settings into a [`TrainConfig`] (or returns the library's type). Flags of one
//! subcommand only live in that subcommand's module; validation is the library's
//! ([`TrainConfig::check`]), except what clap itself refuses.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, FromArgMatches, ValueEnum};
use streamfit::config::{Origin, TrainConfig};
use streamfit::data::source::remote::RemoteOptions;
use streamfit::data::{ColumnSpec, FeatureSelection, ReadMode};
use streamfit::error::render_options;
use streamfit::model::{Activation, HeadKind, ModelKind};
use streamfit::optim::{LrSchedule, OptimizerConfig, OptimizerKind};
use streamfit::train::{BatchSize, Standardize};

/// Which columns are features and which the label (train, scan, convert, tune, inspect).
#[derive(Args, Debug, Clone)]
pub(crate) struct ColumnArgs {
    /// Feature columns, comma-separated [default: every numeric or boolean column except the
    /// label, pandas index columns and --exclude]
    #[arg(long, value_delimiter = ',', conflicts_with = "features_column")]
    features: Option<Vec<String>>,
    /// Columns to leave out of the default features, comma-separated [default: none]
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "A,B",
        conflicts_with_all = ["features", "features_column"]
    )]
    exclude: Vec<String>,
    /// One FixedSizeList/List column of floats that holds all features of a row
    #[arg(long, value_name = "NAME")]
    features_column: Option<String>,
    /// Label (target) column
    #[arg(long, default_value = "label", value_name = "NAME")]
    label: String,
    /// Read only the files whose hive partition directories (key=value) pass this filter:
    /// comparisons (=, !=, <, <=, >, >=) joined by `and`, e.g. 'year>=2023 and month<4'
    /// [default: every file]
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
}

impl ColumnArgs {
    pub(crate) fn spec(&self) -> ColumnSpec {
        // Names in comma lists are trimmed: `--features "a, b"` means a and b.
        let trimmed = |names: &[String]| -> Vec<String> {
            names.iter().map(|n| n.trim().to_string()).collect()
        };
        let features = match (&self.features, &self.features_column) {
            (Some(cols), _) => FeatureSelection::Columns(trimmed(cols)),
            (None, Some(col)) => FeatureSelection::ListColumn(col.trim().to_string()),
            (None, None) => FeatureSelection::AllNumeric,
        };
        ColumnSpec {
            features,
            label: self.label.clone(),
            ignore_label: false,
            filter: self.filter.clone(),
            exclude: trimmed(&self.exclude),
            missing: Default::default(),
            positive_label: None,
            drop_null_labels: false,
            categorical: Default::default(),
            centre: Vec::new(),
            weight: None,
        }
    }
}

/// How the data is read (train, scan, inspect, predict, eval): the flags of [`ReadFlags`],
/// resolved. Resolving them also sets the process's remote-data settings
/// (`--fetch-ahead-bytes`, `--io-retries`, `--io-timeout`; the stores are shared).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadArgs {
    /// Reader (decoder) threads.
    pub(crate) readers: usize,
    /// Check each block of shard rows against its CRC32C on first read.
    pub(crate) verify_checksums: bool,
    /// Local files through their maps, by explicit reads, or chosen by size.
    pub(crate) read_mode: ReadMode,
}

/// The flags behind [`ReadArgs`] as typed: `--no-verify-checksums`, in the `--no-x` style of
/// the other switches, and the older `--verify-checksums BOOL`, still accepted but hidden.
#[derive(Args, Debug, Clone, Copy)]
struct ReadFlags {
    /// Reader (decoder) threads
    #[arg(long, default_value_t = 2, value_name = "R")]
    readers: usize,
    /// Skip the CRC32C check of each block of shard rows on first read (shard datasets only)
    #[arg(long)]
    no_verify_checksums: bool,
    /// The older spelling: `--verify-checksums false` is `--no-verify-checksums`
    #[arg(
        long,
        hide = true,
        value_name = "BOOL",
        action = clap::ArgAction::Set,
        conflicts_with = "no_verify_checksums"
    )]
    verify_checksums: Option<bool>,
    /// How local files are read: `map` (through a memory map: fastest while the page cache
    /// holds the data), `read` (explicit reads into the readers' buffers, dropping the pages
    /// from the page cache behind them: every byte read once per epoch when the data does
    /// not fit in memory), or `auto` (`read` when the data files are larger than the memory
    /// available beside the run's budget, else `map`). The rows are the same either way
    #[arg(
        long,
        default_value = "auto",
        value_name = "MODE",
        value_parser = PossibleValuesParser::new(["auto", "map", "read"])
            .map(|s| s.parse::<ReadMode>().expect("one of the possible values"))
    )]
    read_mode: ReadMode,
    /// Remote data (URLs): bytes of column chunks fetched ahead of the readers, in the order
    /// they read them, counted in the memory budget (a unit larger than this is fetched by
    /// its reader when it starts it)
    #[arg(long, default_value_t = RemoteOptions::default().fetch_ahead_bytes, value_name = "BYTES")]
    fetch_ahead_bytes: u64,
    /// Remote data: retries of a request that failed transiently (timeouts, 5xx, resets,
    /// throttling), with exponential backoff; 403/404 are never retried
    #[arg(long, default_value_t = RemoteOptions::default().io_retries, value_name = "N")]
    io_retries: usize,
    /// Remote data: time limit of one request, in seconds
    #[arg(long, default_value_t = RemoteOptions::default().io_timeout_ms as f64 / 1000.0, value_name = "SECONDS")]
    io_timeout: f64,
}

impl From<ReadFlags> for ReadArgs {
    fn from(flags: ReadFlags) -> Self {
        let remote = RemoteOptions {
            fetch_ahead_bytes: flags.fetch_ahead_bytes.max(1),
            io_retries: flags.io_retries,
            io_timeout_ms: (flags.io_timeout.max(0.001) * 1000.0).round() as u64,
        };
        // The stores are shared by the whole process: their settings are the process's.
        streamfit::data::source::remote::configure(remote);
        ReadArgs {
            readers: flags.readers,
            verify_checksums: !flags.no_verify_checksums && flags.verify_checksums.unwrap_or(true),
            read_mode: flags.read_mode,
        }
    }
}

impl clap::FromArgMatches for ReadArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        <ReadFlags as FromArgMatches>::from_arg_matches(matches).map(ReadArgs::from)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ReadArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        ReadFlags::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        ReadFlags::augment_args_for_update(cmd)
    }
}

/// `--model`'s values: every registered model kind, with its family's summary as help (so a
/// model added to the library's registry needs no change here).
fn model_kinds() -> impl clap::builder::TypedValueParser<Value = ModelKind> {
    let values = ModelKind::all().into_iter().map(|kind| {
        PossibleValue::new(kind.name()).help(render_options(kind.family().summary()).into_owned())
    });
    PossibleValuesParser::new(values).map(|name| {
        ModelKind::named(&name).expect("clap accepts only the registered names it was given")
    })
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
pub(crate) struct ModelArgs {
    /// Model to train
    #[arg(long, value_parser = model_kinds(), default_value = "logistic")]
    model: ModelKind,
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

impl ModelArgs {
    /// Sets the model of `config`; a multiclass model without `--classes` has its K counted
    /// from the labels when the run is prepared.
    pub(crate) fn apply(&self, config: &mut TrainConfig) {
        let head = self.model.head_kind(match self.task {
            HeadArg::Regression => HeadKind::Regression,
            HeadArg::Binary => HeadKind::Binary,
            HeadArg::Multiclass => HeadKind::Multiclass,
        });
        let multiclass = head == HeadKind::Multiclass;
        config.classes = match (multiclass, self.classes) {
            (true, None) => Origin::FromData,
            _ => Origin::Given,
        };
        // Counted later when not given.
        let classes = self.classes.unwrap_or(0);
        config.trainer.model = self.model.spec(
            head.with_classes(classes),
            self.hidden.clone(),
            match self.activation {
                ActivationArg::Relu => Activation::Relu,
                ActivationArg::Tanh => Activation::Tanh,
            },
        );
    }
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
    /// Multiply by --lr-gamma every --lr-step-size iterations or --lr-step-epochs epochs
    Step,
    /// Cosine from the base rate to 0 over the run
    Cosine,
}

/// The optimizer (train).
#[derive(Args, Debug, Clone)]
pub(crate) struct OptimizerArgs {
    /// Update rule
    #[arg(long, value_enum, default_value = "sgd")]
    optimizer: OptimizerArg,
    /// Base learning rate [default: the optimizer's usual one: 0.1 for sgd, momentum and
    /// nesterov, 0.001 for adam and adamw (PyTorch's Adam default)]
    #[arg(long)]
    lr: Option<f32>,
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
    /// Iterations (optimizer steps, not epochs) between decays of `--lr-schedule step`
    /// [default: one epoch]
    #[arg(long, value_name = "STEPS", conflicts_with = "lr_step_epochs")]
    lr_step_size: Option<u64>,
    /// Epochs between decays of `--lr-schedule step` (PyTorch's StepLR step_size counted in
    /// epochs); exclusive with --lr-step-size
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    lr_step_epochs: Option<u64>,
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
    /// Sets the optimizer of `config`; without --lr the rate is the optimizer's default (so a
    /// resumed run resolves to the same one); a step schedule without `--lr-step-size` decays
    /// every `--lr-step-epochs` epochs, by default one (resolved when the run is prepared).
    pub(crate) fn apply(&self, config: &mut TrainConfig) {
        config.lr_step_size = match (self.lr_schedule, self.lr_step_size) {
            (ScheduleArg::Step, None) => Origin::FromData,
            _ => Origin::Given,
        };
        let kind = match self.optimizer {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Momentum => OptimizerKind::Momentum,
            OptimizerArg::Nesterov => OptimizerKind::Nesterov,
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Adamw => OptimizerKind::AdamW,
        };
        config.trainer.optimizer = OptimizerConfig {
            kind,
            learning_rate: self.lr.unwrap_or(kind.default_learning_rate()),
            momentum: self.momentum,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            schedule: match self.lr_schedule {
                ScheduleArg::Constant => LrSchedule::Constant,
                ScheduleArg::Step => LrSchedule::Step {
                    // Without --lr-step-size: a count of epochs, made steps when the run is
                    // prepared.
                    every: self
                        .lr_step_size
                        .unwrap_or(self.lr_step_epochs.unwrap_or(1)),
                    gamma: self.lr_gamma,
                },
                ScheduleArg::Cosine => LrSchedule::Cosine,
            },
            warmup_steps: self.warmup_steps,
            clip_grad_norm: self.clip_grad_norm,
        };
    }
}

/// `--standardize` and `--no-standardize` (clap refuses both): always, never, or by default
/// when the features' scales are mixed.
pub(crate) fn standardize_choice(standardize: bool, no_standardize: bool) -> Standardize {
    match (standardize, no_standardize) {
        (true, _) => Standardize::Always,
        (_, true) => Standardize::Never,
        _ => Standardize::Auto,
    }
}

/// Parses `--batch-size`: a number of rows or `full`.
pub(crate) fn parse_batch_size(s: &str) -> Result<BatchSize, String> {
    if s.eq_ignore_ascii_case("full") {
        return Ok(BatchSize::Full);
    }
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1, or `full`".to_string()),
        Ok(b) => Ok(BatchSize::Rows(b)),
        Err(_) => Err(format!("`{s}` is not a number of rows or `full`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct ReadOnly {
        #[command(flatten)]
        read: ReadArgs,
    }

    fn verify(flags: &[&str]) -> bool {
        use clap::Parser;
        let args = std::iter::once("test").chain(flags.iter().copied());
        ReadOnly::try_parse_from(args)
            .unwrap()
            .read
            .verify_checksums
    }

    #[test]
    fn checksums_are_on_unless_switched_off_in_either_spelling() {
        assert!(verify(&[]));
        assert!(!verify(&["--no-verify-checksums"]));
        assert!(!verify(&["--verify-checksums", "false"]));
        assert!(verify(&["--verify-checksums", "true"]));
    }

    #[test]
    fn batch_size_is_a_number_of_rows_or_full() {
        assert_eq!(parse_batch_size("64"), Ok(BatchSize::Rows(64)));
        assert_eq!(parse_batch_size("FULL"), Ok(BatchSize::Full));
        assert!(parse_batch_size("0").is_err());
        assert!(parse_batch_size("many").is_err());
    }
}
