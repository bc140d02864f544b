//! Training: the loop that turns a stream of batches into parameters.
//!
//! Layer 2: consumes any [`BatchSource`](crate::pipeline::BatchSource) (the
//! [`Pipeline`](crate::pipeline::Pipeline)'s epochs, one rank's share of them, or a stream of
//! one's own) and knows nothing of data files or of the pipeline's threads (the files it
//! writes are its own: checkpoints, model files, metrics, reports). One step is b rows
//! (possibly several batches); after its last batch the averaged gradient goes to the
//! optimizer. `b = 1` is SGD, `b = N` (or [`BatchSize::Full`]) is batch gradient descent whose
//! gradient is accumulated over the streamed epoch, and everything between is mini-batch GD:
//! one algorithm, one knob. Each epoch reports its running training loss (the mean of its step
//! losses); an unshuffled streamed pass after it computes the exact full-data loss when asked
//! ([`Eval::EveryEpoch`]), and validation data is evaluated after every epoch or every so many
//! steps.
//!
//! - [`config`]: the trainer's settings; [`observer`]: what it reports as it runs;
//!   [`result`]: what a run returns;
//! - [`entry`]: the ways to start a run ([`train`], [`train_validated`], [`train_ranks`],
//!   [`train_stream`]); `trainer`: the loop; `validation`: when the validation data is
//!   evaluated and early stopping;
//! - [`gradient`]: the averaged gradient of a step on rayon workers; [`evaluate`](mod@evaluate): the
//!   full-data loss; [`labels`]: refusing a label the head cannot take;
//! - `mixing`: shuffle-quality figures; `ranks`: what the ranks of a data-parallel run
//!   agree on; [`standardize`]: z-scored features; [`weights`]: row and class weights;
//! - [`checkpoint`]: crash-safe checkpoints and exact resume; [`output`]: model files,
//!   reports and metrics.

pub mod checkpoint;
pub mod config;
pub mod entry;
pub mod evaluate;
pub mod gradient;
pub mod labels;
mod mixing;
pub mod observer;
pub mod output;
mod ranks;
pub mod result;
pub mod standardize;
mod trainer;
mod validation;
pub mod weights;

pub use self::checkpoint::{
    Checkpoint, CheckpointConfig, CheckpointLock, RunFingerprint, RunningLoss, fingerprint,
};
pub use self::config::{BatchSize, Eval, HeldOut, MAX_EPOCHS, TrainerConfig, step_rows};
pub use self::entry::{train, train_ranks, train_stream, train_validated};
pub use self::evaluate::{eval_config, evaluate, evaluate_ranks};
pub use self::gradient::{CHUNK_ROWS, GradientEngine, StepTotals, model_memory_bytes};
pub use self::labels::check_labels;
pub use self::observer::{EpochSummary, StepRecord, TrainObserver, ValidationRecord};
pub use self::output::{MetricsWriter, ModelFile, Report, SavedOptimizer, SkippedFile};
pub use self::result::{BestModel, ResumeInfo, TrainResult};
pub use self::standardize::{Standardization, Standardize};
pub use self::weights::{ClassWeight, RowWeights, balanced_weights};

#[cfg(test)]
mod dropped_tests;
#[cfg(test)]
mod tests;
