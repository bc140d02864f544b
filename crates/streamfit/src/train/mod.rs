//! Training: the loop that turns a stream of batches into parameters.
//!
//! Layer 2: consumes the [`Pipeline`]'s batches and knows nothing of files. One step is b rows
//! (possibly several batches); after its last batch the averaged gradient goes to the
//! optimizer. `b = 1` is SGD, `b = N` (or [`BatchSize::Full`]) is batch gradient descent whose
//! gradient is accumulated over the streamed epoch, and everything between is mini-batch GD:
//! one algorithm, one knob. After each epoch an unshuffled streamed pass computes the
//! full-data loss (unless turned off).

pub mod checkpoint;
pub mod gradient;
pub mod output;
pub mod standardize;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::comm::{Collective, SingleProcess};
use crate::data::RowBlock;
use crate::data::source::Source;
use crate::error::{Error, Result};
use crate::model::{Head, Metrics, Model, ModelSpec};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerState};
use crate::pipeline::{CursorTracker, LastBatch, Pipeline, PipelineConfig, Shuffle};

pub use self::checkpoint::{Checkpoint, CheckpointConfig, RunFingerprint};
pub use self::gradient::{CHUNK_ROWS, GradientEngine};
pub use self::output::{MetricsWriter, ModelFile, Report, SavedOptimizer, SkippedFile};
pub use self::standardize::Standardization;

/// Rows per step.
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
    /// Passes over the data. By default 1.
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
    /// if checkpoints are on, and return [`Error::Interrupted`].
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
    /// Mean loss over all rows after the epoch (None when evaluation is off).
    pub full_loss: Option<f64>,
    /// Share of training rows classified correctly after the epoch (classification, with
    /// evaluation on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Root mean squared error over the training rows after the epoch (regression, with
    /// evaluation on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// Loss and accuracy or RMSE on the validation data (`--valid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<Metrics>,
    /// Learning rate of the epoch's last step.
    #[serde(default)]
    pub learning_rate: f32,
    /// Seconds of the training pass (excluding evaluation).
    pub seconds: f64,
    /// Training rows per second.
    pub rows_per_s: f64,
    /// Share of the training pass the trainer waited for data.
    pub stall_fraction: f64,
    /// Seconds of the evaluation pass.
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
    /// For each batch this process trains on, before its gradient: the rows' global ids.
    fn on_batch(&mut self, _epoch: usize, _row_ids: &[u64]) -> Result<()> {
        Ok(())
    }
}

/// An observer that ignores everything.
impl TrainObserver for () {}

/// The best epoch so far under `--early-stop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestModel {
    /// Epoch (from 1) whose parameters these are.
    pub epoch: usize,
    /// Its validation loss.
    pub valid_loss: f64,
    /// Its parameters (in the standardised space when standardising).
    pub params: Vec<f32>,
    /// The optimizer's state after that epoch (what the saved model carries).
    pub optimizer: OptimizerState,
}

/// The outcome of [`train`].
#[derive(Debug, Clone)]
pub struct TrainResult {
    /// Final parameters in the model's layout (`[w_0 .. w_{d-1}, bias]` for the linear
    /// models), for raw features (standardisation, when on, is folded back into them). With
    /// `--early-stop`, the best epoch's.
    pub params: Vec<f32>,
    /// The optimizer's state that goes with `params`: after the last step, or with
    /// `--early-stop` after the best epoch.
    pub optimizer_state: OptimizerState,
    /// With `--early-stop`: the epoch whose parameters were kept.
    pub best_epoch: Option<usize>,
    /// With `--early-stop`: the number of epochs run when patience ran out.
    pub stopped_early: Option<usize>,
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

