//! One rank's share of a data-parallel run, as a [`BatchSource`].
//!
//! In a run of `world` ranks every rank reads the same plan and keeps the units at the plan
//! positions ≡ rank (mod world) (the [`Pipeline`] of a [`PipelineConfig`] with that rank and
//! world reads exactly those). [`RankShare`] adds what makes the shares one run: the
//! [`Collective`] through which each step adds every rank's gradient sums (a rank whose share
//! is used up steps with zero rows until no rank has rows left), the epoch's step count (its
//! largest share's), and positions that hold every rank's stream, so rank 0 can checkpoint the
//! whole run and each rank resume its own share. It starts no thread of its own and knows
//! nothing of models.

use std::sync::Arc;

use super::{
    BatchSource, CursorTracker, EpochBatches, Pipeline, PipelineConfig, PositionTracker,
    ResumedEpoch, StreamPosition,
};
use crate::comm::Collective;
use crate::data::Schema;
use crate::data::source::Source;
use crate::error::{Error, Result};

/// This rank's share of the data, stepping in lockstep with the other ranks through `comm`.
pub struct RankShare<'a> {
    pipeline: &'a Pipeline,
    comm: &'a dyn Collective,
    /// Every rank's share, rank by rank (to replay any rank's stream for a checkpoint).
    shares: Vec<Pipeline>,
}

impl<'a> RankShare<'a> {
    /// The share `pipeline` reads (its [`PipelineConfig::rank`] of [`PipelineConfig::world`],
    /// which must be `comm`'s rank and size).
    pub fn new(pipeline: &'a Pipeline, comm: &'a dyn Collective) -> Self {
        debug_assert_eq!(pipeline.config().world, comm.size());
        debug_assert_eq!(pipeline.config().rank, comm.rank());
        let shares = (0..pipeline.config().world)
            .map(|rank| {
                let config = PipelineConfig {
                    rank,
                    ..pipeline.config().clone()
                };
                Pipeline::new(pipeline.source().clone(), config)
            })
            .collect();
        RankShare {
            pipeline,
            comm,
            shares,
        }
    }
}

impl BatchSource for RankShare<'_> {
    fn schema(&self) -> &Schema {
        self.pipeline.source().schema()
    }

    fn num_rows(&self) -> u64 {
        self.pipeline.source().num_rows()
    }

    /// The steps of the epoch's largest share.
    fn steps_in_epoch(&self, epoch: u64) -> u64 {
        self.pipeline.steps_in_epoch(epoch)
    }

    fn total_steps(&self, epochs: u64) -> u64 {
        self.pipeline.total_steps(epochs)
    }

    /// This rank's share of the epoch; it ends when the share is used up.
    fn start_epoch(&self, epoch: u64) -> Result<Box<dyn EpochBatches + '_>> {
        self.pipeline.start_epoch(epoch)
    }

    fn rows_per_epoch(&self) -> u64 {
        self.pipeline.rows_per_epoch()
    }

    /// This rank's share of the evaluation pass.
    fn evaluation_pass(&self) -> Result<Box<dyn EpochBatches + '_>> {
        self.pipeline.evaluation_pass()
    }

    fn collective(&self) -> &dyn Collective {
        self.comm
    }

    fn source(&self) -> Option<&Arc<dyn Source>> {
        Some(self.pipeline.source())
    }

    fn config(&self) -> Option<&PipelineConfig> {
        Some(self.pipeline.config())
    }

    /// Continues this rank's stream from its cursor in `position`.
    fn resume_epoch(&self, position: &StreamPosition) -> Result<ResumedEpoch<'_>> {
        let rank = self.comm.rank();
        let cursor = match position {
            StreamPosition::Ranks(cursors) => cursors.get(rank),
            StreamPosition::Process(_) => None,
        };
        let Some(cursor) = cursor else {
            return Err(Error::config(
                "resume",
                format!("the checkpoint holds no stream cursor for rank {rank}"),
            ));
        };
        self.pipeline
            .resume_epoch(&StreamPosition::Process(cursor.clone()))
    }

    /// Follows every rank's stream: rank r has taken min(steps, the steps of its share).
    fn track_epoch(&self, epoch: u64) -> Option<Box<dyn PositionTracker + '_>> {
        let trackers = self
            .shares
            .iter()
            .map(|share| {
                let steps = share.epoch_rows(epoch).div_ceil(share.config().step_rows);
                (CursorTracker::new(share, epoch), steps)
            })
            .collect();
        Some(Box::new(ShareTrackers { trackers }))
    }
}

/// Every rank's [`CursorTracker`], with the steps of its share.
struct ShareTrackers<'p> {
    trackers: Vec<(CursorTracker<'p>, u64)>,
}

impl PositionTracker for ShareTrackers<'_> {
    fn position_after(&mut self, steps: u64) -> StreamPosition {
        StreamPosition::Ranks(
            self.trackers
                .iter_mut()
                .map(|(tracker, share_steps)| tracker.advance_to(steps.min(*share_steps)))
                .collect(),
        )
    }
}
