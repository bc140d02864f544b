//! The training loop: epochs of steps over a [`BatchSource`], from the first batch (or a
//! checkpoint) to the returned parameters.
//!
//! One step is b rows (possibly several batches); after its last batch the averaged gradient
//! goes to the optimizer. `b = 1` is SGD, `b = N` (or [`BatchSize::Full`](super::BatchSize))
//! is batch gradient descent whose gradient is accumulated over the streamed epoch, and
//! everything between is mini-batch GD: one algorithm, one knob. Each epoch's running training
//! loss is the mean of its step losses over its rows (at no extra cost); an unshuffled
//! streamed pass after the epoch computes the exact full-data loss when asked for
//! ([`Eval::EveryEpoch`]). The validation data is evaluated after every epoch, or every so many
//! steps (`validation.rs`).
//!
//! `Trainer` reads top to bottom: `run` runs the epochs, `run_epoch` their steps, `step` one
//! update, `validate` an evaluation every so many steps, `end_pass` and `evaluate_epoch`
//! close an epoch, and `stop_point` is every step boundary where a checkpoint may be written
//! or an interrupt honoured. It consumes any
//! [`BatchSource`] and knows nothing of data files or of the pipeline's threads (checkpoint
//! files are the `Checkpointer`'s). In a data-parallel run the stream is one rank's share: the
//! only collectives are in the step (the summed gradient and whether any rank was signalled),
//! at the epoch's end (its rows, the parameters, the signal) and in the evaluation; with one
//! process they are no-ops.

use std::time::Instant;

use super::checkpoint::restore::{Start, restore};
use super::checkpoint::writer::{Boundary, Checkpointer, RunState};
use super::checkpoint::{CheckpointLock, RunFingerprint, RunningLoss, data_identity};
use super::evaluate::evaluate_stream;
use super::labels::check_stream_labels;
use super::mixing::Mixing;
use super::ranks::{
    any_rank_signalled, check_same_params, check_same_start, interrupt_requested, sum_across,
};
use super::validation::{At, State, Validation};
use super::{
    EpochSummary, Eval, GradientEngine, ResumeInfo, StepRecord, TrainObserver, TrainResult,
    TrainerConfig,
};
use crate::comm::Collective;
use crate::error::{Error, Result};
use crate::model::{Head, Metrics, Model};
use crate::optim::Optimizer;
use crate::pipeline::{BatchSource, EpochBatches, FileDrop, StreamPosition};

/// Steps between checks that every rank holds the same parameters.
const PARAMS_CHECK_EVERY: u64 = 64;

/// One training run: the model's state, the run's records, and where it checkpoints.
pub(super) struct Trainer<'a> {
    config: &'a TrainerConfig,
    stream: &'a dyn BatchSource,
    /// The validation data, its schedule and early stopping.
    validation: Validation<'a>,
    observer: &'a mut dyn TrainObserver,
    /// The ranks the stream is a share of (one process: every collective is a no-op).
    world: &'a dyn Collective,
    head: Head,
    engine: GradientEngine<'a>,
    /// The current batch's row weights (when the run weights rows).
    row_weights: Vec<f32>,
    optimizer: Optimizer,
    params: Vec<f32>,
    grad: Vec<f32>,
    /// Iterations over the whole run.
    iteration: u64,
    /// The epoch (from 0) the run starts with.
    first_epoch: u64,
    epochs: Vec<EpochSummary>,
    /// Rank 0 writes the checkpoints (for every rank).
    checkpointer: Option<Checkpointer<'a>>,
    /// Where a resumed epoch's stream stood, its steps done and its training-loss sums, until
    /// that epoch starts.
    resume_at: Option<(StreamPosition, u64, RunningLoss)>,
    resumed: Option<ResumeInfo>,
    /// Set once any rank was signalled (SIGINT/SIGTERM): every rank stops at the same step.
    interrupted: bool,
    stopped_early: Option<usize>,
    rows_per_epoch: u64,
    started: Instant,
}

