//! Reader threads: decode units into row blocks, in plan order, round-robin.
//!
//! Reader `k` of `R` reads the units at plan positions `k, k + R, k + 2R, …` and sends their
//! blocks down its own bounded channel, each unit closed by [`ReaderMsg::UnitDone`]. The
//! consumer ([`PlanOrderReceiver`]) takes position `p` from channel `p mod R`, so blocks come
//! out in plan order whatever the number of readers or their timing. A reader that fails records
//! the error in the shared [`ErrorSlot`] (so the consumer can stop promptly instead of finishing
//! earlier units first), sends [`ReaderMsg::Failed`] down its channel (to wake a consumer
//! waiting on it) and stops. Under
//! [`OnBadFile::Skip`] a unit that fails on its data is reported in its place instead
//! ([`ReaderMsg::UnitFailed`]) and the reader goes on; the consumer drops the unit's file from
//! that plan position on (see [`dropped`](super::dropped)).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, select};

use super::dropped::{Disposition, PassDrops};
use crate::data::RowBlock;
use crate::data::source::{ChunkSink, OnBadFile, Source};
use crate::error::{Error, Result};

/// What a reader sends.
pub enum ReaderMsg {
    /// Decoded rows of the current unit.
    Block(RowBlock),
    /// The current unit is complete.
    UnitDone,
    /// The current unit failed on its data (after the blocks sent before it) and the reader
    /// goes on with its next unit: only under [`OnBadFile::Skip`].
    UnitFailed(Error),
    /// The reader failed and stopped; the error is in the [`ErrorSlot`].
    Failed,
}

/// The first error any stage hit, shared so every stage can stop early.
#[derive(Default)]
pub struct ErrorSlot {
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
}

