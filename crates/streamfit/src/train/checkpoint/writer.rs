//! Writes one run's checkpoints at the step boundaries the trainer says are due.
//!
//! The [`Checkpointer`] holds what every checkpoint of a run shares (its fingerprint and the
//! data's identity), follows the running epoch's stream through the stream's own
//! [`PositionTracker`] (made at the epoch's first mid-epoch checkpoint, dropped at its end, so
//! successive checkpoints replay only the steps between them), and saves each [`Checkpoint`]
//! in the file format of [`file`](super::file). When a checkpoint is due is the trainer's call.

use std::path::PathBuf;

use super::file::remove_stale_temporaries;
use super::{Checkpoint, CheckpointConfig, CheckpointLock, DataFile, RunFingerprint, RunningLoss};
use crate::error::{Error, Result};
use crate::optim::OptimizerState;
use crate::pipeline::{BatchSource, PositionTracker, StreamPosition};
use crate::train::{BestModel, EpochSummary, ValidationRecord};

/// What a checkpoint saves of the run besides the stream's position.
pub(crate) struct RunState<'a> {
    /// Parameters (in the standardised space when standardising).
    pub params: &'a [f32],
    /// The optimizer's state.
    pub optimizer: &'a OptimizerState,
    /// The best epoch so far under «early_stop».
    pub best: Option<&'a BestModel>,
    /// Summaries of the finished epochs.
    pub epochs: &'a [EpochSummary],
    /// The running epoch's training-loss sums so far (saved only inside an epoch).
    pub running: RunningLoss,
    /// With «eval_every»: the last evaluation of the validation data.
    pub last_validation: Option<&'a ValidationRecord>,
}

/// A step boundary of the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Boundary {
    /// Epoch, from 0.
    pub epoch: u64,
    /// Steps of the epoch done (over all ranks).
    pub steps: u64,
    /// The epoch is over (its evaluation too): the next one starts from its beginning.
    pub epoch_done: bool,
}

/// Writes the checkpoints of one run.
pub(crate) struct Checkpointer<'a> {
    config: &'a CheckpointConfig,
    /// This run's hold on the directory, for as long as it writes there.
    _lock: CheckpointLock,
    fingerprint: RunFingerprint,
    data: Vec<DataFile>,
    stream: &'a dyn BatchSource,
    /// The tracker of the running epoch (by its index), once a mid-epoch checkpoint needed it.
    tracker: Option<(u64, Box<dyn PositionTracker + 'a>)>,
    last: Option<PathBuf>,
}

impl<'a> Checkpointer<'a> {
    /// Checkpoints of the run `fingerprint` on `stream`, whose data is `data`, as `config`
    /// says, into the directory `lock` holds. Clears the temporary files of killed runs
    /// there first.
    pub fn new(
        config: &'a CheckpointConfig,
        lock: CheckpointLock,
        fingerprint: RunFingerprint,
        data: Vec<DataFile>,
        stream: &'a dyn BatchSource,
    ) -> Self {
        remove_stale_temporaries(&config.dir);
        Checkpointer {
            config,
            _lock: lock,
            fingerprint,
            data,
            stream,
            tracker: None,
            last: None,
        }
    }

    /// True when iteration `iteration` is one of the every-k-steps checkpoints.
    pub fn due(&self, iteration: u64) -> bool {
        self.config
            .every_steps
            .is_some_and(|k| iteration.is_multiple_of(k))
    }

    /// The last checkpoint written, if any.
    pub fn last(&self) -> Option<&PathBuf> {
        self.last.as_ref()
    }

    /// Writes the checkpoint of `state` after `iteration` iterations, at boundary `at`. In a
    /// data-parallel run it holds every rank's stream.
    pub fn write(&mut self, at: Boundary, iteration: u64, state: &RunState<'_>) -> Result<()> {
        let _span = tracing::trace_span!("checkpoint", iteration).entered();
        let (next_epoch, position) = if at.epoch_done {
            self.tracker = None;
            (at.epoch + 1, None)
        } else {
            (at.epoch, Some(self.position(at)?))
        };
        let (cursor, rank_cursors) = match position {
            None => (None, Vec::new()),
            Some(StreamPosition::Process(cursor)) => (Some(cursor), Vec::new()),
            Some(StreamPosition::Ranks(cursors)) => (None, cursors),
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
            files_dropped: self.stream.dropped_files(),
            epoch_loss: (!at.epoch_done).then_some(state.running),
            last_validation: state.last_validation.copied(),
        };
        self.last = Some(checkpoint.save(self.config)?);
        Ok(())
    }

    /// Where the stream stands at `at`, mid-epoch.
    fn position(&mut self, at: Boundary) -> Result<StreamPosition> {
        if self
            .tracker
            .as_ref()
            .is_none_or(|(epoch, _)| *epoch != at.epoch)
        {
            let tracker = self.stream.track_epoch(at.epoch).ok_or_else(|| {
                Error::config(
                    "checkpoint_every",
                    "this batch stream cannot record a position inside an epoch",
                )
            })?;
            self.tracker = Some((at.epoch, tracker));
        }
        let (_, tracker) = self.tracker.as_mut().expect("a tracker was just made");
        Ok(tracker.position_after(at.steps))
    }
}
