//! What a trainer consumes: [`BatchSource`], epochs of batches behind one small trait.
//!
//! A batch source says what its rows are (the [`Schema`]), how many steps each epoch makes,
//! and starts an epoch's [`EpochBatches`]. One that streams files through a pipeline also
//! continues an epoch from a checkpoint's [`StreamPosition`] and tracks that position as the
//! epoch goes. This file holds the trait and its implementation for one process, the
//! [`Pipeline`]; [`RankShare`](super::RankShare) implements it for one rank of a data-parallel
//! run. Nothing here knows of models, optimizers or checkpoint files: the trainer depends on
//! the trait, never on the pipeline's threads or cursors.

use std::sync::Arc;
use std::time::Duration;

use super::{
    Batch, BatchStream, CursorTracker, FileDrop, Pipeline, PipelineConfig, QueueStats, StreamCursor,
};
use crate::comm::{Collective, SingleProcess};
use crate::data::Schema;
use crate::data::source::Source;
use crate::error::{Error, Result};

/// One epoch's batches in step order, then `None`; an error ends the epoch early.
///
/// Contract: every batch of a step comes before the next step's, and the last one of each
/// step has [`Batch::ends_step`] set, so a consumer updates after it.
pub trait EpochBatches: Iterator<Item = Result<Batch>> {
    /// Time spent waiting for batches so far (the consumer's stall). By default zero.
    fn wait_time(&self) -> Duration {
        Duration::ZERO
    }

    /// How full the prefetch queue was each time the consumer asked. By default no samples.
    fn queue_stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

impl EpochBatches for BatchStream {
    fn wait_time(&self) -> Duration {
        BatchStream::wait_time(self)
    }

    fn queue_stats(&self) -> QueueStats {
        BatchStream::queue_stats(self)
    }
}

/// A list of batches made in memory is an epoch (no waiting, no queue).
impl EpochBatches for std::vec::IntoIter<Result<Batch>> {}

/// Where a stream stands inside an epoch, as a checkpoint records it.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamPosition {
    /// The stream of a single process.
    Process(StreamCursor),
    /// Every rank's stream in a data-parallel run, by rank.
    Ranks(Vec<StreamCursor>),
}

impl StreamPosition {
    /// The epoch (from 0) the position is in; `None` for an empty list of ranks.
    pub fn epoch(&self) -> Option<u64> {
        match self {
            StreamPosition::Process(cursor) => Some(cursor.epoch),
            StreamPosition::Ranks(cursors) => cursors.first().map(|c| c.epoch),
        }
    }
}

/// Follows one epoch's stream without reading any data, forward only, to say where it stands
/// after a number of steps (what a checkpoint records).
pub trait PositionTracker {
    /// The position at the end of step `steps` of the epoch; `steps` never decreases from one
    /// call to the next.
    fn position_after(&mut self, steps: u64) -> StreamPosition;
}

impl PositionTracker for CursorTracker<'_> {
    fn position_after(&mut self, steps: u64) -> StreamPosition {
        StreamPosition::Process(self.advance_to(steps))
    }
}

/// An epoch continued from a [`StreamPosition`].
pub struct ResumedEpoch<'a> {
    /// The rest of the epoch's batches.
    pub batches: Box<dyn EpochBatches + 'a>,
    /// Rows this stream had emitted in the epoch before the position.
    pub rows_emitted: u64,
    /// Rows read again to rebuild the stream's state (its shuffle buffer).
    pub rows_reread: u64,
}

/// A source of training batches, epoch by epoch: what the trainer consumes
/// (`streamfit::train::train_stream`).
///
/// Four methods make a stream of one's own (a list of batches made in memory is enough); the
/// provided ones add what a stream over files can do: name the data behind it, continue an
/// epoch from a checkpoint, and be one rank's share of a data-parallel run. Contract: epoch
/// `e` yields exactly [`BatchSource::steps_in_epoch`]`(e)` steps (a rank's share may yield
/// fewer; see [`BatchSource::collective`]), and the batches of an epoch are a pure function of
/// the data, the epoch and the settings, so that a resumed epoch continues exactly.
pub trait BatchSource {
    /// Feature names (one per feature, in parameter order) and the label column.
    fn schema(&self) -> &Schema;

    /// Rows of the data (an evaluation pass covers every one of them).
    fn num_rows(&self) -> u64;

    /// Steps (parameter updates) of epoch `epoch`, from 0. In a data-parallel run, the steps
    /// of the epoch's largest share: the ranks step together until every share is used up.
    fn steps_in_epoch(&self, epoch: u64) -> u64;

    /// Starts epoch `epoch` (from 0) at its first batch.
    fn start_epoch(&self, epoch: u64) -> Result<Box<dyn EpochBatches + '_>>;

    /// Steps in the first `epochs` epochs (saturating). By default the sum of
    /// [`BatchSource::steps_in_epoch`] over them: a source whose epochs all make the same
    /// number of steps should multiply instead.
    fn total_steps(&self, epochs: u64) -> u64 {
        (0..epochs).fold(0u64, |sum, e| sum.saturating_add(self.steps_in_epoch(e)))
    }

    /// Rows one epoch trains on, every rank's together. By default all of them.
    fn rows_per_epoch(&self) -> u64 {
        self.num_rows()
    }

