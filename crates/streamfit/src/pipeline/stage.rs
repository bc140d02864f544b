//! The `shuffle` thread: blocks in plan order → shuffle buffer → batcher → prefetch queue.
//!
//! [`ShuffleStage`] takes the readers' blocks in plan order, skips the rows a resumed epoch has
//! already consumed, mixes rows through the [`ShuffleBuffer`] (or passes them through in order),
//! and the [`Batcher`] packs them into batches from the buffer pool, marks step ends and sends
//! them in groups. It reads no files (the readers do) and spawns no threads (the
//! [`Pipeline`](super::Pipeline) does).

use std::ops::ControlFlow;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::batch::Batch;
use super::lane_stage::LaneStart;
use super::shuffle::BatchSink;
use super::{LastBatch, Next, PipelineConfig, PlanOrderReceiver, ShuffleBuffer, reader};
use crate::data::RowBlock;
use crate::error::{Error, Result};

/// The `shuffle` thread: blocks in plan order → shuffle buffer → batcher.
pub(super) struct ShuffleStage {
    blocks: PlanOrderReceiver,
    /// Leading rows of the plan to drop (already consumed before a resume).
    skip_rows: u64,
    buffer: Option<ShuffleBuffer>,
    batcher: Batcher,
}

/// Where a stream starts: a fresh epoch, or a resumed one.
pub(super) struct StreamStart {
    /// Leading rows of the plan already consumed (skipped).
    pub skip_rows: u64,
    /// The shuffle buffer, empty or refilled (none without shuffling, or with lanes).
    pub buffer: Option<ShuffleBuffer>,
    /// With more than one shuffle lane: the lanes' start (`lane_stage.rs` runs the pass).
    pub lanes: Option<LaneStart>,
    /// Steps of the epoch already emitted.
    pub step: u64,
    /// Rows already emitted into those steps.
    pub rows_emitted: u64,
    /// Rows the whole epoch emits ([`Pipeline::epoch_rows`](super::Pipeline::epoch_rows)).
    pub epoch_rows: u64,
    /// Rows the epoch's plan delivers (`epoch_rows` before a last partial step is dropped).
    pub plan_rows: u64,
}

impl ShuffleStage {
    /// The stage for blocks from `blocks`, starting in state `from`, sending groups of batches
    /// on `out` until `cancel` is dropped.
    pub(super) fn new(
        blocks: PlanOrderReceiver,
        from: StreamStart,
        cfg: &PipelineConfig,
        num_features: usize,
        out: Sender<Result<Vec<Batch>>>,
        cancel: Receiver<()>,
    ) -> Self {
        let (pool_tx, pool_rx) = bounded(cfg.num_batch_buffers());
        ShuffleStage {
            blocks,
            skip_rows: from.skip_rows,
            buffer: from.buffer,
            batcher: Batcher {
                out,
                cancel,
                pool_tx,
                pool_rx,
                num_features,
                batch_rows: cfg.batch_rows(),
                step_rows: cfg.step_rows,
                rows_left: from.epoch_rows - from.rows_emitted,
                plan_rows: from.plan_rows,
                rows_emitted: from.rows_emitted,
                last_batch: cfg.last_batch,
                rows_in_step: 0,
                step: from.step,
                current: None,
                group: Vec::with_capacity(cfg.batches_per_group()),
                per_group: cfg.batches_per_group(),
            },
        }
    }

    /// Moves every row through, then ends; an error is sent down the queue.
    pub(super) fn run(mut self) {
        if let Err(e) = self.pump() {
            let _ = self.batcher.out.send(Err(e));
        }
    }

    /// Moves every row through; returns early (Ok) when the consumer went away.
    fn pump(&mut self) -> Result<()> {
        loop {
            let mut block = match self.blocks.next_block(&self.batcher.cancel)? {
                Next::Block(block) => block,
                Next::Cancelled => return Ok(()),
                Next::Finished => break,
                Next::FileDropped { rows_skipped } => {
                    if self.batcher.shorten(rows_skipped).is_break() {
                        return Ok(());
                    }
                    continue;
                }
            };
            if self.skip_rows > 0 {
                let n = block.num_rows() as u64;
                if n <= self.skip_rows {
                    self.skip_rows -= n;
                    self.blocks.recycle(block);
                    continue;
                }
                let mut rest = RowBlock::with_capacity(block.num_features(), 0);
                rest.extend_from(&block, self.skip_rows as usize..block.num_rows());
                self.skip_rows = 0;
                self.blocks.recycle(std::mem::replace(&mut block, rest));
            }
            let flow = {
                let _span = tracing::trace_span!("shuffle", rows = block.num_rows()).entered();
                let batcher = &mut self.batcher;
                match &mut self.buffer {
                    Some(buffer) => buffer.push_rows_into(&block, 0..block.num_rows(), batcher),
                    None => (0..block.num_rows()).try_for_each(|i| {
                        batcher.push(block.row(i), block.targets()[i], block.row_ids()[i])
                    }),
                }
            };
            self.blocks.recycle(block);
            if flow.is_break() {
                return Ok(());
            }
        }
        if let Some(buffer) = &mut self.buffer {
            let batcher = &mut self.batcher;
            if buffer
                .drain(&mut |x: &[f32], y: f32, id: u64| batcher.push(x, y, id))
                .is_break()
            {
                return Ok(());
            }
        }
        // The last row emitted ends the last step; batches of a step cut short by a dropped
        // file may still wait to be sent. A shortfall means a source broke its row-count
        // contract.
        if self.batcher.flush().is_break() {
            return Ok(());
        }
        match self.batcher.rows_left {
            0 => Ok(()),
            missing => Err(Error::internal(format!(
                "the epoch ended {missing} rows short of the dataset's row count"
            ))),
        }
    }
}

