//! [`Loader`]: the epochs of a pipeline, one whole [`Step`] at a time.
//!
//! The loader owns a [`Pipeline`] and at most one running pass of it. Starting an epoch starts
//! the pass (or resumes it from a loaded [`LoaderState`]); each [`Loader::next_step`] joins the
//! batches of one step into a [`Step`] the caller owns. A rank whose share of an epoch is used
//! up hands out empty steps until the epoch's step count (its largest share's) is reached, so
//! every rank makes the same number of steps. Dropping the loader, or starting another epoch,
//! stops and joins the running pass's threads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{LoaderSettings, LoaderState};
use crate::config::{OnBadFile, TrainConfig};
use crate::data::source::Source;
use crate::error::{Error, Result};
use crate::pipeline::{
    Batch, BatchStream, CursorTracker, LastBatch, Pipeline, QueueStats, Shuffle, Waited,
};
use crate::telemetry::{Profile, SpanTable};
use crate::train::{BatchSize, step_rows};

/// One step's rows, owned by the consumer: features row-major (`num_rows × num_features`),
/// one target and one global row id (its position in the dataset in file order) per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Epoch, from 0.
    pub epoch: u64,
    /// Step index within the epoch, from 0.
    pub index: u64,
    /// Features per row.
    pub num_features: usize,
    /// The features, row-major.
    pub features: Vec<f32>,
    /// One target per row.
    pub targets: Vec<f32>,
    /// One global row id per row.
    pub row_ids: Vec<u64>,
}

impl Step {
    /// Rows in the step (0 for a rank whose share of the epoch is used up).
    pub fn num_rows(&self) -> usize {
        self.targets.len()
    }
}

/// What [`Loader::next_step`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    /// The next step of the epoch.
    Step(Step),
    /// The epoch is over (or none was started).
    EndOfEpoch,
    /// No batch came within the time allowed; ask again.
    TimedOut,
}

/// The epoch being handed out.
struct Epoch {
    index: u64,
    /// The running pass; `None` once this rank's share is used up.
    stream: Option<BatchStream>,
    steps_done: u64,
    steps_total: u64,
    /// Rows this stream emits in the epoch (this rank's share).
    rows_total: u64,
    /// The step being joined from its batches.
    partial: Option<Step>,
}

/// Epochs of a pipeline built from a [`TrainConfig`], handed out in whole steps.
pub struct Loader {
    pipeline: Pipeline,
    settings: LoaderSettings,
    /// The epoch the next [`Loader::start_epoch`] starts.
    next_epoch: u64,
    /// A loaded state's epoch and steps, continued by the next [`Loader::start_epoch`].
    resume_at: Option<(u64, u64)>,
    current: Option<Epoch>,
    /// When the first epoch started (the profile's wall time).
    started: Option<Instant>,
    /// Waits and queue samples of the passes already finished.
    wait: Duration,
    queue: QueueStats,
}

impl Loader {
    /// Opens the data of `config` and builds the pipeline `streamfit train` would train on,
    /// except that in a data-parallel setting (`world > 1`) `batch_size` is per rank, as in a
    /// PyTorch `DataLoader`. The first epoch started is `epoch` (from 0). A unit that fails
    /// while being read fails the epoch (`on_bad_file` is not used).
    pub fn open(config: &TrainConfig, epoch: u64) -> Result<Loader> {
        if config.world == 0 {
            return Err(Error::config("world_size", "must be at least 1"));
        }
        if config.rank >= config.world {
            return Err(Error::config(
                "rank",
                format!("must be less than «world_size» ({})", config.world),
            ));
        }
        config.check()?;
        let source = config.open_source()?;
        let mut pipeline_config = config.pipeline_config(source.num_rows());
        pipeline_config.step_rows = step_rows(config.batch_size, source.num_rows());
        if let (BatchSize::Full, true) = (config.batch_size, config.world > 1) {
            // A full batch is all of this rank's rows: at most the whole dataset.
            pipeline_config.step_rows = source.num_rows().max(1);
        }
        pipeline_config.on_bad_file = OnBadFile::Error;
        pipeline_config.check()?;
        let settings = LoaderSettings {
            num_rows: source.num_rows(),
            features: source.schema().feature_names.clone(),
            label: source.schema().label.clone(),
            batch_rows: pipeline_config.step_rows,
            drop_last: pipeline_config.last_batch == LastBatch::Drop,
            shuffle_seed: match pipeline_config.shuffle {
                Shuffle::Off => None,
                Shuffle::Seeded(seed) => Some(seed),
            },
            shuffle_buffer_rows: pipeline_config.shuffle_buffer_rows,
            shuffle_lanes: pipeline_config.lanes(),
            rank: pipeline_config.rank,
            world: pipeline_config.world,
        };
        Ok(Loader {
            pipeline: Pipeline::new(source, pipeline_config),
            settings,
            next_epoch: epoch,
            resume_at: None,
            current: None,
            started: None,
            wait: Duration::ZERO,
            queue: QueueStats::default(),
        })
    }

