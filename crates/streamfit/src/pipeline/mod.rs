//! The bounded pipeline from a [`Source`] to a stream of batches.
//!
//! ```text
//!  plan ──► reader-0..R ──blocks──► shuffle ──batches──► prefetch queue (P) ──► consumer
//!                        bounded    (ShuffleBuffer +      bounded
//!                        channels    batcher)
//!                                        ◄──── batch buffers recycled on drop ◄────
//! ```
//! Layer 2: spawns the reader threads and the `shuffle` thread, knows nothing of models or
//! training. [`Pipeline::epoch`] starts one pass and returns a [`BatchStream`]; the batch
//! sequence is a pure function of (data, seed, epoch, config), whatever the reader count or
//! timing, because readers take units round-robin and the shuffle stage consumes them in plan
//! order. Every channel is bounded and batch buffers come from a fixed pool, so resident
//! memory is bounded by [`PipelineConfig::memory_budget_bytes`]. An error anywhere ends the
//! stream with that error promptly; dropping the stream early stops and joins every thread.

pub mod plan;
pub mod reader;
pub mod resume;
pub mod shuffle;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::data::RowBlock;
use crate::data::source::Source;
use crate::error::{Error, Result};

pub use self::plan::{RngStream, Shuffle, epoch_plan, rng_for};
pub use self::reader::{ErrorSlot, Next, PlanOrderReceiver, ReaderSettings, spawn_readers};
pub use self::resume::{CursorTracker, StreamCursor};
pub use self::shuffle::ShuffleBuffer;

/// What happens to a last batch smaller than the batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastBatch {
    /// Emit it (an epoch has ceil(N/b) steps).
    Keep,
    /// Drop its rows (an epoch has floor(N/b) steps).
    Drop,
}

/// Settings of one pipeline pass. Checked by [`PipelineConfig::check`] before any thread.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Rows per step (the batch size b). A step larger than `piece_rows` arrives in several
    /// batches, the last one marked [`Batch::ends_step`].
    pub step_rows: u64,
    /// Largest batch the pipeline materialises. By default 16,384.
    pub piece_rows: usize,
    /// Keep or drop a final partial step. By default keep.
    pub last_batch: LastBatch,
    /// Unit and row order. By default seeded with 0.
    pub shuffle: Shuffle,
    /// Rows held by the shuffle buffer. By default 65,536.
    pub shuffle_buffer_rows: usize,
    /// Batches queued ahead of the consumer. By default 4.
    pub prefetch: usize,
    /// Reader threads. By default 2.
    pub num_readers: usize,
    /// Rows per decoded block. By default 8,192.
    pub block_rows: usize,
    /// Blocks each reader may queue. By default 2.
    pub reader_channel_blocks: usize,
    /// This rank of a data-parallel run: it reads the units at plan positions ≡ rank (mod
    /// world). By default 0.
    pub rank: usize,
    /// Ranks of a data-parallel run. By default 1 (this process reads everything).
    pub world: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            step_rows: 256,
            piece_rows: 16_384,
            last_batch: LastBatch::Keep,
            shuffle: Shuffle::Seeded(0),
            shuffle_buffer_rows: 65_536,
            prefetch: 4,
            num_readers: 2,
            block_rows: 8_192,
            reader_channel_blocks: 2,
            rank: 0,
            world: 1,
        }
    }
}

impl PipelineConfig {
    /// Validates the settings.
    pub fn check(&self) -> Result<()> {
        if self.step_rows == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if self.piece_rows == 0 || self.block_rows == 0 {
            return Err(Error::config("piece/block rows", "must be at least 1"));
        }
        if self.num_readers == 0 || self.num_readers > 256 {
            return Err(Error::config("readers", "must be between 1 and 256"));
        }
        if self.world == 0 || self.rank >= self.world {
            return Err(Error::internal(format!(
                "rank {} of a world of {}",
                self.rank, self.world
            )));
        }
        if self.world > 1 && self.last_batch == LastBatch::Drop {
            return Err(Error::config(
                "drop_last",
                "is not supported in a data-parallel (MPI) run",
            ));
        }
        if matches!(self.shuffle, Shuffle::Seeded(_)) && self.shuffle_buffer_rows == 0 {
            return Err(Error::config(
                "shuffle_buffer",
                "must be at least 1 row (use «no_shuffle» to read in file order)",
            ));
        }
        Ok(())
    }

