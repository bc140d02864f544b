//! What a run returns: [`TrainResult`] (the parameters, the optimizer's state and every
//! epoch's summary), with [`BestModel`] (the epoch kept under early stopping) and
//! [`ResumeInfo`] (what a resume did).
//!
//! Plain data and the totals derived from it (iterations, throughput, stall); how the figures
//! are measured is the trainer's business, how they are printed or saved the caller's.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::EpochSummary;
use crate::optim::OptimizerState;

/// The best evaluation so far under `early_stop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestModel {
    /// Epoch (from 1) whose parameters these are (with `eval_every`: the epoch of the step
    /// the evaluation followed).
    pub epoch: usize,
    /// Iteration (over the whole run) the evaluation followed. 0 in a checkpoint written
    /// before streamfit recorded it (which never has `eval_every`).
    #[serde(default)]
    pub iteration: u64,
    /// Its validation loss.
    pub valid_loss: f64,
    /// Its parameters (in the standardised space when standardising).
    pub params: Vec<f32>,
    /// The optimizer's state after that evaluation's step (what the saved model carries).
    pub optimizer: OptimizerState,
}

/// The outcome of [`train`](super::train).
#[derive(Debug, Clone)]
pub struct TrainResult {
    /// Final parameters in the model's layout (`[w_0 .. w_{d-1}, bias]` for the linear
    /// models), as learned: with `standardize`, they apply to the standardised features
    /// (x − mean) / std, as the model file (version 6) stores them. With `early_stop`, the
    /// best epoch's.
    pub params: Vec<f32>,
    /// The optimizer's state that goes with `params`: after the last step, or with
    /// `early_stop` after the best epoch.
    pub optimizer_state: OptimizerState,
    /// With `early_stop`: the epoch whose parameters were kept.
    pub best_epoch: Option<usize>,
    /// With `early_stop`: the iteration after which the kept parameters were evaluated.
    pub best_iteration: Option<u64>,
    /// With `early_stop`: the number of epochs run when patience ran out (with `eval_every`,
    /// the epoch it ran out in, which stopped there).
    pub stopped_early: Option<usize>,
    /// With `eval_every`: the last evaluation of the validation data.
    pub last_validation: Option<super::ValidationRecord>,
    /// One summary per epoch.
    pub epochs: Vec<EpochSummary>,
    /// Iterations in each epoch (ceil(N/b), or floor with drop-last); in a data-parallel run,
    /// those of the first epoch (they depend on the epoch's shares).
    pub iterations_per_epoch: u64,
    /// Rows per epoch actually trained on.
    pub rows_per_epoch: u64,
    /// Wall-clock seconds of the whole run, evaluation included.
    pub seconds: f64,
    /// When resumed: the iteration it continued from and the rows re-read to rebuild the
    /// shuffle buffer.
    pub resumed: Option<ResumeInfo>,
    /// The last checkpoint written, if any.
    pub last_checkpoint: Option<PathBuf>,
}

/// What a resume did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeInfo {
    /// Iterations already done by the checkpoint.
    pub from_iteration: u64,
    /// Epoch (from 1) it continued in.
    pub epoch: u64,
    /// Rows read again to refill the shuffle buffer.
    pub rows_reread: u64,
}

impl TrainResult {
    /// Total iterations over all epochs.
    pub fn iterations(&self) -> u64 {
        self.epochs.iter().map(|e| e.iterations).sum()
    }

    /// Full-data loss after the last epoch, when a full-data pass ran
    /// ([`Eval::EveryEpoch`](super::Eval::EveryEpoch)).
    pub fn final_loss(&self) -> Option<f64> {
        self.epochs.last().and_then(|e| e.full_loss)
    }

    /// The last epoch's running training loss (the mean of its step losses).
    pub fn final_train_loss(&self) -> Option<f64> {
        self.epochs.last().and_then(|e| e.train_loss)
    }

    /// The last validation figures: of the last evaluation every so many steps, or after the
    /// last epoch.
    pub fn final_valid(&self) -> Option<crate::model::Metrics> {
        match &self.last_validation {
            Some(record) => Some(record.metrics()),
            None => self.epochs.last().and_then(|e| e.valid),
        }
    }

    /// Training rows per second over all epochs (evaluation excluded).
    pub fn rows_per_s(&self) -> f64 {
        let secs: f64 = self.epochs.iter().map(|e| e.seconds).sum();
        let rows: u64 = self.epochs.iter().map(|e| e.rows).sum();
        if secs > 0.0 { rows as f64 / secs } else { 0.0 }
    }

    /// Share of training time spent waiting for data, over all epochs.
    pub fn stall_fraction(&self) -> f64 {
        let secs: f64 = self.epochs.iter().map(|e| e.seconds).sum();
        let stall: f64 = self
            .epochs
            .iter()
            .map(|e| e.stall_fraction * e.seconds)
            .sum();
        if secs > 0.0 { stall / secs } else { 0.0 }
    }
}