impl ErrorSlot {
    /// Records `error` unless an earlier one is already recorded.
    pub fn record(&self, error: Error) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
        self.failed.store(true, Ordering::Release);
    }

    /// True once an error is recorded.
    pub fn is_set(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Takes the recorded error, if any.
    pub fn take(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Settings of the reader threads.
#[derive(Debug, Clone, Copy)]
pub struct ReaderSettings {
    pub num_readers: usize,
    pub block_rows: usize,
    pub channel_blocks: usize,
    /// What a unit that fails on its data does: stop the pass, or (`Skip`) let the consumer
    /// drop its file.
    pub on_bad_file: OnBadFile,
}

/// Spawns the readers for one pass over `plan`. Returns their handles and the consumer.
pub fn spawn_readers(
    source: Arc<dyn Source>,
    plan: Arc<Vec<usize>>,
    settings: ReaderSettings,
    stop: Arc<AtomicBool>,
    errors: Arc<ErrorSlot>,
) -> Result<(Vec<JoinHandle<()>>, PlanOrderReceiver)> {
    let num_readers = settings.num_readers.max(1);
    source.plan_hint(&plan);
    // Recycled blocks: the consumer returns emptied blocks, readers reuse them.
    let (pool_tx, pool_rx) = bounded::<RowBlock>(num_readers * (settings.channel_blocks + 2));
    let mut handles = Vec::with_capacity(num_readers);
    let mut channels = Vec::with_capacity(num_readers);
    for k in 0..num_readers {
        let (tx, rx) = bounded(settings.channel_blocks.max(1));
        channels.push(rx);
        let reader = Reader {
            index: k,
            source: source.clone(),
            plan: plan.clone(),
            num_readers,
            block_rows: settings.block_rows,
            on_bad_file: settings.on_bad_file,
            tx,
            pool: pool_rx.clone(),
            stop: stop.clone(),
            errors: errors.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("reader-{k}"))
            .spawn(move || reader.run())
            .map_err(|e| Error::internal(format!("cannot start reader thread: {e}")))?;
        handles.push(handle);
    }
    Ok((
        handles,
        PlanOrderReceiver {
            channels,
            plan_len: plan.len(),
            position: 0,
            delivered: 0,
            drops: None,
            pool: pool_tx,
            errors,
        },
    ))
}

struct Reader {
    index: usize,
    source: Arc<dyn Source>,
    plan: Arc<Vec<usize>>,
    num_readers: usize,
    block_rows: usize,
    on_bad_file: OnBadFile,
    tx: Sender<ReaderMsg>,
    pool: Receiver<RowBlock>,
    stop: Arc<AtomicBool>,
    errors: Arc<ErrorSlot>,
}

impl Reader {
    fn run(self) {
        let d = self.source.row_width();
        for position in (self.index..self.plan.len()).step_by(self.num_readers) {
            if self.stop.load(Ordering::Relaxed) || self.errors.is_set() {
                return;
            }
            let unit = self.plan[position];
            let mut sink = ChannelSink {
                tx: &self.tx,
                pool: &self.pool,
                num_features: d,
                block_rows: self.block_rows,
                closed: false,
            };
            let rows = self.source.units()[unit].num_rows;
            let bytes = rows * 4 * (d as u64 + 1);
            let _span = tracing::trace_span!("read", unit, position, rows, bytes).entered();
            match self.source.read_unit(unit, self.block_rows, &mut sink) {
                Ok(()) if sink.closed => return,
                Ok(()) => {
                    if self.tx.send(ReaderMsg::UnitDone).is_err() {
                        return;
                    }
                }
                Err(e) if self.on_bad_file == OnBadFile::Skip && e.is_input_error() => {
                    // The consumer decides, in plan order, what the failure drops.
                    if self.tx.send(ReaderMsg::UnitFailed(e)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // The slot lets the consumer stop at its next block; the message wakes it
                    // if it is waiting on this reader.
                    self.errors.record(e);
                    let _ = self.tx.send(ReaderMsg::Failed);
                    return;
                }
            }
        }
    }
}

/// An emptied block from `pool`, or a new one of `capacity_rows` rows when none is waiting.
/// Never blocks: a block that does not come back is simply replaced.
pub fn recycled_or_new(
    pool: &Receiver<RowBlock>,
    num_features: usize,
    capacity_rows: usize,
) -> RowBlock {
    match pool.try_recv() {
        Ok(mut block) => {
            block.reset(num_features);
            block
        }
        Err(_) => RowBlock::with_capacity(num_features, capacity_rows),
    }
}

struct ChannelSink<'a> {
    tx: &'a Sender<ReaderMsg>,
    pool: &'a Receiver<RowBlock>,
    num_features: usize,
    block_rows: usize,
    closed: bool,
}

impl ChunkSink for ChannelSink<'_> {
    fn empty_block(&mut self) -> RowBlock {
        recycled_or_new(self.pool, self.num_features, self.block_rows)
    }

    fn send(&mut self, block: RowBlock) -> ControlFlow<()> {
        // Time blocked on a full channel is backpressure, not reading: the profile takes it
        // out of `read`.
        let _span = tracing::trace_span!("blocked").entered();
        if self.tx.send(ReaderMsg::Block(block)).is_err() {
            self.closed = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Receives the readers' blocks in plan order.
pub struct PlanOrderReceiver {
    channels: Vec<Receiver<ReaderMsg>>,
    plan_len: usize,
    position: usize,
    /// Rows delivered of the unit at `position` so far.
    delivered: u64,
    /// Under [`OnBadFile::Skip`]: the dropped files and what they drop.
    drops: Option<PassDrops>,
    pool: Sender<RowBlock>,
    errors: Arc<ErrorSlot>,
}

/// What [`PlanOrderReceiver::next_block`] yields.
pub enum Next {
    /// The next block in plan order.
    Block(RowBlock),
    /// Every unit of the plan has been delivered.
    Finished,
    /// The consumer was cancelled while waiting.
    Cancelled,
    /// A unit failed and its file was dropped from this plan position on (under
    /// [`OnBadFile::Skip`]): the epoch delivers this many rows fewer than planned.
    FileDropped { rows_skipped: u64 },
}

impl PlanOrderReceiver {
    /// The next block in plan order, waiting for its reader. Returns the first error any
    /// reader hit as soon as it is known; `cancel` disconnecting stops the wait.
    pub fn next_block(&mut self, cancel: &Receiver<()>) -> Result<Next> {
        loop {
            if self.errors.is_set() {
                return Err(self.take_error());
            }
            if self.position >= self.plan_len {
                return Ok(Next::Finished);
            }
            let rx = &self.channels[self.position % self.channels.len()];
            let msg = select! {
                recv(rx) -> msg => msg,
                recv(cancel) -> _ => return Ok(Next::Cancelled),
            };
            let disposition = self
                .drops
                .as_ref()
                .map_or(Disposition::Deliver, |d| d.disposition(self.position));
            match msg {
                Ok(ReaderMsg::Block(block)) => match disposition {
                    Disposition::Deliver => {
                        self.delivered += block.num_rows() as u64;
                        return Ok(Next::Block(block));
                    }
                    Disposition::DeliverUpTo(rows) if self.delivered < rows => {
                        let n = (rows - self.delivered).min(block.num_rows() as u64) as usize;
                        self.delivered += n as u64;
                        if n == block.num_rows() {
                            return Ok(Next::Block(block));
                        }
                        let mut head = RowBlock::with_capacity(block.num_features(), n);
                        head.extend_from(&block, 0..n);
                        self.recycle(block);
                        return Ok(Next::Block(head));
                    }
                    _ => self.recycle(block),
                },
                Ok(ReaderMsg::UnitDone) => self.next_position(),
                Ok(ReaderMsg::UnitFailed(e)) => {
                    let position = self.position;
                    let delivered = self.delivered;
                    self.next_position();
                    match (&mut self.drops, disposition) {
                        (Some(drops), Disposition::Deliver) => {
                            let rows_skipped = drops.failed(position, delivered, e.to_string());
                            return Ok(Next::FileDropped { rows_skipped });
                        }
                        // The file is dropped already: its failure was expected.
                        (Some(_), _) => {}
                        (None, _) => return Err(e),
                    }
                }
                Ok(ReaderMsg::Failed) => return Err(self.take_error()),
                Err(_) => {
                    // A reader that failed disconnects after recording its error; prefer it.
                    if self.errors.is_set() {
                        return Err(self.take_error());
                    }
                    return Err(Error::internal("a reader thread stopped unexpectedly"));
                }
            }
        }
    }

    /// Drops files whose units fail, as `drops` says, instead of failing the pass (the
    /// readers must have been started with [`OnBadFile::Skip`]).
    pub(crate) fn skipping(mut self, drops: PassDrops) -> Self {
        self.drops = Some(drops);
        self
    }

    fn next_position(&mut self) {
        self.position += 1;
        self.delivered = 0;
    }

    /// Hands an emptied block back to the readers.
    pub fn recycle(&self, block: RowBlock) {
        let _ = self.pool.try_send(block);
    }

    fn take_error(&self) -> Error {
        self.errors.take().unwrap_or_else(|| {
            Error::config(
                "reader",
                "a reader failed (error already reported)".to_string(),
            )
        })
    }
}
