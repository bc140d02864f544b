//! When the validation data is evaluated, and early stopping on it.
//!
//! Validation follows every epoch, or with «eval_every» every so many steps (counted over the
//! whole run, not per epoch) and once more after the run's last step. [`Validation`] evaluates
//! the validation stream at the trainer's parameters, keeps the best evaluation's parameters
//! under «early_stop», and says when patience ran out: «early_stop» evaluations in a row
//! without a lower validation loss. Its state (the best evaluation, the last one) is what a
//! checkpoint saves, so a resumed run stops where the uninterrupted one would. It updates no
//! parameter and opens no file; the trainer calls it at step and epoch boundaries.

use std::time::Instant;

use super::evaluate::evaluate_stream;
use super::{BestModel, GradientEngine, Standardization, TrainerConfig, ValidationRecord};
use crate::error::{Error, Result};
use crate::model::Metrics;
use crate::optim::OptimizerState;
use crate::pipeline::BatchSource;

/// The validation data and what its evaluations found so far.
pub(super) struct Validation<'a> {
    data: Option<&'a dyn BatchSource>,
    /// «eval_every»: steps between evaluations.
    every: Option<u64>,
    /// «early_stop»: evaluations without improvement before stopping.
    patience: Option<usize>,
    best: Option<BestModel>,
    last: Option<ValidationRecord>,
}

/// The step boundary an evaluation follows.
#[derive(Debug, Clone, Copy)]
pub(super) struct At {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Iteration over the whole run.
    pub iteration: u64,
}

/// What the model is at the boundary: the parameters evaluated and the optimizer's state that
/// goes with them (kept with them when they are the best).
pub(super) struct State<'p> {
    pub params: &'p [f32],
    pub optimizer: &'p OptimizerState,
    pub standardize: Option<&'p Standardization>,
}

impl<'a> Validation<'a> {
    /// Evaluations of `data` as `config` schedules them, continuing from a checkpoint's `best`
    /// and `last` (none for a fresh run).
    pub fn new(
        data: Option<&'a dyn BatchSource>,
        config: &TrainerConfig,
        best: Option<BestModel>,
        last: Option<ValidationRecord>,
    ) -> Self {
        Validation {
            data,
            every: config.eval_every,
            patience: config.early_stop,
            best,
            last,
        }
    }

    /// True when the validation data is evaluated after every epoch (no «eval_every»).
    pub fn after_epochs(&self) -> bool {
        self.data.is_some() && self.every.is_none()
    }

    /// True when «eval_every» evaluates after iteration `iteration`.
    pub fn due(&self, iteration: u64) -> bool {
        self.data.is_some() && self.every.is_some_and(|k| iteration.is_multiple_of(k))
    }

    /// True when the run's last step, at `iteration`, needs the closing evaluation of
    /// «eval_every» (none was due there).
    pub fn due_at_end(&self, iteration: u64) -> bool {
        self.data.is_some() && self.every.is_some_and(|k| !iteration.is_multiple_of(k))
    }

    /// Evaluates the validation data at `state` after `at`: its metrics, and whether they are
    /// the best so far under early stopping (whose parameters are then kept).
    pub fn evaluate(
        &mut self,
        at: At,
        engine: &mut GradientEngine<'_>,
        state: &State<'_>,
    ) -> Result<Option<Metrics>> {
        let Some(data) = self.data else {
            return Ok(None);
        };
        let metrics = evaluate_stream(data, engine, state.params, state.standardize)?;
        if !metrics.loss.is_finite() {
            return Err(Error::Diverged {
                epoch: at.epoch,
                iteration: at.iteration,
                what: "the validation loss",
            });
        }
        if self.patience.is_some()
            && self
                .best
                .as_ref()
                .is_none_or(|b| metrics.loss < b.valid_loss)
        {
            self.best = Some(BestModel {
                epoch: at.epoch,
                iteration: at.iteration,
                valid_loss: metrics.loss,
                params: state.params.to_vec(),
                optimizer: state.optimizer.clone(),
            });
        }
        Ok(Some(metrics))
    }

    /// An evaluation of «eval_every» after `at`: [`Validation::evaluate`] as a record (also
    /// kept as the last one).
    pub fn evaluate_step(
        &mut self,
        at: At,
        engine: &mut GradientEngine<'_>,
        state: &State<'_>,
    ) -> Result<Option<ValidationRecord>> {
        let started = Instant::now();
        let Some(metrics) = self.evaluate(at, engine, state)? else {
            return Ok(None);
        };
        let record = ValidationRecord {
            epoch: at.epoch,
            iteration: at.iteration,
            valid_loss: metrics.loss,
            valid_accuracy: metrics.accuracy,
            valid_rmse: metrics.rmse,
            valid_rows: self.data.map_or(0, |d| d.evaluation_rows()),
            best: self
                .best
                .as_ref()
                .is_some_and(|b| b.iteration == at.iteration && b.epoch == at.epoch),
            seconds: started.elapsed().as_secs_f64(),
        };
        self.last = Some(record);
        Ok(Some(record))
    }

    /// True when early stopping is on and the validation loss has not improved for its
    /// patience by iteration `iteration`, before epoch `epoch` (from 1) or inside it: epochs
    /// since the best epoch, or with «eval_every» evaluations since the best one (every
    /// multiple of «eval_every» after it was one).
    pub fn patience_ran_out(&self, epoch: usize, iteration: u64) -> bool {
        match (self.patience, &self.best, self.every) {
            (Some(patience), Some(b), None) => epoch - 1 - b.epoch >= patience,
            (Some(patience), Some(b), Some(k)) => {
                iteration.saturating_sub(b.iteration) / k >= patience as u64
            }
            _ => false,
        }
    }

    /// The best evaluation so far under early stopping.
    pub fn best(&self) -> Option<&BestModel> {
        self.best.as_ref()
    }

    /// The last evaluation of «eval_every».
    pub fn last(&self) -> Option<&ValidationRecord> {
        self.last.as_ref()
    }

    /// The best and the last evaluations, for the run's result.
    pub fn into_parts(self) -> (Option<BestModel>, Option<ValidationRecord>) {
        (self.best, self.last)
    }
}
