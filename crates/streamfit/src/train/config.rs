//! Settings of the trainer: the model, the optimizer, the loop, checkpoints and resume.
//!
//! Plain data with defaults: [`TrainerConfig`] says what to train and for how long,
//! [`BatchSize`] how many rows make a step, [`Eval`] whether each epoch ends with a full-data
//! loss. These types run nothing; the command line and `TrainConfig` build them, and the
//! trainer reads them.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::{Checkpoint, CheckpointConfig, Standardization};
use crate::model::ModelSpec;
use crate::optim::OptimizerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// b rows per step.
    Rows(u64),
    /// The whole dataset per step: batch gradient descent.
    Full,
}

/// Whether the full-data loss is computed after each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eval {
    /// A streamed, unshuffled pass after every epoch.
    EveryEpoch,
    /// No evaluation pass.
    Off,
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
    /// Stop when the validation loss has not improved for this many epochs, and keep the
    /// best epoch's parameters (needs a validation set). By default off.
    pub early_stop: Option<usize>,
    /// Passes over the data, 1 to [`MAX_EPOCHS`]. By default 1.
    pub epochs: usize,
    /// Rayon threads for the gradient. By default all cores.
    pub num_threads: usize,
    /// Full-data loss after each epoch. By default on.
    pub eval: Eval,
    /// Train on z-scored features (the result's parameters are folded back to raw features).
    /// By default off.
    pub standardize: Option<Standardization>,
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
            epochs: 1,
            num_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            eval: Eval::EveryEpoch,
            standardize: None,
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