/// One epoch's pass over the stream, as it goes.
struct EpochPass<'s> {
    batches: Box<dyn EpochBatches + 's>,
    /// This share's batches are used up: it steps with zero rows until every rank's are.
    exhausted: bool,
    /// Steps of the epoch done before this pass (a resumed epoch), and by now.
    first_step: u64,
    steps: u64,
    steps_in_epoch: u64,
    /// Rows this process trained on in the pass.
    rows: u64,
    /// The epoch's training-loss sums, every rank's (from the checkpoint's, when resumed).
    running: RunningLoss,
    /// Seconds of evaluations made during the pass («eval_every»).
    eval_seconds: f64,
    learning_rate: f32,
    mixing: Mixing<'s>,
    started: Instant,
}

/// What the training pass of an epoch measured, every rank's rows together.
struct PassFigures {
    steps: u64,
    /// Rows the epoch covered (all of them, for a resumed epoch).
    rows: u64,
    /// Rows this run trained on (since the resume, for a resumed epoch).
    rows_seen: u64,
    /// The epoch's training-loss sums.
    running: RunningLoss,
    /// Seconds of the training pass, evaluations during it left out.
    seconds: f64,
    /// Seconds of evaluations during the pass.
    eval_seconds: f64,
    stall_seconds: f64,
    queue_occupancy: f64,
    queue_full_fraction: f64,
    learning_rate: f32,
    shuffle_spearman: f64,
    units_per_step: f64,
    /// Files dropped during the epoch.
    files_dropped: Vec<FileDrop>,
}

impl<'a> Trainer<'a> {
    /// A run of `model` on `stream`: fresh parameters, or the checkpoint's when resuming;
    /// every rank must start from the same state.
    pub(super) fn new(
        stream: &'a dyn BatchSource,
        valid: Option<&'a dyn BatchSource>,
        config: &'a TrainerConfig,
        observer: &'a mut dyn TrainObserver,
        model: &'a dyn Model,
    ) -> Result<Self> {
        let started = Instant::now();
        let world = stream.collective();
        // Rank 0 writes the checkpoints: it holds their directory for the whole run.
        let lock = match &config.checkpoint {
            Some(c) if world.rank() == 0 => Some(CheckpointLock::acquire(&c.dir)?),
            _ => None,
        };
        let fingerprint = RunFingerprint::of_stream(stream, config);
        let checkpointed = config.checkpoint.is_some() || config.resume.is_some();
        let data = match (checkpointed, fingerprint.is_some(), stream.source()) {
            (false, _, _) => Vec::new(),
            (true, true, Some(source)) => data_identity(source.as_ref())?,
            (true, _, _) => {
                return Err(Error::config(
                    if config.resume.is_some() {
                        "resume"
                    } else {
                        "checkpoint_dir"
                    },
                    "needs a batch stream read from files by a pipeline",
                ));
            }
        };
        let start = match (&config.resume, &fingerprint) {
            (Some(checkpoint), Some(now)) => {
                restore(checkpoint, now, &data, model.num_params(), config, stream)?
            }
            _ => Start::fresh(model.init_params(config.init_seed)),
        };
        check_same_start(world, fingerprint.as_ref(), stream, &start)?;
        let total_steps = stream.total_steps(config.epochs as u64);
        let checkpointer = match (&config.checkpoint, lock, fingerprint) {
            (Some(c), Some(lock), Some(fingerprint)) => {
                Some(Checkpointer::new(c, lock, fingerprint, data, stream))
            }
            _ => None,
        };
        // Summaries grow as epochs end: nothing is reserved per epoch up front.
        let epochs = start.epochs;
        let validation = Validation::new(valid, config, start.best, start.last_validation);
        Ok(Trainer {
            config,
            stream,
            validation,
            observer,
            world,
            head: model.head(),
            engine: GradientEngine::new(model, config.num_threads)?,
            row_weights: Vec::new(),
            optimizer: Optimizer::new(
                config.optimizer.clone(),
                model.decays(),
                total_steps,
                start.optimizer,
            ),
            params: start.params,
            grad: vec![0.0f32; model.num_params()],
            iteration: start.iteration,
            first_epoch: start.next_epoch,
            epochs,
            checkpointer,
            resume_at: start.position.map(|(p, steps)| (p, steps, start.running)),
            resumed: start.resumed,
            interrupted: false,
            stopped_early: None,
            rows_per_epoch: stream.rows_per_epoch(),
            started,
        })
    }