    /// Full-data loss after the last epoch, when evaluated.
    pub fn final_loss(&self) -> Option<f64> {
        self.epochs.last().and_then(|e| e.full_loss)
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

/// Pipeline settings for step size `batch` on a dataset of `num_rows`: pieces are a multiple
/// of [`CHUNK_ROWS`], and `Full` becomes one step of all rows.
pub fn step_rows(batch: BatchSize, num_rows: u64) -> u64 {
    match batch {
        BatchSize::Rows(b) => b,
        BatchSize::Full => num_rows.max(1),
    }
}

/// Shuffle-quality figures of one epoch, from the emitted row ids.
struct Mixing<'a> {
    units: &'a [crate::data::source::Unit],
    /// Position of the next emitted row in the epoch.
    position: u64,
    /// Σ (position − row id)², for Spearman's ρ = 1 − 6·Σd² / (n(n² − 1)).
    squared_rank_gaps: f64,
    counted: u64,
    /// Sampled steps and their distinct units.
    sampled_steps: u64,
    sampled_units: u64,
    step_units: Vec<usize>,
    sampling_step: Option<u64>,
}

impl<'a> Mixing<'a> {
    fn new(units: &'a [crate::data::source::Unit], first_position: u64) -> Self {
        Mixing {
            units,
            position: first_position,
            squared_rank_gaps: 0.0,
            counted: 0,
            sampled_steps: 0,
            sampled_units: 0,
            step_units: Vec::new(),
            sampling_step: None,
        }
    }

    /// Adds a batch of step `step` (completed steps before it).
    fn add(&mut self, ids: &[u64], step: u64) {
        for &id in ids {
            let gap = self.position as f64 - id as f64;
            self.squared_rank_gaps += gap * gap;
            self.position += 1;
        }
        self.counted += ids.len() as u64;
        if step.is_multiple_of(8) {
            if self.sampling_step != Some(step) {
                self.flush_step();
                self.sampling_step = Some(step);
            }
            for &id in ids {
                let unit = self
                    .units
                    .partition_point(|u| u.first_row_id + u.num_rows <= id);
                if !self.step_units.contains(&unit) {
                    self.step_units.push(unit);
                }
            }
        }
    }

    fn flush_step(&mut self) {
        if self.sampling_step.take().is_some() {
            self.sampled_steps += 1;
            self.sampled_units += self.step_units.len() as u64;
            self.step_units.clear();
        }
    }

    /// Spearman's ρ between stream position and file position (row ids are the file ranks).
    /// Exact for a whole epoch of all rows; an approximation for a resumed epoch (the rows
    /// seen since) or with `--drop-last` (ids not a full ranking).
    fn spearman(&self) -> f64 {
        let n = self.counted as f64;
        if self.counted == 0 || n < 2.0 {
            return 1.0;
        }
        1.0 - 6.0 * self.squared_rank_gaps / (n * (n * n - 1.0))
    }

    fn units_per_step(&mut self) -> f64 {
        self.flush_step();
        self.sampled_units as f64 / self.sampled_steps.max(1) as f64
    }
}

/// The fingerprint of a run: what a resume must not change.
pub fn fingerprint(pipeline: &Pipeline, config: &TrainerConfig) -> RunFingerprint {
    let cfg = pipeline.config();
    let schema = pipeline.source().schema();
    RunFingerprint {
        model: config.model.clone(),
        optimizer: config.optimizer.clone(),
        init_seed: config.init_seed,
        early_stop: config.early_stop,
        schedule_steps: (config.optimizer.schedule == crate::optim::LrSchedule::Cosine)
            .then(|| pipeline.total_steps(config.epochs)),
        world: cfg.world,
        batch_rows: cfg.step_rows,
        drop_last: cfg.last_batch == LastBatch::Drop,
        shuffle_seed: match cfg.shuffle {
            Shuffle::Off => None,
            Shuffle::Seeded(seed) => Some(seed),
        },
        shuffle_buffer_rows: cfg.shuffle_buffer_rows,
        features: schema.feature_names.clone(),
        label: schema.label.clone(),
        standardize: config.standardize.clone(),
    }
}

/// What a checkpoint saves besides the stream position.
struct RunState<'a> {
    params: &'a [f32],
    optimizer: &'a OptimizerState,
    best: Option<&'a BestModel>,
    epochs: &'a [EpochSummary],
}

