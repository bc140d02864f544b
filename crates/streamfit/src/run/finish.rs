//! Training a prepared run and finishing it: the metrics file and loss curves as it trains,
//! then the profile, the report, the model file and the outputs.

use crate::error::Result;
use crate::plot::LossCurves;
use crate::telemetry::{Profile, SpanTable, peak_rss_bytes};
use crate::train::{
    EpochSummary, MetricsWriter, ModelFile, Report, SavedOptimizer, SkippedFile, StepRecord,
    TrainObserver, TrainResult, ValidationRecord, train_ranks,
};

use super::PreparedRun;

impl PreparedRun<'_> {
    /// Trains, handing progress to `observer` and writing the metrics file (when asked for)
    /// as it goes.
    pub fn train(&mut self, observer: &mut dyn TrainObserver) -> Result<TrainResult> {
        let mut recorder = Recorder {
            metrics: self.metrics.as_mut(),
            curves: self.curves.as_mut(),
            inner: observer,
        };
        train_ranks(
            &self.pipeline,
            self.valid_pipeline.as_ref(),
            &self.config.trainer,
            &mut recorder,
            self.comm,
        )
    }

    /// The per-stage profile of a run from its span totals over `wall_seconds`.
    pub fn profile(&self, spans: &SpanTable, wall_seconds: f64, result: &TrainResult) -> Profile {
        let epochs = &result.epochs;
        let asks: f64 = epochs
            .iter()
            .map(|e| e.iterations as f64)
            .sum::<f64>()
            .max(1.0);
        let weighted = |f: fn(&EpochSummary) -> f64| {
            epochs
                .iter()
                .map(|e| f(e) * e.iterations as f64)
                .sum::<f64>()
                / asks
        };
        Profile::build(
            spans,
            wall_seconds,
            4 * (self.source.num_features() as u64 + 1),
            result.stall_fraction(),
            weighted(|e| e.queue_occupancy),
            weighted(|e| e.queue_full_fraction),
        )
    }

    /// The report of a finished run (what `outputs.report` holds).
    pub fn report(&self, result: &TrainResult, profile: Option<Profile>) -> Report {
        let last = result.epochs.last();
        let world = self.comm.size();
        Report {
            model: self.config.trainer.model.kind,
            final_accuracy: last.and_then(|e| e.accuracy),
            final_rmse: last.and_then(|e| e.rmse),
            final_valid: result.final_valid(),
            valid_rows: self.valid_source.as_ref().map(|v| v.num_rows()),
            held_out: self.config.trainer.held_out.clone(),
            weight_column: self.config.trainer.weights.column.clone(),
            class_weights: {
                let weights = &self.config.trainer.weights.class_weights;
                (!weights.is_empty()).then(|| weights.clone())
            },
            best_epoch: result.best_epoch,
            best_iteration: result.best_iteration,
            stopped_early: result.stopped_early,
            optimizer: Some(self.config.trainer.optimizer.clone()),
            ranks: (world > 1).then_some(world),
            rows: self.source.num_rows(),
            num_features: self.source.num_features(),
            // The rows a step really had: a batch larger than the data is the whole data.
            batch_size: (self.pipeline.config().step_rows * world as u64)
                .min(self.source.num_rows()),
            epochs: result.epochs.len(),
            iterations: result.iterations(),
            iterations_per_epoch: result.iterations_per_epoch,
            rows_per_epoch: result.rows_per_epoch,
            train_loss: result.final_train_loss(),
            full_loss: result.final_loss(),
            seconds: result.seconds,
            rows_per_s: result.rows_per_s(),
            stall_fraction: result.stall_fraction(),
            peak_rss_bytes: peak_rss_bytes(),
            memory_budget_bytes: self.budget_bytes,
            read_mode: if self.reads_explicitly { "read" } else { "map" }.to_string(),
            epoch_summaries: result.epochs.clone(),
            resumed: result.resumed,
            profile,
            skipped_files: self
                .skipped
                .iter()
                .map(|(path, error)| SkippedFile {
                    path: path.clone(),
                    error: error.clone(),
                })
                .collect(),
        }
    }

    /// The model file of a finished run: parameters, columns, standardisation and optimizer.
    pub fn model_file(&self, result: &TrainResult) -> ModelFile {
        let trainer = &self.config.trainer;
        let schema = self.source.schema();
        ModelFile {
            optimizer: Some(SavedOptimizer {
                config: trainer.optimizer.clone(),
                state: result.optimizer_state.clone(),
            }),
            ..ModelFile::new(
                &trainer.model,
                schema.feature_names.clone(),
                schema.label.clone(),
                &result.params,
            )
            // The trainer's: the fitted preprocessing, or the one shards were stored with.
            .with_preprocessing(trainer.missing.clone(), trainer.positive_label.clone())
            .with_categorical(trainer.categorical.clone())
            .with_standardization(trainer.standardize.clone())
        }
    }

    /// Writes the outputs asked for: the model, the report and the loss plot.
    pub fn write_outputs(&self, result: &TrainResult, report: &Report) -> Result<()> {
        let outputs = &self.config.outputs;
        if let Some(path) = &outputs.save_model {
            self.model_file(result).save(path)?;
        }
        if let Some(path) = &outputs.report {
            report.save(path)?;
        }
        if let (Some(path), Some(curves)) = (&outputs.plot, &self.curves) {
            curves.draw(path, outputs.plot_log)?;
        }
        Ok(())
    }
}

/// Writes the metrics file and collects the loss curves, then passes everything on to the
/// caller's observer.
struct Recorder<'r> {
    metrics: Option<&'r mut MetricsWriter>,
    curves: Option<&'r mut LossCurves>,
    inner: &'r mut dyn TrainObserver,
}

impl TrainObserver for Recorder<'_> {
    fn on_batch(&mut self, epoch: usize, row_ids: &[u64]) -> Result<()> {
        self.inner.on_batch(epoch, row_ids)
    }

    fn on_step(&mut self, step: &StepRecord) -> Result<()> {
        if let Some(metrics) = self.metrics.as_deref_mut() {
            metrics.step(step)?;
        }
        if let Some(curves) = self.curves.as_deref_mut() {
            curves.steps.push((step.iteration, step.batch_loss));
        }
        self.inner.on_step(step)
    }

    fn on_epoch(&mut self, epoch: &EpochSummary) -> Result<()> {
        if let Some(curves) = self.curves.as_deref_mut() {
            curves.add_epoch(epoch);
        }
        if let Some(metrics) = self.metrics.as_deref_mut() {
            metrics.epoch(epoch)?;
        }
        self.inner.on_epoch(epoch)
    }

    fn on_validation(&mut self, record: &ValidationRecord) -> Result<()> {
        if let Some(curves) = self.curves.as_deref_mut() {
            curves.valid.push((record.iteration, record.valid_loss));
        }
        if let Some(metrics) = self.metrics.as_deref_mut() {
            metrics.validation(record)?;
        }
        self.inner.on_validation(record)
    }
}