    /// Runs the epochs (from the checkpoint's, when resuming) and returns the result.
    pub(super) fn run(mut self) -> Result<TrainResult> {
        for epoch in (self.first_epoch as usize + 1)..=self.config.epochs {
            // (A run resumed after patience ran out stops at once, as it did.)
            if self.validation.patience_ran_out(epoch, self.iteration) {
                self.stopped_early = Some(epoch - 1);
                break;
            }
            if self.run_epoch(epoch)? == Patience::RanOut {
                self.stopped_early = Some(epoch);
                break;
            }
        }
        Ok(self.finish())
    }

    /// One epoch (from 1): its steps (with the evaluations of «eval_every» between them), the
    /// epoch's figures and evaluation, and the epoch-end checkpoint. With «eval_every», an
    /// evaluation after which patience ran out ends the epoch (and the run) at that step.
    fn run_epoch(&mut self, epoch: usize) -> Result<Patience> {
        let mut pass = self.start_epoch(epoch)?;
        let mut patience = Patience::Left;
        while self.step(epoch, &mut pass)? {
            if self.validation.due(self.iteration) {
                patience = self.validate(epoch, &mut pass)?;
                if patience == Patience::RanOut {
                    break;
                }
            }
            // An epoch's last step is checkpointed after its evaluation, below.
            if pass.steps < pass.steps_in_epoch {
                let due = self
                    .checkpointer
                    .as_ref()
                    .is_some_and(|c| c.due(self.iteration));
                self.stop_point(epoch, pass.steps, false, due, pass.running)?;
            }
        }
        if patience == Patience::Left
            && epoch == self.config.epochs
            && self.validation.due_at_end(self.iteration)
        {
            self.validate(epoch, &mut pass)?;
        }
        let figures = self.end_pass(epoch, pass, patience)?;
        let steps = figures.steps;
        let summary = self.evaluate_epoch(epoch, figures)?;
        self.observer.on_epoch(&summary)?;
        self.epochs.push(summary);
        self.interrupted |= any_rank_signalled(self.world, self.config);
        // Epoch ends are always checkpointed (when checkpoints are on), an epoch cut short by
        // early stopping too: a resume from it stops at once.
        self.stop_point(epoch, steps, true, true, RunningLoss::default())?;
        Ok(patience)
    }

    /// An evaluation of «eval_every» after the step just made in epoch `epoch`; its time is
    /// the pass's evaluation time, not its training time. Returns whether patience ran out.
    fn validate(&mut self, epoch: usize, pass: &mut EpochPass<'_>) -> Result<Patience> {
        let started = Instant::now();
        let at = At {
            epoch,
            iteration: self.iteration,
        };
        let state = State {
            params: &self.params,
            optimizer: self.optimizer.state(),
            standardize: self.config.standardize.as_ref(),
        };
        let record = self
            .validation
            .evaluate_step(at, &mut self.engine, &state)?;
        pass.eval_seconds += started.elapsed().as_secs_f64();
        if let Some(record) = record {
            self.observer.on_validation(&record)?;
        }
        Ok(if self.validation.patience_ran_out(epoch, self.iteration) {
            Patience::RanOut
        } else {
            Patience::Left
        })
    }