/// Writes checkpoints for one run.
struct Checkpointer<'a> {
    config: &'a CheckpointConfig,
    fingerprint: RunFingerprint,
    data: Vec<checkpoint::DataFile>,
    /// Follow the current epoch's shuffle state of each rank (created on the first mid-epoch
    /// checkpoint); one for a single process.
    trackers: Vec<Option<CursorTracker>>,
    /// In a data-parallel run, a pipeline for each rank's share (to replay its stream).
    rank_pipelines: Vec<Pipeline>,
    last: Option<PathBuf>,
}

impl Checkpointer<'_> {
    /// Writes a checkpoint after `steps` steps of epoch `epoch` (from 0), or after the whole
    /// epoch when `epoch_done`. In a data-parallel run it records every rank's stream: rank r
    /// has taken min(steps, the steps of its share) steps.
    fn write(
        &mut self,
        pipeline: &Pipeline,
        (epoch, steps, epoch_done): (u64, u64, bool),
        iteration: u64,
        state: &RunState<'_>,
    ) -> Result<()> {
        let _span = tracing::trace_span!("checkpoint", iteration).entered();
        let world = pipeline.config().world;
        if self.trackers.len() != world {
            self.trackers = (0..world).map(|_| None).collect();
        }
        let (next_epoch, cursor, rank_cursors) = if epoch_done {
            self.trackers.iter_mut().for_each(|t| *t = None);
            (epoch + 1, None, Vec::new())
        } else if world <= 1 {
            let tracker =
                self.trackers[0].get_or_insert_with(|| CursorTracker::new(pipeline, epoch));
            (epoch, Some(tracker.advance_to(steps)), Vec::new())
        } else {
            if self.rank_pipelines.len() != world {
                self.rank_pipelines = (0..world)
                    .map(|rank| {
                        let config = PipelineConfig {
                            rank,
                            ..pipeline.config().clone()
                        };
                        Pipeline::new(pipeline.source().clone(), config)
                    })
                    .collect();
            }
            let mut cursors = Vec::with_capacity(world);
            for (share, tracker) in self.rank_pipelines.iter().zip(&mut self.trackers) {
                let share_steps = share.epoch_rows(epoch).div_ceil(share.config().step_rows);
                let tracker = tracker.get_or_insert_with(|| CursorTracker::new(share, epoch));
                cursors.push(tracker.advance_to(steps.min(share_steps)));
            }
            (epoch, None, cursors)
        };
        let checkpoint = Checkpoint {
            fingerprint_hash: self.fingerprint.hash(),
            fingerprint: self.fingerprint.clone(),
            data: self.data.clone(),
            iteration,
            next_epoch,
            cursor,
            rank_cursors,
            params: state.params.to_vec(),
            optimizer_state: state.optimizer.clone(),
            best: state.best.cloned(),
            epochs_done: state.epochs.to_vec(),
        };
        self.last = Some(checkpoint.save(self.config)?);
        Ok(())
    }
}

