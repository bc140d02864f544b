//! A training run from its options to its output files: everything between a
//! [`TrainConfig`] and the trainer's loop.
//!
//! Layer 3. [`PreparedRun::new`] checks the options, opens the training and validation data,
//! counts the classes of a multiclass model when they are to come from the data, computes the
//! standardisation statistics, loads the checkpoint to resume from (moving corrupt newer ones
//! aside), builds the pipelines and the memory budget, and makes sure the outputs can be
//! written, all before any thread of the trainer starts. [`PreparedRun::train`] trains (writing
//! the metrics file as it goes), [`PreparedRun::report`] builds the report and
//! [`PreparedRun::write_outputs`] writes the model, report and plot. What preparing finds on
//! the way is [`PrepareEvent`]s, facts for the front end to show; this module prints nothing,
//! draws no progress, and installs no signal handler or tracing subscriber: those are the
//! front end's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::comm::Collective;
use crate::config::{Outputs, Resume, TrainConfig};
use crate::data::source::Source;
use crate::data::source::parquet::SkippedFiles;
use crate::error::{Error, Result};
use crate::inspect::dataset_stats;
use crate::pipeline::{Pipeline, Shuffle};
use crate::plot::LossCurves;
use crate::telemetry::{Profile, SpanTable, peak_rss_bytes};
use crate::train::{
    Checkpoint, CheckpointConfig, EpochSummary, MetricsWriter, ModelFile, Report, SavedOptimizer,
    SkippedFile, Standardization, StepRecord, TrainObserver, TrainResult, eval_config, train_ranks,
};

/// What preparing a run found or did, in the order it happened. The front end shows these
/// (the command line prints the warnings always, the rest unless quiet).
#[derive(Debug, Clone, PartialEq)]
pub enum PrepareEvent {
    /// The classes of a multiclass model were counted: K = the largest label + 1.
    ClassesCounted {
        classes: usize,
        largest_label: f64,
        /// Rows read.
        rows: u64,
        seconds: f64,
    },
    /// A warning: a file of the training data could not be opened and was left out
    /// ([`crate::config::OnBadFile::Skip`]).
    FileSkipped { path: PathBuf, error: String },
    /// The standardisation statistics were computed.
    Standardized {
        num_features: usize,
        /// Rows read.
        rows: u64,
        seconds: f64,
    },
    /// A warning: a checkpoint newer than the one resumed from failed its checks (the text
    /// says which and why).
    CheckpointSkipped { warning: String },
    /// A warning: that unusable newer checkpoint was renamed, so that it neither counts
    /// towards `keep_checkpoints` nor shadows the checkpoints this run writes.
    CheckpointMovedAside { from: PathBuf, to: PathBuf },
    /// The run continues from this checkpoint.
    Resuming {
        path: PathBuf,
        iteration: u64,
        /// The epoch it continues in, from 1.
        epoch: usize,
    },
}

impl PrepareEvent {
    /// True for the events that report a problem the run works around.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            PrepareEvent::FileSkipped { .. }
                | PrepareEvent::CheckpointSkipped { .. }
                | PrepareEvent::CheckpointMovedAside { .. }
        )
    }
}

/// Hands each event to the caller as it happens and keeps it.
struct Events<'f> {
    seen: Vec<PrepareEvent>,
    on_event: &'f mut dyn FnMut(&PrepareEvent),
}

impl Events<'_> {
    fn push(&mut self, event: PrepareEvent) {
        (self.on_event)(&event);
        self.seen.push(event);
    }
}

/// A run whose options are checked, data opened and settings resolved, ready to train.
pub struct PreparedRun<'c> {
    /// The options with everything resolved: K, the step size, rank and world, and the
    /// trainer's standardisation, checkpoint and resume settings.
    config: TrainConfig,
    comm: &'c dyn Collective,
    source: Arc<dyn Source>,
    valid_source: Option<Arc<dyn Source>>,
    skipped: SkippedFiles,
    pipeline: Pipeline,
    valid_pipeline: Option<Pipeline>,
    budget_bytes: u64,
    events: Vec<PrepareEvent>,
    metrics: Option<MetricsWriter>,
    /// Collected for `outputs.plot`.
    curves: Option<LossCurves>,
}

impl<'c> PreparedRun<'c> {
    /// Prepares `config` for this process of `comm`'s job; see the module docs. The events
    /// are kept ([`PreparedRun::events`]).
    pub fn new(config: TrainConfig, comm: &'c dyn Collective) -> Result<Self> {
        Self::with_events(config, comm, &mut |_| {})
    }