    /// Starts epoch `epoch` (from 1): from its beginning, or where the checkpoint's stream
    /// stood.
    fn start_epoch(&mut self, epoch: usize) -> Result<EpochPass<'a>> {
        // The epoch's time includes starting its stream (a resume's re-read too).
        let started = Instant::now();
        let index = epoch as u64 - 1;
        let stream = self.stream;
        let (batches, first_step, first_position, running) = match self.resume_at.take() {
            Some((position, steps_done, running)) => {
                if position.epoch() != Some(index) {
                    return Err(Error::config(
                        "resume",
                        "the checkpoint's stream cursor is for another epoch",
                    ));
                }
                let resumed = stream.resume_epoch(&position)?;
                if let Some(info) = self.resumed.as_mut() {
                    info.rows_reread = resumed.rows_reread;
                }
                (resumed.batches, steps_done, resumed.rows_emitted, running)
            }
            None => (stream.start_epoch(index)?, 0, 0, RunningLoss::default()),
        };
        let units = stream.source().map_or(&[][..], |s| s.units());
        Ok(EpochPass {
            batches,
            exhausted: false,
            first_step,
            steps: first_step,
            steps_in_epoch: stream.steps_in_epoch(index),
            rows: 0,
            running,
            eval_seconds: 0.0,
            learning_rate: self.optimizer.learning_rate(),
            mixing: Mixing::new(units, first_position, self.world.size() == 1),
            started,
        })
    }

    /// One step of epoch `epoch`: this rank's batches up to the one that ends a step (none
    /// once its share is used up), every rank's gradient sums, and the update. Returns false,
    /// updating nothing, when no rank had rows left: the epoch is over.
    fn step(&mut self, epoch: usize, pass: &mut EpochPass<'_>) -> Result<bool> {
        while !pass.exhausted {
            let Some(batch) = pass.batches.next() else {
                pass.exhausted = true;
                break;
            };
            let mut batch = batch?;
            check_stream_labels(self.stream, self.head, &batch.rows)?;
            self.observer.on_batch(epoch, batch.rows.row_ids())?;
            let weighted = self.config.weights.any();
            if weighted {
                self.config
                    .weights
                    .take(&mut batch.rows, &mut self.row_weights);
            }
            if let Some(s) = &self.config.standardize {
                s.apply(&mut batch.rows);
            }
            if weighted {
                self.engine
                    .accumulate_weighted(&self.params, &batch.rows, &self.row_weights);
            } else {
                self.engine.accumulate(&self.params, &batch.rows);
            }
            pass.mixing.add(batch.rows.row_ids(), pass.steps);
            pass.rows += batch.rows.num_rows() as u64;
            if batch.ends_step {
                break;
            }
        }
        // Every rank's sums (and whether any rank was signalled); no rows anywhere ends the
        // epoch.
        let signal = interrupt_requested(self.config);
        let totals = self
            .engine
            .finish_step_across(self.world, &mut self.grad, signal);
        self.interrupted |= totals.signalled;
        if totals.rows == 0 {
            return Ok(false);
        }
        let (batch_loss, step_rows) = (totals.mean_loss(), totals.rows);
        pass.running.add_step(&totals);
        pass.steps += 1;
        self.iteration += 1;
        let iteration = self.iteration;
        if !batch_loss.is_finite() {
            return Err(diverged(epoch, iteration, "the batch loss"));
        }
        if self.grad.iter().any(|g| !g.is_finite()) {
            return Err(diverged(epoch, iteration, "the gradient"));
        }
        {
            let _span = tracing::trace_span!("update").entered();
            pass.learning_rate = self.optimizer.step(&mut self.params, &mut self.grad);
        }
        if self.params.iter().any(|p| !p.is_finite()) {
            return Err(diverged(epoch, iteration, "a parameter after the update"));
        }
        if iteration.is_multiple_of(PARAMS_CHECK_EVERY) {
            check_same_params(self.world, &self.params, iteration)?;
        }
        self.observer.on_step(&StepRecord {
            epoch,
            iteration,
            batch_loss,
            rows: step_rows,
        })?;
        Ok(true)
    }

    /// Ends epoch `epoch`'s training pass: its time and stall, every rank's rows, and the
    /// checks that it made the steps and covered the rows it should have (unless early
    /// stopping cut it short).
    fn end_pass(
        &mut self,
        epoch: usize,
        pass: EpochPass<'_>,
        patience: Patience,
    ) -> Result<PassFigures> {
        let seconds = (pass.started.elapsed().as_secs_f64() - pass.eval_seconds).max(0.0);
        let stall_seconds = pass.batches.wait_time().as_secs_f64();
        let queue = pass.batches.queue_stats();
        let EpochPass {
            batches,
            first_step,
            steps,
            steps_in_epoch,
            rows,
            running,
            eval_seconds,
            learning_rate,
            mut mixing,
            ..
        } = pass;
        drop(batches);
        let rows_seen = sum_across(self.world, rows);
        // What the epoch should have made, from the rows it really had: files dropped during
        // it (under «on_bad_file» skip) took rows out.
        let index = epoch as u64 - 1;
        let files_dropped: Vec<FileDrop> = self
            .stream
            .dropped_files()
            .into_iter()
            .filter(|d| d.epoch == index)
            .collect();
        let expected_steps = if files_dropped.is_empty() {
            steps_in_epoch
        } else {
            self.stream.steps_in_epoch(index)
        };
        let expected_rows = self.stream.rows_in_epoch(index);
        // With «drop_last», a drop found after part of the last step went out keeps that
        // step (its rows cannot be taken back): one step, fewer than b rows, more.
        let step_rows = self.stream.config().map_or(0, |c| c.step_rows);
        let cut_short = (!files_dropped.is_empty()
            && steps == expected_steps + 1
            && rows_seen.saturating_sub(expected_rows) < step_rows)
            || patience == Patience::RanOut;
        if steps != expected_steps && !cut_short {
            return Err(Error::internal(format!(
                "epoch {epoch} made {steps} steps, expected {expected_steps}"
            )));
        }
        // (A resumed epoch counts the rows since the resume.)
        if first_step == 0 && rows_seen != expected_rows && !cut_short {
            return Err(Error::internal(format!(
                "epoch {epoch}: trained on {rows_seen} rows, expected {expected_rows}"
            )));
        }
        // The same parameters everywhere at the epoch's end.
        check_same_params(self.world, &self.params, self.iteration)?;
        // A resumed epoch still covered every row (an epoch cut short by early stopping covered
        // the rows up to its last step).
        let rows_covered = if first_step > 0 && patience == Patience::Left {
            expected_rows
        } else if first_step > 0 {
            running.rows
        } else {
            rows_seen
        };
        if patience == Patience::Left {
            self.rows_per_epoch = rows_covered;
        }
        Ok(PassFigures {
            steps,
            rows: rows_covered,
            rows_seen,
            running,
            seconds,
            eval_seconds,
            stall_seconds,
            queue_occupancy: queue.mean_occupancy(),
            queue_full_fraction: queue.full_fraction(),
            learning_rate,
            shuffle_spearman: mixing.spearman(),
            units_per_step: mixing.units_per_step(),
            files_dropped,
        })
    }

    /// The full-data metrics after epoch `epoch` (training data when asked, validation data
    /// unless it is evaluated every so many steps), the best epoch under early stopping, and
    /// the epoch's summary.
    fn evaluate_epoch(&mut self, epoch: usize, pass: PassFigures) -> Result<EpochSummary> {
        let eval_started = Instant::now();
        let standardize = self.config.standardize.as_ref();
        let train_metrics = match self.config.eval {
            Eval::EveryEpoch => Some(evaluate_stream(
                self.stream,
                &mut self.engine,
                &self.params,
                standardize,
            )?),
            Eval::Off => None,
        };
        self.check_finite(epoch, train_metrics, "the full-data loss")?;
        let valid_metrics = if self.validation.after_epochs() {
            let at = At {
                epoch,
                iteration: self.iteration,
            };
            let state = State {
                params: &self.params,
                optimizer: self.optimizer.state(),
                standardize,
            };
            self.validation.evaluate(at, &mut self.engine, &state)?
        } else {
            None
        };
        let per_second = |x: f64| {
            if pass.seconds > 0.0 {
                x / pass.seconds
            } else {
                0.0
            }
        };
        Ok(EpochSummary {
            epoch,
            iterations: pass.steps,
            rows: pass.rows,
            train_loss: pass.running.mean(),
            train_loss_rows: pass.running.rows,
            full_loss: train_metrics.map(|m| m.loss),
            accuracy: train_metrics.and_then(|m| m.accuracy),
            rmse: train_metrics.and_then(|m| m.rmse),
            valid: valid_metrics,
            learning_rate: pass.learning_rate,
            seconds: pass.seconds,
            rows_per_s: per_second(pass.rows_seen as f64),
            stall_fraction: per_second(pass.stall_seconds).min(1.0),
            // (Only passes that ran count: an epoch without one took no evaluation time.)
            eval_seconds: pass.eval_seconds
                + if train_metrics.is_some() || valid_metrics.is_some() {
                    eval_started.elapsed().as_secs_f64()
                } else {
                    0.0
                },
            queue_occupancy: pass.queue_occupancy,
            queue_full_fraction: pass.queue_full_fraction,
            shuffle_spearman: pass.shuffle_spearman,
            units_per_step: pass.units_per_step,
            rows_skipped: pass.files_dropped.iter().map(|d| d.rows_skipped).sum(),
            files_dropped: pass.files_dropped,
        })
    }

    /// Fails when an evaluation's loss is not finite.
    fn check_finite(
        &self,
        epoch: usize,
        metrics: Option<Metrics>,
        what: &'static str,
    ) -> Result<()> {
        if metrics.is_some_and(|m| !m.loss.is_finite()) {
            return Err(diverged(epoch, self.iteration, what));
        }
        Ok(())
    }

    /// A step boundary after `steps` steps of epoch `epoch` (from 1), whose training-loss sums
    /// are `running`, or after the whole epoch when `epoch_done`: writes a checkpoint when one
    /// is `due` or training was interrupted, then returns [`Error::Interrupted`] if it was
    /// (unless the run just ended).
    fn stop_point(
        &mut self,
        epoch: usize,
        steps: u64,
        epoch_done: bool,
        due: bool,
        running: RunningLoss,
    ) -> Result<()> {
        if let Some(c) = self.checkpointer.as_mut()
            && (due || self.interrupted)
        {
            let at = Boundary {
                epoch: epoch as u64 - 1,
                steps,
                epoch_done,
            };
            let state = RunState {
                params: &self.params,
                optimizer: self.optimizer.state(),
                best: self.validation.best(),
                epochs: &self.epochs,
                running,
                last_validation: self.validation.last(),
            };
            c.write(at, self.iteration, &state)?;
        }
        let finished = epoch == self.config.epochs && epoch_done;
        if self.interrupted && !finished {
            return Err(Error::Interrupted {
                epoch,
                iteration: self.iteration,
                checkpoint: self.checkpointer.as_ref().and_then(|c| c.last().cloned()),
            });
        }
        Ok(())
    }

    /// The result: the last (or, with early stopping, the best) parameters, as learned (in the
    /// standardised space when standardising).
    fn finish(self) -> TrainResult {
        let (best, last_validation) = self.validation.into_parts();
        let best_epoch = best.as_ref().map(|b| b.epoch);
        let best_iteration = best.as_ref().map(|b| b.iteration);
        let (params, optimizer_state) = match best {
            Some(b) => (b.params, b.optimizer),
            None => (self.params, self.optimizer.state().clone()),
        };
        TrainResult {
            params,
            optimizer_state,
            best_epoch,
            best_iteration,
            stopped_early: self.stopped_early,
            last_validation,
            epochs: self.epochs,
            iterations_per_epoch: self.stream.steps_in_epoch(0),
            rows_per_epoch: self.rows_per_epoch,
            seconds: self.started.elapsed().as_secs_f64(),
            resumed: self.resumed,
            last_checkpoint: self.checkpointer.and_then(|c| c.last().cloned()),
        }
    }
}

/// Whether early stopping's patience is left after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patience {
    Left,
    /// «early_stop» evaluations in a row found no lower validation loss: the run stops.
    RanOut,
}

fn diverged(epoch: usize, iteration: u64, what: &'static str) -> Error {
    Error::Diverged {
        epoch,
        iteration,
        what,
    }
}