/// Trains a model on `pipeline`'s data; see the module docs.
pub fn train(
    pipeline: &Pipeline,
    config: &TrainerConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainResult> {
    train_validated(pipeline, None, config, observer)
}

/// Trains like [`train`], evaluating on `valid` (a pipeline over other data with the same
/// columns, built with [`eval_config`]) after every epoch, and stopping early on it when
/// `config.early_stop` is set.
pub fn train_validated(
    pipeline: &Pipeline,
    valid: Option<&Pipeline>,
    config: &TrainerConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainResult> {
    train_ranks(pipeline, valid, config, observer, &SingleProcess)
}

/// Steps between checks that every rank holds the same parameters.
const PARAMS_CHECK_EVERY: u64 = 64;

/// Trains like [`train_validated`] as one rank of a data-parallel run: `pipeline` (and
/// `valid`) read this rank's share of the units ([`PipelineConfig::rank`]); every step, the
/// ranks sum their gradient sums and row counts with `comm` and apply the same update, so the
/// parameters stay identical on every rank (checked every 64 steps). A rank whose share is
/// used up keeps stepping with zero rows until the summed row count is zero, which ends the
/// epoch on every rank at once. With [`SingleProcess`] this is exactly [`train_validated`].
pub fn train_ranks(
    pipeline: &Pipeline,
    valid: Option<&Pipeline>,
    config: &TrainerConfig,
    observer: &mut dyn TrainObserver,
    comm: &dyn Collective,
) -> Result<TrainResult> {
    debug_assert_eq!(pipeline.config().piece_rows % CHUNK_ROWS, 0);
    let parallel = comm.size() > 1;
    if config.early_stop.is_some() && valid.is_none() {
        return Err(Error::config(
            "early_stop",
            "needs validation data («valid»)",
        ));
    }
    if let Some(v) = valid
        && v.source().schema().feature_names != pipeline.source().schema().feature_names
    {
        return Err(Error::config(
            "valid",
            format!(
                "{} has features [{}], the training data [{}]",
                v.source().files()[0].display(),
                v.source().schema().feature_names.join(", "),
                pipeline.source().schema().feature_names.join(", ")
            ),
        ));
    }
    let source = pipeline.source();
    let model = config.model.build(source.num_features());
    let model = model.as_ref();
    if model.num_params() > crate::model::MAX_PARAMS {
        return Err(Error::config(
            "hidden",
            format!(
                "the model would have {} parameters, more than the {} streamfit allows",
                model.num_params(),
                crate::model::MAX_PARAMS
            ),
        ));
    }
    let head = model.head();
    let mut params = model.init_params(config.init_seed);
    let mut grad = vec![0.0f32; model.num_params()];
    let steps_per_epoch = pipeline.steps_per_epoch();
    let total_steps = pipeline.total_steps(config.epochs);
    let mut engine = GradientEngine::new(model, config.num_threads)?;
    let eval_pipeline = Pipeline::new(source.clone(), eval_config(pipeline.config(), source));
    let started = Instant::now();
    let mut epochs = Vec::with_capacity(config.epochs);
    let mut iteration = 0u64;
    let mut rows_per_epoch = pipeline.rows_per_epoch();
    let fingerprint = fingerprint(pipeline, config);
    let needs_identity = config.checkpoint.is_some() || config.resume.is_some();
    let data = if needs_identity {
        checkpoint::data_identity(source.as_ref())?
    } else {
        Vec::new()
    };
    // Rank 0 writes the checkpoints (for every rank) in a data-parallel run.
    let mut checkpointer = config
        .checkpoint
        .as_ref()
        .filter(|_| comm.rank() == 0)
        .map(|c| Checkpointer {
            config: c,
            fingerprint: fingerprint.clone(),
            data: data.clone(),
            trackers: Vec::new(),
            rank_pipelines: Vec::new(),
            last: None,
        });
    let mut first_epoch = 0u64;
    let mut resume_cursor = None;
    let mut resume_steps = 0u64;
    let mut resumed = None;
    let mut optimizer_state = None;
    let mut best: Option<BestModel> = None;
    if let Some(checkpoint) = &config.resume {
        checkpoint.check_compatible(&fingerprint, &data)?;
        if checkpoint.params.len() != params.len()
            || !Optimizer::state_fits(&config.optimizer, params.len(), &checkpoint.optimizer_state)
        {
            return Err(Error::config(
                "resume",
                "the checkpoint's parameter count does not match the model",
            ));
        }
        params.copy_from_slice(&checkpoint.params);
        optimizer_state = Some(checkpoint.optimizer_state.clone());
        best = checkpoint.best.clone();
        epochs = checkpoint.epochs_done.clone();
        iteration = checkpoint.iteration;
        first_epoch = checkpoint.next_epoch;
        resume_cursor = if parallel {
            checkpoint.rank_cursors.get(comm.rank()).cloned()
        } else {
            checkpoint.cursor.clone()
        };
        // Steps of the interrupted epoch done by then (over all ranks).
        let before: u64 = epochs.iter().map(|e| e.iterations).sum();
        resume_steps = iteration.saturating_sub(before);
        resumed = Some(ResumeInfo {
            from_iteration: iteration,
            epoch: first_epoch + 1,
            rows_reread: 0,
        });
    }
    if parallel {
        // Every rank must start from the same state (the same data, the same checkpoint or
        // none), or their collectives would not line up.
        let mut state = Vec::new();
        state.extend(fingerprint.hash().to_le_bytes());
        state.extend(iteration.to_le_bytes());
        state.extend(first_epoch.to_le_bytes());
        for unit in source.units() {
            state.extend(unit.num_rows.to_le_bytes());
        }
        for p in &params {
            state.extend(p.to_le_bytes());
        }
        if !comm.all_equal(u64::from(crc32c::crc32c(&state))) {
            return Err(Error::config(
                "data/resume",
                "the ranks do not start from the same state: every rank must read the same data and resume from the same checkpoint (one «checkpoint_dir» every rank can read)",
            ));
        }
    }
    let mut optimizer = Optimizer::new(
        config.optimizer.clone(),
        model.decays(),
        total_steps,
        optimizer_state,
    );
    let mut stopped_early = None;
    // Set once any rank has been signalled (SIGINT/SIGTERM): every rank stops at the same step.
    let mut interrupted = false;
    for epoch in (first_epoch as usize + 1)..=config.epochs {
        if let (Some(patience), Some(b)) = (config.early_stop, &best)
            && epoch - 1 - b.epoch >= patience
        {
            stopped_early = Some(epoch - 1);
            break;
        }
        let epoch_started = Instant::now();
        let (mut stream, mut steps) = match resume_cursor.take() {
            Some(cursor) if cursor.epoch == epoch as u64 - 1 => {
                let (stream, reread) = pipeline.resume(&cursor)?;
                if let Some(info) = resumed.as_mut() {
                    info.rows_reread = reread;
                }
                (stream, resume_steps)
            }
            Some(_) => {
                return Err(Error::config(
                    "resume",
                    "the checkpoint's stream cursor is for another epoch",
                ));
            }
            None => (pipeline.epoch(epoch as u64 - 1)?, 0),
        };
        let mut rows = 0u64;
        let first_step = steps;
        let mut learning_rate = optimizer.learning_rate();
        let mut mixing = Mixing::new(source.units(), first_step * pipeline.config().step_rows);
        let mut exhausted = false;
        loop {
            // This rank's part of the step: batches up to the one that ends a step, or none
            // once its share of the epoch is used up.
            while !exhausted {
                let Some(batch) = stream.next() else {
                    exhausted = true;
                    break;
                };
                let mut batch = batch?;
                check_labels(source.as_ref(), head, &batch.rows)?;
                observer.on_batch(epoch, batch.rows.row_ids())?;
                if let Some(s) = &config.standardize {
                    s.apply(&mut batch.rows);
                }
                engine.accumulate(&params, &batch.rows);
                mixing.add(batch.rows.row_ids(), steps);
                rows += batch.rows.num_rows() as u64;
                if batch.ends_step {
                    break;
                }
            }
            // Every rank's sums (and whether any rank was signalled); no rows anywhere ends
            // the epoch.
            let signal = interrupt_requested(config);
            let (batch_loss, step_rows, signalled) =
                engine.finish_step_across(comm, &mut grad, signal);
            interrupted |= signalled;
            if step_rows == 0 {
                break;
            }
            steps += 1;
            iteration += 1;
            if !batch_loss.is_finite() {
                return Err(diverged(epoch, iteration, "the batch loss"));
            }
            if grad.iter().any(|g| !g.is_finite()) {
                return Err(diverged(epoch, iteration, "the gradient"));
            }
            {
                let _span = tracing::trace_span!("update").entered();
                learning_rate = optimizer.step(&mut params, &mut grad);
            }
            if params.iter().any(|p| !p.is_finite()) {
                return Err(diverged(epoch, iteration, "a parameter after the update"));
            }
            if parallel && iteration.is_multiple_of(PARAMS_CHECK_EVERY) {
                check_same_params(comm, &params, iteration)?;
            }
            observer.on_step(&StepRecord {
                epoch,
                iteration,
                batch_loss,
                rows: step_rows,
            })?;
            // An epoch's last step is checkpointed after its evaluation, below. (A data-parallel
            // run learns that a step was the last only at the next one: its checkpoint then
            // holds every rank's stream at its end, which resumes into the evaluation.)
            if parallel || steps < steps_per_epoch {
                let due = checkpointer.as_ref().is_some_and(|c| {
                    c.config
                        .every_steps
                        .is_some_and(|k| iteration.is_multiple_of(k))
                });
                let state = RunState {
                    params: &params,
                    optimizer: optimizer.state(),
                    best: best.as_ref(),
                    epochs: &epochs,
                };
                stop_point(
                    config,
                    &mut checkpointer,
                    (due, interrupted),
                    (pipeline, epoch, steps, false, iteration),
                    &state,
                )?;
            }
        }
        let seconds = epoch_started.elapsed().as_secs_f64();
        let stall = stream.wait_time().as_secs_f64();
        let queue = stream.queue_stats();
        drop(stream);
        if parallel {
            // Every rank's rows, and the same parameters everywhere at the epoch's end.
            let mut total = [
                rows as f64,
                f64::from(u8::from(interrupt_requested(config))),
            ];
            comm.sum_in_place(&mut total);
            rows = total[0] as u64;
            interrupted |= total[1] > 0.0;
            // (A resumed epoch counts the rows since the resume.)
            if first_step == 0 && rows != source.num_rows() {
                return Err(Error::internal(format!(
                    "epoch {epoch}: the ranks trained on {rows} rows, expected {}",
                    source.num_rows()
                )));
            }
            check_same_params(comm, &params, iteration)?;
        } else if steps != steps_per_epoch {
            return Err(Error::internal(format!(
                "epoch {epoch} made {steps} steps, expected {steps_per_epoch}"
            )));
        }
        // Throughput counts the rows this run trained on; a resumed epoch still covered all.
        let rows_seen = rows;
        if first_step > 0 {
            rows = pipeline.rows_per_epoch();
        }
        rows_per_epoch = rows;
        let eval_started = Instant::now();
        let standardize = config.standardize.as_ref();
        let train_metrics = match config.eval {
            Eval::EveryEpoch => Some(evaluate_ranks(
                &eval_pipeline,
                &mut engine,
                &params,
                standardize,
                comm,
            )?),
            Eval::Off => None,
        };
        if train_metrics.is_some_and(|m| !m.loss.is_finite()) {
            return Err(diverged(epoch, iteration, "the full-data loss"));
        }
        let valid_metrics = valid
            .map(|v| evaluate_ranks(v, &mut engine, &params, standardize, comm))
            .transpose()?;
        if valid_metrics.is_some_and(|m| !m.loss.is_finite()) {
            return Err(diverged(epoch, iteration, "the validation loss"));
        }
        if let (Some(_), Some(v)) = (config.early_stop, valid_metrics)
            && best.as_ref().is_none_or(|b| v.loss < b.valid_loss)
        {
            best = Some(BestModel {
                epoch,
                valid_loss: v.loss,
                params: params.clone(),
                optimizer: optimizer.state().clone(),
            });
        }
        let summary = EpochSummary {
            epoch,
            iterations: steps,
            rows,
            full_loss: train_metrics.map(|m| m.loss),
            accuracy: train_metrics.and_then(|m| m.accuracy),
            rmse: train_metrics.and_then(|m| m.rmse),
            valid: valid_metrics,
            learning_rate,
            seconds,
            rows_per_s: if seconds > 0.0 {
                rows_seen as f64 / seconds
            } else {
                0.0
            },
            stall_fraction: if seconds > 0.0 {
                (stall / seconds).min(1.0)
            } else {
                0.0
            },
            eval_seconds: eval_started.elapsed().as_secs_f64(),
            queue_occupancy: queue.mean_occupancy(),
            queue_full_fraction: queue.full_fraction(),
            // Positions within one rank's stream are no ranking of the whole data.
            shuffle_spearman: if parallel {
                f64::NAN
            } else {
                mixing.spearman()
            },
            units_per_step: mixing.units_per_step(),
        };
        observer.on_epoch(&summary)?;
        epochs.push(summary);
        // Epoch ends are always checkpointed (when checkpoints are on).
        let state = RunState {
            params: &params,
            optimizer: optimizer.state(),
            best: best.as_ref(),
            epochs: &epochs,
        };
        if !parallel {
            interrupted |= interrupt_requested(config);
        }
        stop_point(
            config,
            &mut checkpointer,
            (true, interrupted),
            (pipeline, epoch, steps, true, iteration),
            &state,
        )?;
    }
    let best_epoch = best.as_ref().map(|b| b.epoch);
    let mut optimizer_state = optimizer.state().clone();
    if let Some(b) = best {
        params = b.params;
        optimizer_state = b.optimizer;
    }
    if let Some(s) = &config.standardize {
        params = s.fold(&params, model.input_layer_width());
    }
    Ok(TrainResult {
        params,
        optimizer_state,
        best_epoch,
        stopped_early,
        epochs,
        iterations_per_epoch: pipeline.steps_in_epoch(0),
        rows_per_epoch,
        seconds: started.elapsed().as_secs_f64(),
        resumed,
        last_checkpoint: checkpointer.and_then(|c| c.last),
    })
}

/// True once SIGINT/SIGTERM asked this process to stop.
fn interrupt_requested(config: &TrainerConfig) -> bool {
    config
        .interrupt
        .as_ref()
        .is_some_and(|flag| flag.load(Ordering::Relaxed))
}

/// A step boundary: writes a checkpoint when one is `due` or training was `interrupted`, then
/// returns [`Error::Interrupted`] if it was.
fn stop_point(
    config: &TrainerConfig,
    checkpointer: &mut Option<Checkpointer<'_>>,
    (due, interrupted): (bool, bool),
    (pipeline, epoch, steps, epoch_done, iteration): (&Pipeline, usize, u64, bool, u64),
    state: &RunState<'_>,
) -> Result<()> {
    if let Some(c) = checkpointer.as_mut()
        && (due || interrupted)
    {
        c.write(
            pipeline,
            (epoch as u64 - 1, steps, epoch_done),
            iteration,
            state,
        )?;
    }
    let finished = epoch == config.epochs && epoch_done;
    if interrupted && !finished {
        return Err(Error::Interrupted {
            epoch,
            iteration,
            checkpoint: checkpointer.as_ref().and_then(|c| c.last.clone()),
        });
    }
    Ok(())
}

fn diverged(epoch: usize, iteration: u64, what: &'static str) -> Error {
    Error::Diverged {
        epoch,
        iteration,
        what,
    }
}

/// Fails unless every rank holds bit-identical parameters (a CRC32C of their bytes).
fn check_same_params(comm: &dyn Collective, params: &[f32], iteration: u64) -> Result<()> {
    let bytes: Vec<u8> = params.iter().flat_map(|p| p.to_le_bytes()).collect();
    if comm.all_equal(u64::from(crc32c::crc32c(&bytes))) {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "the ranks' parameters differ after iteration {iteration}"
        )))
    }
}