    /// The data.
    pub fn source(&self) -> &Arc<dyn Source> {
        self.pipeline.source()
    }

    /// The pipeline the steps come from.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The settings that shape the batch sequence (what a state records).
    pub fn settings(&self) -> &LoaderSettings {
        &self.settings
    }

    /// Steps in epoch `epoch`, the same on every rank.
    pub fn steps_in_epoch(&self, epoch: u64) -> u64 {
        self.pipeline.steps_in_epoch(epoch)
    }

    /// The epoch being handed out, or else the one the next [`Loader::start_epoch`] starts.
    pub fn epoch(&self) -> u64 {
        match (&self.current, self.resume_at) {
            (Some(current), _) => current.index,
            (None, Some((epoch, _))) => epoch,
            (None, None) => self.next_epoch,
        }
    }

    /// Makes the next [`Loader::start_epoch`] start epoch `epoch` at its first step
    /// (forgetting a loaded state). The epoch being handed out, if any, goes on.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.next_epoch = epoch;
        self.resume_at = None;
    }

    /// Where the loader stands: inside the current epoch, or at the start of the next one.
    pub fn state(&self) -> LoaderState {
        let (epoch, batches) = match (&self.current, self.resume_at) {
            (Some(e), _) if e.steps_done < e.steps_total => (e.index, e.steps_done),
            (Some(e), _) => (e.index + 1, 0),
            (None, Some(at)) => at,
            (None, None) => (self.next_epoch, 0),
        };
        LoaderState {
            version: LoaderState::VERSION,
            epoch,
            batches,
            settings: self.settings.clone(),
        }
    }

    /// Makes the next [`Loader::start_epoch`] continue exactly where `state` stands (refused
    /// when it was taken under other settings). The epoch being handed out, if any, stops.
    pub fn load_state(&mut self, state: &LoaderState) -> Result<()> {
        state.check(&self.settings)?;
        self.finish_epoch();
        let at = if state.batches >= self.steps_in_epoch(state.epoch) {
            (state.epoch + 1, 0)
        } else {
            (state.epoch, state.batches)
        };
        self.next_epoch = at.0;
        self.resume_at = (at.1 > 0).then_some(at);
        Ok(())
    }

    /// Starts the next epoch (the one after the last started, the one [`Loader::set_epoch`]
    /// chose, or a loaded state's, continued where it stood), stopping any epoch still being
    /// handed out. Returns the epoch started.
    pub fn start_epoch(&mut self) -> Result<u64> {
        self.finish_epoch();
        let (epoch, done) = self.resume_at.take().unwrap_or((self.next_epoch, 0));
        self.next_epoch = epoch + 1;
        self.started.get_or_insert_with(Instant::now);
        let rows_total = self.pipeline.epoch_rows(epoch);
        let share_steps = rows_total.div_ceil(self.settings.batch_rows);
        let stream = if done >= share_steps {
            None
        } else if done == 0 {
            Some(self.pipeline.epoch(epoch)?)
        } else {
            let cursor = CursorTracker::new(&self.pipeline, epoch).advance_to(done);
            Some(self.pipeline.resume(&cursor)?.0)
        };
        self.current = Some(Epoch {
            index: epoch,
            stream,
            steps_done: done,
            steps_total: self.steps_in_epoch(epoch),
            rows_total,
            partial: None,
        });
        Ok(epoch)
    }

    /// The next step of the current epoch, waiting for it at most `timeout` when given (so
    /// the caller can check for an interrupt between tries; a step that arrives in several
    /// batches is kept joining across tries). An error ends the epoch.
    pub fn next_step(&mut self, timeout: Option<Duration>) -> Result<NextStep> {
        let Some(epoch) = self.current.as_mut() else {
            return Ok(NextStep::EndOfEpoch);
        };
        if epoch.steps_done >= epoch.steps_total {
            self.finish_epoch();
            return Ok(NextStep::EndOfEpoch);
        }
        let batch_rows = self.settings.batch_rows;
        let outcome = loop {
            let Some(stream) = epoch.stream.as_mut() else {
                // This rank's share is used up: an empty step keeps the ranks in step.
                break Ok(epoch.empty_step(self.pipeline.source().row_width()));
            };
            let waited = match timeout {
                Some(limit) => stream.next_within(limit),
                None => stream.next().map_or(Waited::Finished, Waited::Batch),
            };
            match waited {
                Waited::Batch(Ok(batch)) => {
                    if let Some(step) = epoch.join(batch, batch_rows) {
                        break Ok(step);
                    }
                }
                Waited::Batch(Err(e)) => break Err(e),
                Waited::TimedOut => return Ok(NextStep::TimedOut),
                Waited::Finished => {
                    let short = epoch.partial.is_some()
                        || (self.settings.world <= 1 && epoch.steps_done < epoch.steps_total);
                    if short {
                        break Err(Error::internal(format!(
                            "the pass of epoch {} ended after {} of {} steps",
                            epoch.index, epoch.steps_done, epoch.steps_total
                        )));
                    }
                    let finished = epoch.stream.take().expect("matched above");
                    self.wait += finished.wait_time();
                    add_queue(&mut self.queue, finished.queue_stats());
                }
            }
        };
        let step = match outcome {
            Ok(step) => step,
            Err(e) => {
                self.finish_epoch();
                return Err(e);
            }
        };
        let epoch = self.current.as_mut().expect("the epoch handed out a step");
        epoch.steps_done += 1;
        if epoch.steps_done >= epoch.steps_total {
            self.finish_epoch();
        }
        Ok(NextStep::Step(step))
    }

    /// Stops the epoch being handed out, if any, and joins its threads; the next
    /// [`Loader::start_epoch`] starts the epoch after it.
    pub fn stop(&mut self) {
        self.finish_epoch();
    }

    /// Stops the epoch being handed out (joining its threads), keeping its waits.
    fn finish_epoch(&mut self) {
        if let Some(stream) = self.current.take().and_then(|e| e.stream) {
            self.wait += stream.wait_time();
            add_queue(&mut self.queue, stream.queue_stats());
        }
    }

    /// Seconds the consumer waited for batches, over all epochs so far.
    pub fn wait_time(&self) -> Duration {
        self.wait
            + self
                .current
                .as_ref()
                .and_then(|e| e.stream.as_ref())
                .map_or(Duration::ZERO, BatchStream::wait_time)
    }

    /// The stage figures since the first epoch started, from `spans` (what a
    /// [`ProfileLayer`](crate::telemetry::ProfileLayer) measured over that time): each stage's
    /// busy time and throughput, and the stall, the consumer's share of the time spent waiting
    /// for a step.
    pub fn profile(&self, spans: &SpanTable) -> Profile {
        let wall = self
            .started
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
            .max(1e-9);
        let mut queue = self.queue;
        if let Some(stream) = self.current.as_ref().and_then(|e| e.stream.as_ref()) {
            add_queue(&mut queue, stream.queue_stats());
        }
        Profile::build(
            spans,
            wall,
            4 * (self.source().num_features() as u64 + 1),
            (self.wait_time().as_secs_f64() / wall).min(1.0),
            queue.mean_occupancy(),
            queue.full_fraction(),
        )
    }
}