    /// Rows epoch `epoch` trains on, every rank's together: [`BatchSource::rows_per_epoch`]
    /// unless files were dropped. By default [`BatchSource::rows_per_epoch`].
    fn rows_in_epoch(&self, epoch: u64) -> u64 {
        let _ = epoch;
        self.rows_per_epoch()
    }

    /// Every row once, in a fixed order, for the full-data loss (this rank's share of them in
    /// a data-parallel run). By default the batches of epoch 0.
    fn evaluation_pass(&self) -> Result<Box<dyn EpochBatches + '_>> {
        self.start_epoch(0)
    }

    /// Rows the evaluation pass covers, every rank's together: all of them unless files
    /// were dropped. By default [`BatchSource::num_rows`].
    fn evaluation_rows(&self) -> u64 {
        self.num_rows()
    }

    /// Files dropped mid-epoch because a unit failed (under
    /// [`OnBadFile::Skip`](crate::data::source::OnBadFile::Skip)), in the order found. By
    /// default none.
    fn dropped_files(&self) -> Vec<FileDrop> {
        Vec::new()
    }

    /// Takes over the files a run dropped before (from its checkpoint). By default only
    /// none can be taken over.
    fn restore_dropped(&self, drops: &[FileDrop]) -> Result<()> {
        if drops.is_empty() {
            return Ok(());
        }
        Err(Error::config(
            "resume",
            "this batch stream cannot leave out the files the checkpoint's run dropped",
        ))
    }

    /// The ranks this stream is one share of. Each rank's step adds every rank's gradient sums
    /// through it; a rank whose share of an epoch is used up keeps stepping with zero rows
    /// until no rank has rows left. By default the world of one process.
    fn collective(&self) -> &dyn Collective {
        &SingleProcess
    }

    /// The data behind the stream, when it reads a [`Source`]: its files name a row whose
    /// label is refused, its units measure shuffle quality, and a checkpoint records their
    /// identity. By default none.
    fn source(&self) -> Option<&Arc<dyn Source>> {
        None
    }

    /// The pipeline settings that shape the batch sequence (what a checkpoint's fingerprint
    /// records), when the stream comes from a pipeline. By default none: no checkpoints.
    fn config(&self) -> Option<&PipelineConfig> {
        None
    }

    /// Continues an epoch from `position` (taken by this stream's [`PositionTracker`], possibly
    /// in an earlier process). By default refused.
    fn resume_epoch(&self, position: &StreamPosition) -> Result<ResumedEpoch<'_>> {
        let _ = position;
        Err(Error::config(
            "resume",
            "this batch stream cannot continue an epoch from a checkpoint",
        ))
    }

    /// Follows epoch `epoch` to record positions in it. By default none: no mid-epoch
    /// checkpoints.
    fn track_epoch(&self, epoch: u64) -> Option<Box<dyn PositionTracker + '_>> {
        let _ = epoch;
        None
    }
}

/// The pipeline of one process: epochs as [`Pipeline::epoch`] streams them, the evaluation
/// pass in file order, positions tracked by a [`CursorTracker`].
impl BatchSource for Pipeline {
    fn schema(&self) -> &Schema {
        self.source().schema()
    }

    fn num_rows(&self) -> u64 {
        self.source().num_rows()
    }

    fn steps_in_epoch(&self, epoch: u64) -> u64 {
        Pipeline::steps_in_epoch(self, epoch)
    }

    fn start_epoch(&self, epoch: u64) -> Result<Box<dyn EpochBatches + '_>> {
        Ok(Box::new(self.epoch(epoch)?))
    }

    fn total_steps(&self, epochs: u64) -> u64 {
        Pipeline::total_steps(self, epochs)
    }

    fn rows_per_epoch(&self) -> u64 {
        Pipeline::rows_per_epoch(self)
    }

    fn rows_in_epoch(&self, epoch: u64) -> u64 {
        self.epoch_rows(epoch)
    }

    fn evaluation_pass(&self) -> Result<Box<dyn EpochBatches + '_>> {
        Ok(Box::new(self.for_evaluation().epoch(0)?))
    }

    fn evaluation_rows(&self) -> u64 {
        Pipeline::evaluation_rows(self)
    }

    fn dropped_files(&self) -> Vec<FileDrop> {
        Pipeline::dropped_files(self)
    }

    fn restore_dropped(&self, drops: &[FileDrop]) -> Result<()> {
        Pipeline::restore_dropped(self, drops)
    }

    fn source(&self) -> Option<&Arc<dyn Source>> {
        Some(Pipeline::source(self))
    }

    fn config(&self) -> Option<&PipelineConfig> {
        Some(Pipeline::config(self))
    }

    fn resume_epoch(&self, position: &StreamPosition) -> Result<ResumedEpoch<'_>> {
        let StreamPosition::Process(cursor) = position else {
            return Err(Error::config(
                "resume",
                "the checkpoint holds the streams of a data-parallel run",
            ));
        };
        let (stream, rows_reread) = self.resume(cursor)?;
        Ok(ResumedEpoch {
            batches: Box::new(stream),
            rows_emitted: cursor.rows_emitted,
            rows_reread,
        })
    }

    fn track_epoch(&self, epoch: u64) -> Option<Box<dyn PositionTracker + '_>> {
        Some(Box::new(CursorTracker::new(self, epoch)))
    }
}