/// Resident bytes of training `model` beyond the data in flight: the parameters, the gradient,
/// its f64 sums, the optimizer's moments, the best-epoch copy, one gradient slot per chunk of a
/// `piece_rows` batch, and each of `threads` threads' activation scratch for a chunk.
pub fn model_memory_bytes(model: &dyn Model, piece_rows: usize, threads: usize) -> u64 {
    let p = model.num_params() as u64;
    let slots = piece_rows.div_ceil(CHUNK_ROWS) as u64;
    let per_param = 4 + 4 + 8 + 8 + 4 + 4 * slots;
    let scratch = (model.scratch_per_row() * CHUNK_ROWS * threads) as u64 * 4;
    p * per_param + scratch
}

/// Refuses a row whose label the head cannot take (a multiclass label that is not a class id
/// in 0..K), naming the file and the row in it.
pub fn check_labels(source: &dyn Source, head: Head, rows: &RowBlock) -> Result<()> {
    let Head::Multiclass(classes) = head else {
        return Ok(());
    };
    let bad = rows.targets().iter().position(|&y| !head.accepts(y));
    let Some(i) = bad else {
        return Ok(());
    };
    let id = rows.row_ids()[i];
    let units = source.units();
    let unit = &units[units.partition_point(|u| u.first_row_id + u.num_rows <= id)];
    let file_start = units
        .iter()
        .find(|u| u.file == unit.file)
        .map_or(0, |u| u.first_row_id);
    Err(Error::BadLabel {
        file: source.files()[unit.file].clone(),
        row: id - file_start,
        column: source.schema().label.clone(),
        value: f64::from(rows.targets()[i]),
        classes,
    })
}