impl Epoch {
    /// Adds `batch` to the step being joined; returns the step when the batch ends it.
    fn join(&mut self, batch: Batch, batch_rows: u64) -> Option<Step> {
        let rows = &batch.rows;
        let d = rows.num_features();
        let step = self.partial.get_or_insert_with(|| {
            // The step's rows, to allocate each vector once.
            let left = self.rows_total.saturating_sub(self.steps_done * batch_rows);
            let capacity = if batch.ends_step {
                rows.num_rows()
            } else {
                usize::try_from(left.min(batch_rows)).unwrap_or(rows.num_rows())
            };
            Step {
                epoch: self.index,
                index: self.steps_done,
                num_features: d,
                features: Vec::with_capacity(capacity * d),
                targets: Vec::with_capacity(capacity),
                row_ids: Vec::with_capacity(capacity),
            }
        });
        step.features.extend_from_slice(rows.features());
        step.targets.extend_from_slice(rows.targets());
        step.row_ids.extend_from_slice(rows.row_ids());
        if batch.ends_step {
            self.partial.take()
        } else {
            None
        }
    }

    fn empty_step(&self, num_features: usize) -> Step {
        Step {
            epoch: self.index,
            index: self.steps_done,
            num_features,
            features: Vec::new(),
            targets: Vec::new(),
            row_ids: Vec::new(),
        }
    }
}

fn add_queue(total: &mut QueueStats, more: QueueStats) {
    total.samples += more.samples;
    total.occupancy_sum += more.occupancy_sum;
    total.full += more.full;
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.finish_epoch();
    }
}