    /// Prepares like [`PreparedRun::new`], handing each event to `on_event` as it happens
    /// (a pass over the data can take a while).
    pub fn with_events(
        mut config: TrainConfig,
        comm: &'c dyn Collective,
        on_event: &mut dyn FnMut(&PrepareEvent),
    ) -> Result<Self> {
        let mut events = Events {
            seen: Vec::new(),
            on_event,
        };
        config.rank = comm.rank();
        config.world = comm.size();
        if comm.rank() != 0 {
            // Rank 0 alone writes files.
            config.outputs = Outputs::default();
        }
        config.check()?;
        let (source, skipped) = config.open_source_skipping()?;
        if let Some(counted) = count_classes(&mut config, &source)? {
            events.push(counted);
        }
        config.check()?;
        let valid_source = config.open_valid()?;
        for (path, error) in &skipped {
            events.push(PrepareEvent::FileSkipped {
                path: path.clone(),
                error: error.clone(),
            });
        }
        let budget_bytes = config.memory_budget_bytes(&source);
        config.trainer.standardize = None;
        if config.standardize {
            let started = Instant::now();
            let stats = dataset_stats(source.clone(), config.num_readers)?;
            config.trainer.standardize = Some(Standardization::from_stats(&stats));
            events.push(PrepareEvent::Standardized {
                num_features: source.num_features(),
                rows: stats.rows,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        config.trainer.checkpoint = config.checkpoint_dir.clone().map(|dir| CheckpointConfig {
            dir,
            every_steps: config.checkpoint_every,
            keep: config.keep_checkpoints,
        });
        config.trainer.resume = load_resume(&config, comm, &mut events)?.map(Box::new);
        let pipeline = Pipeline::new(source.clone(), config.pipeline_config(source.num_rows()));
        config.set_epoch_steps(pipeline.steps_in_epoch(0));
        let valid_pipeline = valid_source
            .as_ref()
            .map(|v| Pipeline::new(v.clone(), eval_config(pipeline.config(), v)));
        if pipeline.steps_per_epoch() == 0 {
            return Err(Error::config(
                "batch_size",
                format!(
                    "with «drop_last», a batch of {} rows leaves no full batch in {} rows",
                    pipeline.config().step_rows,
                    source.num_rows()
                ),
            ));
        }
        // Fail on an unwritable output before training, not after.
        let outputs = &config.outputs;
        for path in [&outputs.report, &outputs.save_model, &outputs.plot]
            .into_iter()
            .flatten()
        {
            check_output_dir(path)?;
        }
        let metrics = outputs
            .metrics
            .as_deref()
            .map(MetricsWriter::create)
            .transpose()?;
        let curves = outputs.plot.as_ref().map(|_| LossCurves::default());
        Ok(PreparedRun {
            config,
            comm,
            source,
            valid_source,
            skipped,
            pipeline,
            valid_pipeline,
            budget_bytes,
            events: events.seen,
            metrics,
            curves,
        })
    }

    /// The options, resolved: what the run will train with.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The training data.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// The validation data, when given.
    pub fn valid_source(&self) -> Option<&Arc<dyn Source>> {
        self.valid_source.as_ref()
    }

    /// Files of the training data left out as unreadable, with their errors.
    pub fn skipped_files(&self) -> &SkippedFiles {
        &self.skipped
    }

    /// The training pipeline (this rank's share in a data-parallel run).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Resident-memory budget of the run ([`TrainConfig::memory_budget_bytes`]).
    pub fn memory_budget_bytes(&self) -> u64 {
        self.budget_bytes
    }

    /// Rows the shuffle buffer holds: its size, or the dataset when smaller; 0 unshuffled.
    pub fn shuffle_rows(&self) -> u64 {
        match self.config.shuffle {
            Shuffle::Seeded(_) => self
                .config
                .shuffle_buffer_rows
                .min(self.source.num_rows() as usize) as u64,
            Shuffle::Off => 0,
        }
    }

    /// The checkpoint the run continues from, if any.
    pub fn resume(&self) -> Option<&Checkpoint> {
        self.config.trainer.resume.as_deref()
    }

    /// What preparing found, in order.
    pub fn events(&self) -> &[PrepareEvent] {
        &self.events
    }

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
            final_valid: last.and_then(|e| e.valid),
            best_epoch: result.best_epoch,
            stopped_early: result.stopped_early,
            optimizer: Some(self.config.trainer.optimizer.clone()),
            ranks: (world > 1).then_some(world),
            rows: self.source.num_rows(),
            num_features: self.source.num_features(),
            batch_size: self.pipeline.config().step_rows * world as u64,
            epochs: result.epochs.len(),
            iterations: result.iterations(),
            iterations_per_epoch: result.iterations_per_epoch,
            rows_per_epoch: result.rows_per_epoch,
            final_loss: result.final_loss(),
            seconds: result.seconds,
            rows_per_s: result.rows_per_s(),
            stall_fraction: result.stall_fraction(),
            peak_rss_bytes: peak_rss_bytes(),
            memory_budget_bytes: self.budget_bytes,
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
            standardization: trainer.standardize.clone(),
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

/// When `config` needs its classes counted ([`TrainConfig::needs_class_count`]): K = the
/// largest label of `source` + 1, found by one streamed pass, set in the model's head.
/// Returns what it found.
pub fn count_classes(
    config: &mut TrainConfig,
    source: &Arc<dyn Source>,
) -> Result<Option<PrepareEvent>> {
    if !config.needs_class_count() {
        return Ok(None);
    }
    let started = Instant::now();
    let stats = dataset_stats(source.clone(), config.num_readers)?;
    let max = stats.label.max;
    if !(max.is_finite() && max >= 0.0 && max.fract() == 0.0 && max < 1e6) {
        return Err(Error::config(
            "classes",
            format!("the largest label is {max}, not a class id; multiclass labels are 0..K-1"),
        ));
    }
    let classes = max as usize + 1;
    config.set_classes(classes);
    Ok(Some(PrepareEvent::ClassesCounted {
        classes,
        largest_label: max,
        rows: stats.rows,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// Refuses a checkpoint directory that holds checkpoints of another run, and loads the
/// checkpoint to resume from, if any.
fn load_resume(
    config: &TrainConfig,
    comm: &dyn Collective,
    events: &mut Events<'_>,
) -> Result<Option<Checkpoint>> {
    if let (Some(dir), None) = (&config.checkpoint_dir, &config.resume)
        && Checkpoint::exists_in(dir)
    {
        return Err(Error::config(
            "checkpoint_dir",
            format!(
                "{} already holds checkpoints; continue that run with «resume» auto, or use an empty directory",
                dir.display()
            ),
        ));
    }
    let dir = match (&config.resume, &config.checkpoint_dir) {
        (None, _) => return Ok(None),
        (Some(Resume::Auto), Some(dir)) if !Checkpoint::exists_in(dir) => return Ok(None),
        (Some(Resume::Auto), Some(dir)) => dir,
        (Some(Resume::Auto), None) => {
            return Err(Error::config("resume", "`auto` needs «checkpoint_dir»"));
        }
        (Some(Resume::Path(dir)), _) => dir,
    };
    let (checkpoint, path, warnings) = Checkpoint::load_latest(dir)?;
    for warning in warnings {
        events.push(PrepareEvent::CheckpointSkipped { warning });
    }
    // Newer files were skipped as corrupt: set them aside (rank 0 does it in a data-parallel
    // run; it alone writes checkpoints).
    let newer = if comm.rank() == 0 {
        Checkpoint::newer_than(dir, checkpoint.iteration)?
    } else {
        Vec::new()
    };
    for newer in newer {
        let aside = newer.with_extension("sfck.corrupt");
        if std::fs::rename(&newer, &aside).is_ok() {
            events.push(PrepareEvent::CheckpointMovedAside {
                from: newer,
                to: aside,
            });
        }
    }
    events.push(PrepareEvent::Resuming {
        path,
        iteration: checkpoint.iteration,
        epoch: checkpoint.next_epoch as usize + 1,
    });
    Ok(Some(checkpoint))
}

/// Errors unless `path`'s directory exists, so a typo fails before a long run, not after.
pub fn check_output_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::output(
            path,
            format!("directory {} does not exist", dir.display()),
        ));
    }
    Ok(())
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
        if let (Some(curves), Some(loss)) = (self.curves.as_deref_mut(), epoch.full_loss) {
            let at = curves.steps.last().map_or(0, |s| s.0);
            curves.epochs.push((at, loss));
        }
        if let Some(metrics) = self.metrics.as_deref_mut() {
            metrics.epoch(epoch)?;
        }
        self.inner.on_epoch(epoch)
    }
}