/// The evaluation pass: file order, every row, batches as large as the pipeline allows.
pub fn eval_config(train: &PipelineConfig, source: &Arc<dyn Source>) -> PipelineConfig {
    PipelineConfig {
        step_rows: source.num_rows().max(1),
        last_batch: LastBatch::Keep,
        shuffle: Shuffle::Off,
        ..train.clone()
    }
}

/// Mean loss and accuracy or RMSE over every row of `pipeline`'s data at `params`, streamed
/// (rows standardised first when `standardize` is given).
pub fn evaluate(
    pipeline: &Pipeline,
    engine: &mut GradientEngine<'_>,
    params: &[f32],
    standardize: Option<&Standardization>,
) -> Result<Metrics> {
    evaluate_ranks(pipeline, engine, params, standardize, &SingleProcess)
}

/// [`evaluate`] as one rank of a data-parallel run: each rank evaluates its share of the
/// units and the sums are added across ranks.
pub fn evaluate_ranks(
    pipeline: &Pipeline,
    engine: &mut GradientEngine<'_>,
    params: &[f32],
    standardize: Option<&Standardization>,
    comm: &dyn Collective,
) -> Result<Metrics> {
    let mut sums = crate::model::EvalSums::default();
    let source = pipeline.source();
    let head = engine.head();
    for batch in pipeline.epoch(0)? {
        let mut batch = batch?;
        check_labels(source.as_ref(), head, &batch.rows)?;
        if let Some(s) = standardize {
            s.apply(&mut batch.rows);
        }
        sums.add(&engine.eval_sums(params, &batch.rows));
    }
    if comm.size() > 1 {
        let mut all = [
            sums.rows as f64,
            sums.loss,
            sums.correct as f64,
            sums.squared_error,
        ];
        comm.sum_in_place(&mut all);
        sums = crate::model::EvalSums {
            rows: all[0] as u64,
            loss: all[1],
            correct: all[2] as u64,
            squared_error: all[3],
        };
    }
    let expected = source.num_rows();
    if sums.rows != expected {
        return Err(Error::internal(format!(
            "evaluation saw {} rows, expected {expected}",
            sums.rows
        )));
    }
    Ok(sums.metrics(head))
}