    /// The reader threads' part of the settings.
    pub fn reader_settings(&self) -> ReaderSettings {
        ReaderSettings {
            num_readers: self.num_readers,
            block_rows: self.block_rows,
            channel_blocks: self.reader_channel_blocks,
        }
    }

    /// Rows of the largest batch: `min(step_rows, piece_rows)`.
    pub fn batch_rows(&self) -> usize {
        self.step_rows.min(self.piece_rows as u64) as usize
    }

    /// Batches handed over per message: small batches travel in groups of about
    /// [`GROUP_ROWS`] rows, so the shuffle thread wakes a waiting trainer once per group
    /// instead of once per batch (a wake-up costs microseconds, a 256-row batch about 20).
    pub fn batches_per_group(&self) -> usize {
        (GROUP_ROWS / self.batch_rows().max(1)).max(1)
    }

    /// Groups the prefetch queue holds: `prefetch` batches, rounded up to whole groups
    /// (0 keeps the queue a rendezvous).
    pub fn queue_groups(&self) -> usize {
        match self.prefetch {
            0 => 0,
            // Two groups at least: one queue slot alone makes the shuffle thread wait for
            // every group the trainer has not started yet.
            p => p.div_ceil(self.batches_per_group()).max(2),
        }
    }

    /// Batch buffers in circulation: the groups in the prefetch queue, the group being filled
    /// and the group at the consumer.
    pub fn num_batch_buffers(&self) -> usize {
        (self.queue_groups() + 2) * self.batches_per_group()
    }

    /// The resident-memory budget this configuration implies for rows of `num_features`:
    /// shuffle buffer + batch buffers + reader blocks (queued, being decoded, being consumed).
    pub fn memory_budget_bytes(&self, num_features: usize, num_rows: u64) -> u64 {
        let row = RowBlock::bytes_per_row(num_features) as u64;
        let shuffle_rows = match self.shuffle {
            Shuffle::Off => 0,
            Shuffle::Seeded(_) => (self.shuffle_buffer_rows as u64).min(num_rows),
        };
        let batch_rows = (self.num_batch_buffers() * self.batch_rows()) as u64;
        // Per reader: queued blocks, the block being filled and the decoder's arrow batch;
        // plus the block the consumer holds.
        let block_rows = (self.num_readers * (self.reader_channel_blocks + 2) + 1) as u64
            * (self.block_rows as u64).min(num_rows);
        (shuffle_rows + batch_rows + block_rows) * row
    }
}

/// Rows per message from the shuffle thread to the trainer (see
/// [`PipelineConfig::batches_per_group`]).
pub const GROUP_ROWS: usize = 4_096;

/// A batch of rows on its way to the consumer. Its buffer returns to the pipeline's pool when
/// the batch is dropped, so steady-state training allocates nothing per batch.
pub struct Batch {
    /// The rows.
    pub rows: RowBlock,
    /// Step (iteration) index within the epoch, from 0.
    pub step: u64,
    /// True for the last batch of a step: the consumer updates after it.
    pub ends_step: bool,
    home: Sender<RowBlock>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        let _ = self.home.try_send(std::mem::take(&mut self.rows));
    }
}

/// Prefetch-queue occupancy as the consumer found it: one sample each time it had to take a
/// new group of batches from the queue (a partial last group counts as a full one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Groups taken from the queue.
    pub samples: u64,
    /// Sum of the batches waiting at each ask (queued groups × batches per group).
    pub occupancy_sum: u64,
    /// Takes that found the queue full.
    pub full: u64,
}

