//! What training reports as it runs: [`TrainObserver`], called with a [`StepRecord`] per
//! iteration, a [`ValidationRecord`] per evaluation of the validation data every so many steps
//! (`eval_every`), and an [`EpochSummary`] per epoch.
//!
//! The records are plain serialisable data (an epoch summary is a line of the metrics file
//! and an entry of the report); the observer is how a caller (the command line's progress bar
//! and metrics writer, a test) watches a run, and how it stops one: an error it returns ends
//! training. Nothing here computes a figure; the trainer fills them in.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Metrics;
use crate::pipeline::FileDrop;

/// One iteration (parameter update).
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Iteration over the whole run, from 1.
    pub iteration: u64,
    /// Mean loss over the step's rows, before the update.
    pub batch_loss: f64,
    /// Rows in the step.
    pub rows: u64,
}

/// One finished epoch (a line of the metrics file and an entry of the report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochSummary {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Iterations (updates) in this epoch.
    pub iterations: u64,
    /// Rows trained on in this epoch.
    pub rows: u64,
    /// The running training loss: the mean of the epoch's step losses (each at the
    /// parameters before its update) over the rows it covers, every rank's together. Costs no
    /// extra pass. `None` only in an epoch summarised by an older checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    /// Rows `train_loss` covers: the epoch's rows, or fewer for an epoch resumed from a
    /// checkpoint that did not carry the epoch's running sums (then the rows since the resume).
    #[serde(default)]
    pub train_loss_rows: u64,
    /// Mean loss over all training rows at the epoch's final parameters, from a separate
    /// streamed pass ([`Eval::EveryEpoch`](super::Eval)); absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_loss: Option<f64>,
    /// Share of training rows classified correctly after the epoch (classification, from
    /// the full-data pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Root mean squared error over the training rows after the epoch (regression, from the
    /// full-data pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// Loss and accuracy or RMSE on the validation data after the epoch (`valid`; absent with
    /// `eval_every`, whose evaluations are [`ValidationRecord`]s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<Metrics>,
    /// Learning rate of the epoch's last step.
    #[serde(default)]
    pub learning_rate: f32,
    /// Seconds of the training pass (excluding evaluation, also the mid-epoch evaluations of
    /// `eval_every`).
    pub seconds: f64,
    /// Training rows per second.
    pub rows_per_s: f64,
    /// Share of the training pass the trainer waited for data.
    pub stall_fraction: f64,
    /// Seconds of the evaluation passes (full-data, validation).
    pub eval_seconds: f64,
    /// Mean batches waiting in the prefetch queue when the trainer asked for one.
    #[serde(default)]
    pub queue_occupancy: f64,
    /// Share of the trainer's asks that found the prefetch queue full.
    #[serde(default)]
    pub queue_full_fraction: f64,
    /// Shuffle quality: Spearman correlation between a row's position in the epoch's stream
    /// and its position in the files (1 = file order, 0 = no relation; see docs/tuning.md).
    /// NaN (null in JSON) in a data-parallel run, where one rank's stream ranks nothing.
    #[serde(default, deserialize_with = "nan_if_null")]
    pub shuffle_spearman: f64,
    /// Shuffle quality: mean number of distinct units (row groups) among a step's rows,
    /// sampled on every 8th step.
    #[serde(default)]
    pub units_per_step: f64,
    /// Rows of the epoch's plan left out because files failed while being read (under
    /// `on_bad_file` skip): the rest of each failing unit and its file's later units.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows_skipped: u64,
    /// The files dropped during this epoch (left out of the later ones), with the failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_dropped: Vec<FileDrop>,
}

/// One evaluation of the validation data every so many steps (`eval_every`): a line of the
/// metrics file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValidationRecord {
    /// Epoch (from 1) of the step it follows.
    pub epoch: usize,
    /// Iteration (over the whole run) it follows.
    pub iteration: u64,
    /// Mean loss over the validation rows.
    pub valid_loss: f64,
    /// Share of validation rows classified correctly (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_accuracy: Option<f64>,
    /// Root mean squared error over the validation rows (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_rmse: Option<f64>,
    /// Rows evaluated.
    pub valid_rows: u64,
    /// Under early stopping: the best validation loss so far (its parameters are kept).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub best: bool,
    /// Seconds of the evaluation.
    pub seconds: f64,
}

impl ValidationRecord {
    /// The loss and accuracy or RMSE.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            loss: self.valid_loss,
            accuracy: self.valid_accuracy,
            rmse: self.valid_rmse,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An f64 that JSON may hold as `null` (how serde_json writes NaN).
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Receives progress while training runs. Returning an error stops training.
pub trait TrainObserver {
    /// After each iteration.
    fn on_step(&mut self, _step: &StepRecord) -> Result<()> {
        Ok(())
    }
    /// After each epoch (and its evaluation).
    fn on_epoch(&mut self, _epoch: &EpochSummary) -> Result<()> {
        Ok(())
    }
    /// After each evaluation of the validation data every so many steps (`eval_every`).
    fn on_validation(&mut self, _record: &ValidationRecord) -> Result<()> {
        Ok(())
    }
    /// For each batch this process trains on, before its gradient: the rows' global ids.
    fn on_batch(&mut self, _epoch: usize, _row_ids: &[u64]) -> Result<()> {
        Ok(())
    }
}

/// An observer that ignores everything.
impl TrainObserver for () {}
