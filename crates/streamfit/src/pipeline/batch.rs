//! What a pass hands its consumer: [`Batch`]es, through a running [`BatchStream`].
//!
//! A [`BatchStream`] is the consumer's end of one pass: it yields batches in order, records how
//! long the consumer waited for them and how full the prefetch queue was, and stops and joins
//! every pipeline thread when dropped. It neither reads nor shuffles; the threads behind it do.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::data::RowBlock;
use crate::error::Result;

/// A batch of rows on its way to the consumer. Its buffer returns to the pipeline's pool when
/// the batch is dropped, so steady-state training allocates nothing per batch.
pub struct Batch {
    /// The rows.
    pub rows: RowBlock,
    /// Step (iteration) index within the epoch, from 0.
    pub step: u64,
    /// True for the last batch of a step: the consumer updates after it.
    pub ends_step: bool,
    /// The pool the buffer returns to (none for a batch made with [`Batch::new`]).
    pub(super) home: Option<Sender<RowBlock>>,
}

impl Batch {
    /// A batch that belongs to no pool (dropping it frees its rows): how a stream of one's own
    /// (see [`BatchSource`](super::BatchSource)) hands over rows. `step` is the step's index in
    /// the epoch, from 0; `ends_step` marks the last batch of a step.
    pub fn new(rows: RowBlock, step: u64, ends_step: bool) -> Self {
        Batch {
            rows,
            step,
            ends_step,
            home: None,
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(home) = &self.home {
            let _ = home.try_send(std::mem::take(&mut self.rows));
        }
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
    pending: VecDeque<Batch>,
    /// Batches per group (to count queued batches from queued groups).
    per_group: usize,
}

impl BatchStream {
    /// The consumer's end of a pass whose `threads` send groups of `per_group` batches on
    /// `batches`; dropping `cancel` (or setting `stop`) ends them.
    pub(super) fn new(
        batches: Receiver<Result<Vec<Batch>>>,
        cancel: Sender<()>,
        stop: Arc<AtomicBool>,
        threads: Vec<JoinHandle<()>>,
        per_group: usize,
    ) -> Self {
        BatchStream {
            batches: Some(batches),
            cancel: Some(cancel),
            stop,
            threads,
            wait: Duration::ZERO,
            queue: QueueStats::default(),
            pending: VecDeque::new(),
            per_group,
        }
    }

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

/// What [`BatchStream::next_within`] found.
pub enum Waited {
    /// The next batch, or the error that ended the pass.
    Batch(Result<Batch>),
    /// The pass is over.
    Finished,
    /// No batch came within the time allowed; the pass goes on.
    TimedOut,
}

impl BatchStream {
    /// Like [`Iterator::next`], but waits at most `timeout` for a batch, so a consumer can
    /// check for an interrupt (Ctrl-C) while the pipeline works.
    pub fn next_within(&mut self, timeout: Duration) -> Waited {
        self.take(Some(timeout))
    }

    fn take(&mut self, timeout: Option<Duration>) -> Waited {
        if let Some(batch) = self.pending.pop_front() {
            return Waited::Batch(Ok(batch));
        }
        let Some(rx) = self.batches.as_ref() else {
            return Waited::Finished;
        };
        let queued = rx.len();
        self.queue.samples += 1;
        self.queue.occupancy_sum += (queued * self.per_group) as u64;
        self.queue.full += u64::from(Some(queued) == rx.capacity() && queued > 0);
        let started = Instant::now();
        let received = {
            let _span = tracing::trace_span!("wait").entered();
            match timeout {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(limit) => rx.recv_timeout(limit),
            }
        };
        self.wait += started.elapsed();
        match received {
            Ok(Ok(group)) => {
                self.pending.extend(group);
                match self.pending.pop_front() {
                    Some(batch) => Waited::Batch(Ok(batch)),
                    None => Waited::TimedOut,
                }
            }
            Ok(Err(e)) => {
                self.shutdown();
                Waited::Batch(Err(e))
            }
            Err(RecvTimeoutError::Timeout) => {
                // Counted once per batch handed out, not once per timed-out try.
                self.queue.samples -= 1;
                self.queue.occupancy_sum -= (queued * self.per_group) as u64;
                self.queue.full -= u64::from(Some(queued) == rx.capacity() && queued > 0);
                Waited::TimedOut
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.shutdown();
                Waited::Finished
            }
        }
    }
}

impl Iterator for BatchStream {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        loop {
            match self.take(None) {
                Waited::Batch(batch) => return Some(batch),
                Waited::Finished => return None,
                // An empty group (never sent): ask again.
                Waited::TimedOut => continue,
            }
        }
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        self.shutdown();
    }
}
