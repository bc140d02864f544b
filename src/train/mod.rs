//! Training: the loop that turns a stream of batches into parameters.
//!
//! Layer 2: consumes the [`Pipeline`]'s batches and knows nothing of files. One step is b rows
//! (possibly several batches); after its last batch the averaged gradient goes to the
//! optimizer. `b = 1` is SGD, `b = N` (or [`BatchSize::Full`]) is batch gradient descent whose
//! gradient is accumulated over the streamed epoch, and everything between is mini-batch GD:
//! one algorithm, one knob. After each epoch an unshuffled streamed pass computes the
//! full-data loss (unless turned off).

pub mod gradient;
pub mod output;
pub mod standardize;

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::source::Source;
use crate::error::{Error, Result};
use crate::model::{LinearModel, Model, ModelKind};
use crate::optim::{Optimizer, Sgd};
use crate::pipeline::{LastBatch, Pipeline, PipelineConfig, Shuffle};

pub use self::gradient::{CHUNK_ROWS, GradientEngine};
pub use self::output::{MetricsWriter, ModelFile, Report};
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
    /// Model kind. By default logistic.
    pub model: ModelKind,
    /// Learning rate of SGD. By default 0.1.
    pub learning_rate: f32,
    /// Passes over the data. By default 1.
    pub epochs: usize,
    /// Rayon threads for the gradient. By default all cores.
    pub num_threads: usize,
    /// Full-data loss after each epoch. By default on.
    pub eval: Eval,
    /// Train on z-scored features (the result's parameters are folded back to raw features).
    /// By default off.
    pub standardize: Option<Standardization>,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            model: ModelKind::Logistic,
            learning_rate: 0.1,
            epochs: 1,
            num_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            eval: Eval::EveryEpoch,
            standardize: None,
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
    /// Seconds of the training pass (excluding evaluation).
    pub seconds: f64,
    /// Training rows per second.
    pub rows_per_s: f64,
    /// Share of the training pass the trainer waited for data.
    pub stall_fraction: f64,
    /// Seconds of the evaluation pass.
    pub eval_seconds: f64,
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
}

/// An observer that ignores everything.
impl TrainObserver for () {}

/// The outcome of [`train`].
#[derive(Debug, Clone)]
pub struct TrainResult {
    /// Final parameters `[w_0 .. w_{d-1}, bias]`, for raw features (standardisation, when
    /// on, is folded back into them).
    pub params: Vec<f32>,
    /// One summary per epoch.
    pub epochs: Vec<EpochSummary>,
    /// Iterations in each epoch (ceil(N/b), or floor with drop-last).
    pub iterations_per_epoch: u64,
    /// Rows per epoch actually trained on.
    pub rows_per_epoch: u64,
    /// Wall-clock seconds of the whole run, evaluation included.
    pub seconds: f64,
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

/// Trains a model on `pipeline`'s data; see the module docs.
pub fn train(
    pipeline: &Pipeline,
    config: &TrainerConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainResult> {
    debug_assert_eq!(pipeline.config().piece_rows % CHUNK_ROWS, 0);
    let source = pipeline.source();
    let model = LinearModel::new(config.model, source.num_features());
    let mut params = vec![0.0f32; model.num_params()];
    let mut grad = vec![0.0f32; model.num_params()];
    let mut optimizer = Sgd::new(config.learning_rate);
    let mut engine = GradientEngine::new(&model, config.num_threads)?;
    let eval_pipeline = Pipeline::new(source.clone(), eval_config(pipeline.config(), source));
    let started = Instant::now();
    let mut epochs = Vec::with_capacity(config.epochs);
    let mut iteration = 0u64;
    let steps_per_epoch = pipeline.steps_per_epoch();
    let mut rows_per_epoch = 0;
    for epoch in 1..=config.epochs {
        let epoch_started = Instant::now();
        let mut stream = pipeline.epoch(epoch as u64 - 1)?;
        let mut rows = 0u64;
        let mut steps = 0u64;
        for batch in &mut stream {
            let mut batch = batch?;
            if let Some(s) = &config.standardize {
                s.apply(&mut batch.rows);
            }
            engine.accumulate(&params, &batch.rows);
            rows += batch.rows.num_rows() as u64;
            if !batch.ends_step {
                continue;
            }
            drop(batch); // hand the buffer back before the update
            let (batch_loss, step_rows) = engine.finish_step(&mut grad);
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
                optimizer.step(&mut params, &grad);
            }
            observer.on_step(&StepRecord {
                epoch,
                iteration,
                batch_loss,
                rows: step_rows,
            })?;
        }
        let seconds = epoch_started.elapsed().as_secs_f64();
        let stall = stream.wait_time().as_secs_f64();
        drop(stream);
        if steps != steps_per_epoch {
            return Err(Error::internal(format!(
                "epoch {epoch} made {steps} steps, expected {steps_per_epoch}"
            )));
        }
        rows_per_epoch = rows;
        let eval_started = Instant::now();
        let full_loss = match config.eval {
            Eval::EveryEpoch => Some(full_loss(
                &eval_pipeline,
                &mut engine,
                &params,
                config.standardize.as_ref(),
            )?),
            Eval::Off => None,
        };
        if full_loss.is_some_and(|l| !l.is_finite()) {
            return Err(diverged(epoch, iteration, "the full-data loss"));
        }
        let summary = EpochSummary {
            epoch,
            iterations: steps,
            rows,
            full_loss,
            seconds,
            rows_per_s: if seconds > 0.0 {
                rows as f64 / seconds
            } else {
                0.0
            },
            stall_fraction: if seconds > 0.0 {
                (stall / seconds).min(1.0)
            } else {
                0.0
            },
            eval_seconds: eval_started.elapsed().as_secs_f64(),
        };
        observer.on_epoch(&summary)?;
        epochs.push(summary);
    }
    if let Some(s) = &config.standardize {
        params = s.fold(&params);
    }
    Ok(TrainResult {
        params,
        epochs,
        iterations_per_epoch: steps_per_epoch,
        rows_per_epoch,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn diverged(epoch: usize, iteration: u64, what: &'static str) -> Error {
    Error::Diverged {
        epoch,
        iteration,
        what,
    }
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

/// Mean loss over every row of the dataset at `params`, streamed (rows standardised first
/// when `standardize` is given).
pub fn full_loss(
    pipeline: &Pipeline,
    engine: &mut GradientEngine<'_>,
    params: &[f32],
    standardize: Option<&Standardization>,
) -> Result<f64> {
    let mut loss = 0.0f64;
    let mut rows = 0u64;
    for batch in pipeline.epoch(0)? {
        let mut batch = batch?;
        if let Some(s) = standardize {
            s.apply(&mut batch.rows);
        }
        loss += engine.loss_sum(params, &batch.rows);
        rows += batch.rows.num_rows() as u64;
    }
    let expected = pipeline.source().num_rows();
    if rows != expected {
        return Err(Error::internal(format!(
            "evaluation saw {rows} rows, expected {expected}"
        )));
    }
    Ok(loss / rows as f64)
}
