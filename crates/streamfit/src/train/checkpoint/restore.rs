//! Where a run starts: from scratch, or from its checkpoint once that is known to fit.
//!
//! [`restore`] checks a [`Checkpoint`] against the run (its fingerprint, the data's identity,
//! the model's parameter count) and returns the [`Start`] the trainer continues from:
//! parameters, optimizer state, epochs done, and where the interrupted epoch's stream stood.
//! It neither reads files nor starts a stream.

use super::{Checkpoint, DataFile, RunFingerprint};
use crate::error::{Error, Result};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerState};
use crate::pipeline::StreamPosition;
use crate::train::{BestModel, EpochSummary, ResumeInfo};

/// The state a run starts from.
pub(crate) struct Start {
    /// Parameters (in the standardised space when standardising).
    pub params: Vec<f32>,
    /// The optimizer's state (none: a fresh optimizer).
    pub optimizer: Option<OptimizerState>,
    /// The best epoch so far under «early_stop».
    pub best: Option<BestModel>,
    /// Summaries of the finished epochs.
    pub epochs: Vec<EpochSummary>,
    /// Iterations done.
    pub iteration: u64,
    /// The epoch (from 0) to run or continue next.
    pub next_epoch: u64,
    /// Inside that epoch: where its stream stood, and the steps done by then (over all
    /// ranks). `None` at an epoch boundary.
    pub position: Option<(StreamPosition, u64)>,
    /// What the resume reports (the rows re-read are filled in when the epoch restarts);
    /// `None` for a fresh run.
    pub resumed: Option<ResumeInfo>,
}

impl Start {
    /// A fresh run from parameters `params`.
    pub fn fresh(params: Vec<f32>) -> Self {
        Start {
            params,
            optimizer: None,
            best: None,
            epochs: Vec::new(),
            iteration: 0,
            next_epoch: 0,
            position: None,
            resumed: None,
        }
    }
}

/// The state of `checkpoint`, refused unless it belongs to the run `now` on the data `data`
/// with `num_params` parameters and optimizer `optimizer`.
pub(crate) fn restore(
    checkpoint: &Checkpoint,
    now: &RunFingerprint,
    data: &[DataFile],
    num_params: usize,
    optimizer: &OptimizerConfig,
) -> Result<Start> {
    checkpoint.check_compatible(now, data)?;
    if checkpoint.params.len() != num_params
        || !Optimizer::state_fits(optimizer, num_params, &checkpoint.optimizer_state)
    {
        return Err(Error::config(
            "resume",
            "the checkpoint's parameter count does not match the model",
        ));
    }
    let iteration = checkpoint.iteration;
    // Steps of the interrupted epoch done by then (over all ranks).
    let before: u64 = checkpoint.epochs_done.iter().map(|e| e.iterations).sum();
    let steps_done = iteration.saturating_sub(before);
    Ok(Start {
        params: checkpoint.params.clone(),
        optimizer: Some(checkpoint.optimizer_state.clone()),
        best: checkpoint.best.clone(),
        epochs: checkpoint.epochs_done.clone(),
        iteration,
        next_epoch: checkpoint.next_epoch,
        position: checkpoint.position().map(|p| (p, steps_done)),
        resumed: Some(ResumeInfo {
            from_iteration: iteration,
            epoch: checkpoint.next_epoch + 1,
            rows_reread: 0,
        }),
    })
}
