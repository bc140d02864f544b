//! Settings of the trainer: the model, the optimizer, the loop, checkpoints and resume.
//!
//! Plain data with defaults: [`TrainerConfig`] says what to train and for how long,
//! [`BatchSize`] how many rows make a step, [`Eval`] whether each epoch ends with a full-data
//! pass besides the running training loss, and when the validation data is evaluated. These
//! types run nothing; the command line and `TrainConfig` build them, and the trainer reads
//! them.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::{Checkpoint, CheckpointConfig, RowWeights, Standardization};
use crate::data::categorical::Categorical;
use crate::data::schema::MissingValues;
use crate::model::ModelSpec;
use crate::optim::OptimizerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// b rows per step.
    Rows(u64),
    /// The whole dataset per step: batch gradient descent.
    Full,
}

/// Whether an exact full-data pass over the training data follows each epoch. Either way an
/// epoch reports its running training loss (the mean of its step losses over its rows), which
/// costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eval {
    /// A streamed, unshuffled pass after every epoch: the full-data loss and accuracy or RMSE
    /// at the epoch's final parameters (it reads the training data a second time).
    EveryEpoch,
    /// No full-data pass: the running training loss only. The default.
    Off,
}

/// The units of the training data held out as validation data (`valid_fraction`): recorded
/// in the trainer's settings so that a checkpoint remembers it and a resume cannot change it.
/// The trainer itself reads no data; the batch stream it is given already leaves them out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    /// The fraction of the units asked for, in (0, 1).
    pub fraction: f64,
    /// The seed that chose them.
    pub seed: u64,
    /// The units held out (their indices in file order, as `inspect` counts them), of
    /// `total_units`.
    pub units: Vec<usize>,
    pub total_units: u64,
    /// Rows in the held-out units.
    pub rows: u64,
}

/// Settings of the trainer.
#[derive(Debug, Clone)]
pub struct TrainerConfig {
    /// Model kind and shape. By default logistic regression.
    pub model: ModelSpec,
    /// Optimizer, learning rate (by default 0.1), schedule, decay and clipping. By default
    /// plain SGD.
    pub optimizer: OptimizerConfig,
    /// Seed of the initial parameters (networks; linear models start at zero). By default 0.
    pub init_seed: u64,
    /// Stop when the validation loss has not improved for this many evaluations (epochs, or
    /// with `eval_every` evaluations every so many steps), and keep the best evaluation's
    /// parameters (needs a validation set). By default off.
    pub early_stop: Option<usize>,
    /// Evaluate the validation set every this many steps (counted over the whole run) and
    /// after the last step, instead of after every epoch (needs a validation set). By default
    /// after every epoch.
    pub eval_every: Option<u64>,
    /// Passes over the data, 1 to [`MAX_EPOCHS`]. By default 1.
    pub epochs: usize,
    /// Rayon threads for the gradient. By default all cores.
    pub num_threads: usize,
    /// An exact full-data pass after each epoch ([`Eval::EveryEpoch`]) besides the running
    /// training loss. By default off.
    pub eval: Eval,
    /// The units of the training data held out as validation data, when some are: set when
    /// a run is prepared (`TrainConfig::valid_fraction`), recorded in checkpoints. By default
    /// none.
    pub held_out: Option<HeldOut>,
    /// Train on z-scored features (the result's parameters apply to them, and the model file
    /// carries the statistics for `predict` to apply). By default off.
    pub standardize: Option<Standardization>,
    /// The fill values and indicator features of missing values the batches were decoded
    /// with: set when a run is prepared (from `ColumnSpec::missing`), recorded in checkpoints
    /// (a resume must fill the same). By default none.
    pub missing: MissingValues,
    /// The label value mapped to 1 (`ColumnSpec::positive_label`): set when a run is
    /// prepared, recorded in checkpoints. By default none.
    pub positive_label: Option<String>,
    /// Rows with a null label are left out (`ColumnSpec::drop_null_labels`): set when a run
    /// is prepared, recorded in checkpoints. By default off.
    pub drop_null_labels: bool,
    /// The categorical columns' fitted encoding (`ColumnSpec::categorical`): set when a run
    /// is prepared, recorded in checkpoints (a resume must encode the same). By default none.
    pub categorical: Categorical,
    /// What multiplies each row's loss (a weight column the batches carry, class weights):
    /// set when a run is prepared, recorded in checkpoints. By default none.
    pub weights: RowWeights,
    /// Write checkpoints. By default off.
    pub checkpoint: Option<CheckpointConfig>,
    /// Continue from this checkpoint (checked against the run and the data first).
    pub resume: Option<Box<Checkpoint>>,
    /// When set (by a signal handler), stop at the next step boundary, writing a checkpoint
    /// if checkpoints are on, and return [`Error::Interrupted`](crate::error::Error::Interrupted).
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            model: ModelSpec::logistic(),
            optimizer: OptimizerConfig::default(),
            init_seed: 0,
            early_stop: None,
            eval_every: None,
            epochs: 1,
            num_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            eval: Eval::Off,
            held_out: None,
            standardize: None,
            missing: MissingValues::default(),
            positive_label: None,
            drop_null_labels: false,
            categorical: Categorical::default(),
            weights: RowWeights::default(),
            checkpoint: None,
            resume: None,
            interrupt: None,
        }
    }
}

/// The most epochs a run may ask for: far more than any real run, few enough that nothing
/// per epoch (a summary, a step count) can exhaust memory or time.
pub const MAX_EPOCHS: usize = 1_000_000;

/// Pipeline settings for step size `batch` on a dataset of `num_rows`: pieces are a multiple
/// of [`CHUNK_ROWS`](super::CHUNK_ROWS), and `Full` becomes one step of all rows.
pub fn step_rows(batch: BatchSize, num_rows: u64) -> u64 {
    match batch {
        BatchSize::Rows(b) => b,
        BatchSize::Full => num_rows.max(1),
    }
}