impl BatchSink for Batcher {
    fn open(&mut self) -> Option<(&mut RowBlock, usize)> {
        if self.rows_left == 0 {
            return None; // a dropped last partial step: `push` discards its rows
        }
        let current = match &mut self.current {
            Some(current) => current,
            none => none.insert(reader::recycled_or_new(
                &self.pool_rx,
                self.num_features,
                self.batch_rows,
            )),
        };
        let room = (self.batch_rows - current.num_rows())
            .min(
                (self.step_rows - self.rows_in_step)
                    .try_into()
                    .unwrap_or(usize::MAX),
            )
            .min(self.rows_left.try_into().unwrap_or(usize::MAX));
        Some((current, room))
    }

    fn appended(&mut self, num_rows: usize) -> ControlFlow<()> {
        self.counted(num_rows)
    }

    fn emit_one(&mut self, features: &[f32], target: f32, row_id: u64) -> ControlFlow<()> {
        self.push(features, target, row_id)
    }
}

/// Packs emitted rows into batches of `batch_rows`, marking step ends, and sends them.
struct Batcher {
    out: Sender<Result<Vec<Batch>>>,
    cancel: Receiver<()>,
    pool_tx: Sender<RowBlock>,
    pool_rx: Receiver<RowBlock>,
    num_features: usize,
    batch_rows: usize,
    step_rows: u64,
    /// Rows still to emit this epoch (fewer than N when the last partial step is dropped).
    rows_left: u64,
    /// Rows the epoch's plan delivers, less what dropped files took out.
    plan_rows: u64,
    /// Rows emitted into steps so far.
    rows_emitted: u64,
    last_batch: LastBatch,
    rows_in_step: u64,
    step: u64,
    current: Option<RowBlock>,
    /// Batches waiting to be sent together.
    group: Vec<Batch>,
    per_group: usize,
}

impl Batcher {
    #[inline]
    fn push(&mut self, x: &[f32], y: f32, id: u64) -> ControlFlow<()> {
        if self.rows_left == 0 {
            return ControlFlow::Continue(()); // a dropped last partial step
        }
        if self.current.is_none() {
            self.current = Some(self.take_buffer());
        }
        let current = self.current.as_mut().expect("just set");
        current.push_row(x, y, id);
        self.counted(1)
    }

    /// Rows appended to the current batch: counts them, and sends the batch when it is full
    /// or ends a step or the epoch.
    #[inline]
    fn counted(&mut self, num_rows: usize) -> ControlFlow<()> {
        let n = num_rows as u64;
        self.rows_left -= n;
        self.rows_emitted += n;
        self.rows_in_step += n;
        let full = self
            .current
            .as_ref()
            .is_some_and(|c| c.num_rows() == self.batch_rows);
        if self.rows_in_step == self.step_rows || self.rows_left == 0 {
            self.send(true)
        } else if full {
            self.send(false)
        } else {
            ControlFlow::Continue(())
        }
    }

    /// A dropped file took `rows` rows out of the epoch: fewer rows are left to emit. A step
    /// in progress that the rows left can no longer fill ends now (kept), or with «drop_last»
    /// is dropped when none of it was sent yet.
    fn shorten(&mut self, rows: u64) -> ControlFlow<()> {
        self.plan_rows = self.plan_rows.saturating_sub(rows);
        let target = match self.last_batch {
            LastBatch::Keep => self.plan_rows,
            LastBatch::Drop => self.plan_rows / self.step_rows * self.step_rows,
        };
        if target >= self.rows_emitted {
            self.rows_left = target - self.rows_emitted;
        } else {
            self.rows_left = 0;
            let unsent = self.current.as_ref().map_or(0, |c| c.num_rows() as u64);
            if unsent == self.rows_in_step && unsent > 0 {
                // No piece of the step went out: drop it whole.
                if let Some(rows) = self.current.take() {
                    let _ = self.pool_tx.try_send(rows);
                }
                self.rows_emitted -= self.rows_in_step;
                self.rows_in_step = 0;
            }
        }
        if self.rows_left == 0 && self.current.is_some() {
            return self.send(true);
        }
        ControlFlow::Continue(())
    }

    /// Sends the batches waiting to go as a group, if any.
    fn flush(&mut self) -> ControlFlow<()> {
        if self.group.is_empty() {
            return ControlFlow::Continue(());
        }
        let group = std::mem::replace(&mut self.group, Vec::with_capacity(self.per_group));
        match self.out.send(Ok(group)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }

    /// A recycled buffer, or a new one when none has come back. The prefetch queue bounds
    /// the buffers in flight to P + 1; more exist only while the consumer holds batches (the
    /// trainer holds one), and the pool frees any surplus that is returned.
    fn take_buffer(&mut self) -> RowBlock {
        reader::recycled_or_new(&self.pool_rx, self.num_features, self.batch_rows)
    }

    fn send(&mut self, ends_step: bool) -> ControlFlow<()> {
        let rows = self.current.take().expect("a batch is being filled");
        let _span =
            tracing::trace_span!("batch", rows = rows.num_rows(), step = self.step).entered();
        let batch = Batch {
            rows,
            step: self.step,
            ends_step,
            home: Some(self.pool_tx.clone()),
        };
        if ends_step {
            self.step += 1;
            self.rows_in_step = 0;
        }
        self.group.push(batch);
        if self.group.len() < self.per_group && self.rows_left > 0 {
            return ControlFlow::Continue(());
        }
        let group = std::mem::replace(&mut self.group, Vec::with_capacity(self.per_group));
        match self.out.send(Ok(group)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }
}