impl QueueStats {
    /// Mean batches waiting.
    pub fn mean_occupancy(&self) -> f64 {
        self.occupancy_sum as f64 / self.samples.max(1) as f64
    }

    /// Share of asks that found the queue full.
    pub fn full_fraction(&self) -> f64 {
        self.full as f64 / self.samples.max(1) as f64
    }
}

/// A running pass over the data. Yields batches in order, then `None`; an error ends it.
/// Dropping it stops and joins all pipeline threads.
pub struct BatchStream {
    batches: Option<Receiver<Result<Vec<Batch>>>>,
    cancel: Option<Sender<()>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    wait: Duration,
    queue: QueueStats,
    /// Batches of the last group received, not yet yielded.
    pending: std::collections::VecDeque<Batch>,
    /// Batches per group (to count queued batches from queued groups).
    per_group: usize,
}

impl BatchStream {
    /// Total time [`Iterator::next`] spent blocked waiting for a batch (the consumer's stall).
    pub fn wait_time(&self) -> Duration {
        self.wait
    }

    /// How full the prefetch queue was each time the consumer asked for a batch.
    pub fn queue_stats(&self) -> QueueStats {
        self.queue
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cancel.take();
        self.batches.take();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Iterator for BatchStream {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if let Some(batch) = self.pending.pop_front() {
            return Some(Ok(batch));
        }
        let rx = self.batches.as_ref()?;
        let queued = rx.len();
        self.queue.samples += 1;
        self.queue.occupancy_sum += (queued * self.per_group) as u64;
        self.queue.full += u64::from(Some(queued) == rx.capacity() && queued > 0);
        let started = Instant::now();
        let received = {
            let _span = tracing::trace_span!("wait").entered();
            rx.recv()
        };
        self.wait += started.elapsed();
        match received {
            Ok(Ok(group)) => {
                self.pending.extend(group);
                self.pending.pop_front().map(Ok)
            }
            Ok(Err(e)) => {
                self.shutdown();
                Some(Err(e))
            }
            Err(_) => {
                self.shutdown();
                None
            }
        }
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts passes over one source.
pub struct Pipeline {
    source: Arc<dyn Source>,
    config: PipelineConfig,
}

impl Pipeline {
    /// A pipeline over `source`; `config` must have passed [`PipelineConfig::check`].
    pub fn new(source: Arc<dyn Source>, config: PipelineConfig) -> Self {
        Pipeline { source, config }
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The source.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Number of steps in an epoch: ceil(N/b), or floor(N/b) when the last batch is dropped.
    /// In a data-parallel run, the steps of a rank holding an even share, ceil(N/world) rows
    /// (the real count is the largest share's, which depends on the epoch's plan).
    pub fn steps_per_epoch(&self) -> u64 {
        let n = self
            .source
            .num_rows()
            .div_ceil(self.config.world.max(1) as u64);
        let b = self.config.step_rows;
        match self.config.last_batch {
            LastBatch::Keep => n.div_ceil(b),
            LastBatch::Drop => n / b,
        }
    }

    /// Steps in epoch `epoch`: [`Pipeline::steps_per_epoch`], or in a data-parallel run the
    /// steps of the largest share that epoch (the ranks step together until every share is
    /// used up).
    pub fn steps_in_epoch(&self, epoch: u64) -> u64 {
        let cfg = &self.config;
        if cfg.world <= 1 {
            return self.steps_per_epoch();
        }
        let units = self.source.units();
        let mut rows = vec![0u64; cfg.world];
        for (position, &unit) in epoch_plan(units.len(), cfg.shuffle, epoch)
            .iter()
            .enumerate()
        {
            rows[position % cfg.world] += units[unit].num_rows;
        }
        rows.iter()
            .map(|r| r.div_ceil(cfg.step_rows))
            .max()
            .unwrap_or(0)
    }

    /// Steps in the first `epochs` epochs.
    pub fn total_steps(&self, epochs: usize) -> u64 {
        (0..epochs as u64).map(|e| self.steps_in_epoch(e)).sum()
    }

    /// Restarts an epoch exactly where `cursor` stands (see [`resume`]): rebuilds the shuffle
    /// buffer by re-reading only the units that hold its rows, then streams the rest of the
    /// plan. Returns the stream and the number of rows re-read.
    pub fn resume(&self, cursor: &StreamCursor) -> Result<(BatchStream, u64)> {
        let (start, plan, reread) = resume::restart(self, cursor)?;
        Ok((self.start(plan, start)?, reread))
    }

    /// The units this pipeline reads in epoch `epoch`, in order: the epoch's plan (file order,
    /// or permuted from the seed), or in a data-parallel run this rank's share of it (the plan
    /// positions ≡ rank mod world).
    pub fn plan(&self, epoch: u64) -> Vec<usize> {
        let cfg = &self.config;
        let plan = epoch_plan(self.source.units().len(), cfg.shuffle, epoch);
        if cfg.world <= 1 {
            return plan;
        }
        plan.into_iter()
            .enumerate()
            .filter(|(position, _)| position % cfg.world == cfg.rank)
            .map(|(_, unit)| unit)
            .collect()
    }

    /// Rows this pipeline emits in epoch `epoch`: [`Pipeline::rows_per_epoch`], or in a
    /// data-parallel run the rows of this rank's units.
    pub fn epoch_rows(&self, epoch: u64) -> u64 {
        if self.config.world <= 1 {
            return self.rows_per_epoch();
        }
        let units = self.source.units();
        self.plan(epoch).iter().map(|&u| units[u].num_rows).sum()
    }

    /// Starts epoch `epoch`: readers, the shuffle thread, and the prefetch queue.
    pub fn epoch(&self, epoch: u64) -> Result<BatchStream> {
        let cfg = &self.config;
        let plan = self.plan(epoch);
        let buffer = match cfg.shuffle {
            Shuffle::Off => None,
            Shuffle::Seeded(seed) => Some(ShuffleBuffer::new(
                self.buffer_capacity(),
                self.source.num_features(),
                rng_for(seed, epoch, RngStream::ShuffleBuffer),
            )),
        };
        self.start(
            plan,
            StreamStart {
                skip_rows: 0,
                buffer,
                step: 0,
                rows_emitted: 0,
                epoch_rows: self.epoch_rows(epoch),
            },
        )
    }

    /// Rows the shuffle buffer holds: the configured size, at most the dataset (a buffer that
    /// never fills only drains, so the clamp changes no result).
    pub fn buffer_capacity(&self) -> usize {
        self.config
            .shuffle_buffer_rows
            .min(usize::try_from(self.source.num_rows()).unwrap_or(usize::MAX))
    }

    /// Rows an epoch emits: all of them, or whole steps only with [`LastBatch::Drop`].
    pub fn rows_per_epoch(&self) -> u64 {
        let n = self.source.num_rows();
        match self.config.last_batch {
            LastBatch::Keep => n,
            LastBatch::Drop => n / self.config.step_rows * self.config.step_rows,
        }
    }

    /// Starts the readers on `plan` and the shuffle thread in state `from`.
    fn start(&self, plan: Vec<usize>, from: StreamStart) -> Result<BatchStream> {
        let cfg = &self.config;
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(ErrorSlot::default());
        let (mut threads, blocks) = spawn_readers(
            self.source.clone(),
            Arc::new(plan),
            cfg.reader_settings(),
            stop.clone(),
            errors,
        )?;
        let (batch_tx, batch_rx) = bounded(cfg.queue_groups());
        let (cancel_tx, cancel_rx) = bounded::<()>(0);
        let (pool_tx, pool_rx) = bounded(cfg.num_batch_buffers());
        let stage = ShuffleStage {
            blocks,
            skip_rows: from.skip_rows,
            buffer: from.buffer,
            batcher: Batcher {
                out: batch_tx,
                cancel: cancel_rx,
                pool_tx,
                pool_rx,
                num_features: self.source.num_features(),
                batch_rows: cfg.batch_rows(),
                step_rows: cfg.step_rows,
                rows_left: from.epoch_rows - from.rows_emitted,
                rows_in_step: 0,
                step: from.step,
                current: None,
                group: Vec::with_capacity(cfg.batches_per_group()),
                per_group: cfg.batches_per_group(),
            },
        };
        let shuffle_thread = std::thread::Builder::new()
            .name("shuffle".to_string())
            .spawn(move || stage.run());
        match shuffle_thread {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err(Error::internal(format!("cannot start shuffle thread: {e}")));
            }
        }
        Ok(BatchStream {
            batches: Some(batch_rx),
            cancel: Some(cancel_tx),
            stop,
            threads,
            wait: Duration::ZERO,
            queue: QueueStats::default(),
            pending: std::collections::VecDeque::new(),
            per_group: cfg.batches_per_group(),
        })
    }

    /// Reads every unit with the readers only (no shuffle, no batching) and calls `consume`
    /// on each block in file order: the read ceiling that training is compared to, and the
    /// way `convert` and `inspect --stats` stream a dataset. An error from `consume` stops the
    /// readers and is returned.
    pub fn scan(&self, mut consume: impl FnMut(&RowBlock) -> Result<()>) -> Result<()> {
        let plan = Arc::new(epoch_plan(self.source.units().len(), Shuffle::Off, 0));
        let stop = Arc::new(AtomicBool::new(false));
        let (threads, mut blocks) = spawn_readers(
            self.source.clone(),
            plan,
            self.config.reader_settings(),
            stop.clone(),
            Arc::new(ErrorSlot::default()),
        )?;
        let (_cancel_tx, cancel_rx) = bounded::<()>(0);
        let result = loop {
            match blocks.next_block(&cancel_rx) {
                Ok(Next::Block(block)) => {
                    if let Err(e) = consume(&block) {
                        break Err(e);
                    }
                    blocks.recycle(block);
                }
                Ok(Next::Finished | Next::Cancelled) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        stop.store(true, Ordering::Relaxed);
        drop(blocks);
        for handle in threads {
            let _ = handle.join();
        }
        result
    }
}

/// The `shuffle` thread: blocks in plan order → shuffle buffer → batcher.
struct ShuffleStage {
    blocks: PlanOrderReceiver,
    /// Leading rows of the plan to drop (already consumed before a resume).
    skip_rows: u64,
    buffer: Option<ShuffleBuffer>,
    batcher: Batcher,
}

/// Where a stream starts: a fresh epoch, or a resumed one.
struct StreamStart {
    skip_rows: u64,
    buffer: Option<ShuffleBuffer>,
    step: u64,
    rows_emitted: u64,
    /// Rows the whole epoch emits ([`Pipeline::epoch_rows`]).
    epoch_rows: u64,
}

impl ShuffleStage {
    fn run(mut self) {
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
                let mut emit = |x: &[f32], y: f32, id: u64| batcher.push(x, y, id);
                match &mut self.buffer {
                    Some(buffer) => buffer.push_block(&block, &mut emit),
                    None => (0..block.num_rows()).try_for_each(|i| {
                        emit(block.row(i), block.targets()[i], block.row_ids()[i])
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
        // The last row emitted ends the last step, so nothing is left to flush; a shortfall
        // means a source broke its row-count contract.
        match self.batcher.rows_left {
            0 => Ok(()),
            missing => Err(Error::internal(format!(
                "the epoch ended {missing} rows short of the dataset's row count"
            ))),
        }
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
        self.rows_left -= 1;
        self.rows_in_step += 1;
        if self.rows_in_step == self.step_rows || self.rows_left == 0 {
            self.send(true)
        } else if current.num_rows() == self.batch_rows {
            self.send(false)
        } else {
            ControlFlow::Continue(())
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
            home: self.pool_tx.clone(),
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
