//! The lanes' stage: the `shuffle` thread deals rows to the lanes and lane threads fill the
//! batches.
//!
//! With more than one shuffle lane ([`lanes`](super::lanes)), [`LaneStage`] runs on the
//! `shuffle` thread as a coordinator. Per round (one group of batches, about
//! [`GROUP_ROWS`](super::GROUP_ROWS) rows) it lays out the batches, asks the [`LanePlanner`]
//! how each batch splits into lane pieces, deals the readers' blocks (taken in plan order) to
//! the lanes by chunk until every lane holds the rows its pieces take, and sends each
//! `shuffle-lane-N` thread one job: its lanes' pieces, each to be written straight into its
//! rows of the round's batch buffers. Two rounds are in flight at once; rounds are handed to
//! the consumer in order once all their pieces are written. A lane belongs to one thread for
//! the whole pass and runs its pieces in batch order, so the batches are the same for any
//! thread count. The stage reads no files and decides nothing from timing.

use std::collections::VecDeque;
use std::ops::{ControlFlow, Range};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::batch::Batch;
use super::lane_segment::{Segment, SegmentWriter};
use super::lanes::{LaneInput, LanePlanner, Piece, lane_of, run_piece};
use super::stage::StreamStart;
use super::{LANE_ROUNDS, Next, PipelineConfig, PlanOrderReceiver, ShuffleBuffer, reader};
use crate::data::RowBlock;
use crate::error::{Error, Result};

/// Where a lane pass starts.
pub(super) struct LaneStart {
    /// Every lane's buffer, by lane.
    pub buffers: Vec<ShuffleBuffer>,
    /// The lanes' counts and the selector.
    pub planner: LanePlanner,
    /// Plan-stream index of the first row the pass's readers deliver.
    pub first_row: u64,
    /// Per lane, the plan-stream index of its next row (rows before it were taken before a
    /// resume and are passed over).
    pub next_rows: Vec<u64>,
}

/// A batch of a round: its rows, step and whether it ends the step.
struct BatchSpec {
    rows: usize,
    step: u64,
    ends_step: bool,
}

/// One round in flight: its batches and the jobs not yet done.
struct Round {
    id: u64,
    specs: Vec<BatchSpec>,
    buffers: Vec<RowBlock>,
    pending: usize,
}

/// The coordinator on the `shuffle` thread; see the module docs.
pub(super) struct LaneStage {
    blocks: PlanOrderReceiver,
    router: Router,
    planner: LanePlanner,
    buffers: Vec<ShuffleBuffer>,
    out: Sender<Result<Vec<Batch>>>,
    cancel: Receiver<()>,
    pool_tx: Sender<RowBlock>,
    pool_rx: Receiver<RowBlock>,
    num_features: usize,
    num_threads: usize,
    batch_rows: usize,
    step_rows: u64,
    per_group: usize,
    rows_left: u64,
    rows_in_step: u64,
    step: u64,
    next_round: u64,
}

impl LaneStage {
    /// The stage for blocks from `blocks`, starting in state `from` (whose `lanes` must be
    /// set), sending groups of batches on `out` until `cancel` is dropped.
    pub(super) fn new(
        blocks: PlanOrderReceiver,
        from: StreamStart,
        cfg: &PipelineConfig,
        num_features: usize,
        out: Sender<Result<Vec<Batch>>>,
        cancel: Receiver<()>,
    ) -> Self {
        let start = from.lanes.expect("a lane pass starts with its lanes");
        let (step, rows_left) = (from.step, from.epoch_rows - from.rows_emitted);
        let (pool_tx, pool_rx) = bounded(cfg.num_batch_buffers());
        let num_lanes = start.buffers.len();
        let num_threads = match cfg.lane_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .clamp(1, num_lanes);
        LaneStage {
            blocks,
            router: Router {
                num_lanes,
                next_row: start.first_row,
                next_rows: start.next_rows,
                queues: vec![VecDeque::new(); num_lanes],
                queued: vec![0; num_lanes],
                held: VecDeque::new(),
            },
            planner: start.planner,
            buffers: start.buffers,
            out,
            cancel,
            pool_tx,
            pool_rx,
            num_features,
            num_threads,
            batch_rows: cfg.batch_rows(),
            step_rows: cfg.step_rows,
            per_group: cfg.batches_per_group(),
            rows_left,
            // A stream starts at a step boundary.
            rows_in_step: 0,
            step,
            next_round: 0,
        }
    }

    /// Runs the pass, then ends; an error is sent down the queue.
    pub(super) fn run(mut self) {
        // Declared before the threads' scope: the rounds in flight hold the buffers the lane
        // threads write into, so they must outlive the threads.
        let mut flight: VecDeque<Round> = VecDeque::new();
        let buffers = std::mem::take(&mut self.buffers);
        let result = std::thread::scope(|scope| {
            let (done_tx, done_rx) = unbounded::<u64>();
            let mut jobs = Vec::with_capacity(self.num_threads);
            let mut owned: Vec<Vec<ShuffleBuffer>> =
                (0..self.num_threads).map(|_| Vec::new()).collect();
            for (lane, buffer) in buffers.into_iter().enumerate() {
                owned[lane % self.num_threads].push(buffer);
            }
            for (t, lanes) in owned.into_iter().enumerate() {
                let (tx, rx) = bounded::<Job>(LANE_ROUNDS);
                let done = done_tx.clone();
                std::thread::Builder::new()
                    .name(format!("shuffle-lane-{t}"))
                    .spawn_scoped(scope, move || work(lanes, rx, done))
                    .map_err(|e| Error::internal(format!("cannot start a lane thread: {e}")))?;
                jobs.push(tx);
            }
            let result = self.pump(&jobs, &done_rx, &mut flight);
            // Dropping the job senders lets every thread finish its jobs and stop; the scope
            // joins them before `flight` goes.
            drop(jobs);
            result
        });
        drop(flight);
        if let Err(e) = result {
            let _ = self.out.send(Err(e));
        }
    }

    /// Runs every round; returns early (Ok) when the consumer went away.
    fn pump(
        &mut self,
        jobs: &[Sender<Job>],
        done: &Receiver<u64>,
        flight: &mut VecDeque<Round>,
    ) -> Result<()> {
        let mut pieces = Vec::new();
        loop {
            let specs = self.next_batches();
            if specs.is_empty() {
                break;
            }
            let mut buffers = Vec::with_capacity(specs.len());
            let mut lane_pieces: Vec<Vec<(Piece, Segment)>> =
                (0..self.router.num_lanes).map(|_| Vec::new()).collect();
            for spec in &specs {
                let mut rows =
                    reader::recycled_or_new(&self.pool_rx, self.num_features, self.batch_rows);
                rows.append_with::<()>(spec.rows, 0, |_, _| Ok(()))
                    .expect("nothing to fill");
                pieces.clear();
                self.planner.split_batch(spec.rows, &mut pieces);
                for piece in &pieces {
                    lane_pieces[piece.lane].push((*piece, Segment::of(&mut rows, piece)));
                }
                buffers.push(rows);
            }
            let need: Vec<u64> = lane_pieces
                .iter()
                .map(|p| p.iter().map(|(piece, _)| piece.take).sum())
                .collect();
            if self.deal_until(&need)?.is_break() {
                return Ok(());
            }
            let id = self.next_round;
            self.next_round += 1;
            let mut thread_jobs: Vec<Job> = (0..jobs.len())
                .map(|_| Job {
                    round: id,
                    lanes: Vec::new(),
                })
                .collect();
            for (lane, pieces) in lane_pieces.into_iter().enumerate() {
                if pieces.is_empty() {
                    continue;
                }
                let input = SliceQueue {
                    slices: self.router.take(lane, need[lane]),
                    at: 0,
                };
                thread_jobs[lane % jobs.len()].lanes.push(LaneJob {
                    slot: lane / jobs.len(),
                    input,
                    pieces,
                });
            }
            let mut pending = 0;
            for (job, tx) in thread_jobs.into_iter().zip(jobs) {
                if job.lanes.is_empty() {
                    continue;
                }
                tx.send(job)
                    .map_err(|_| Error::internal("a lane thread stopped unexpectedly"))?;
                pending += 1;
            }
            flight.push_back(Round {
                id,
                specs,
                buffers,
                pending,
            });
            while flight.len() >= LANE_ROUNDS {
                if self.finish_oldest(flight, done)?.is_break() {
                    return Ok(());
                }
            }
        }
        while !flight.is_empty() {
            if self.finish_oldest(flight, done)?.is_break() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The batches of the next round (a group), as the one-buffer stage cuts them.
    fn next_batches(&mut self) -> Vec<BatchSpec> {
        let mut specs = Vec::with_capacity(self.per_group);
        while specs.len() < self.per_group && self.rows_left > 0 {
            let rows = (self.batch_rows as u64)
                .min(self.step_rows - self.rows_in_step)
                .min(self.rows_left);
            self.rows_in_step += rows;
            self.rows_left -= rows;
            let ends_step = self.rows_in_step == self.step_rows || self.rows_left == 0;
            specs.push(BatchSpec {
                rows: rows as usize,
                step: self.step,
                ends_step,
            });
            if ends_step {
                self.step += 1;
                self.rows_in_step = 0;
            }
        }
        specs
    }

    /// Deals blocks to the lanes until lane k holds `need[k]` rows; `Break` when cancelled.
    fn deal_until(&mut self, need: &[u64]) -> Result<ControlFlow<()>> {
        while need.iter().zip(&self.router.queued).any(|(n, q)| q < n) {
            match self.blocks.next_block(&self.cancel)? {
                Next::Block(block) => {
                    let _span = tracing::trace_span!("shuffle", rows = block.num_rows()).entered();
                    self.router.deal(block);
                }
                Next::Cancelled => return Ok(ControlFlow::Break(())),
                Next::Finished => {
                    return Err(Error::internal(
                        "the epoch ended short of the dataset's row count",
                    ));
                }
                Next::FileDropped { .. } => {
                    return Err(Error::internal("a file was dropped in a pass with lanes"));
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Waits for the oldest round's jobs, then sends its batches; `Break` when the consumer
    /// went away.
    fn finish_oldest(
        &mut self,
        flight: &mut VecDeque<Round>,
        done: &Receiver<u64>,
    ) -> Result<ControlFlow<()>> {
        while flight.front().is_some_and(|r| r.pending > 0) {
            let id = done
                .recv()
                .map_err(|_| Error::internal("a lane thread stopped unexpectedly"))?;
            let first = flight.front().map_or(0, |r| r.id);
            flight[(id - first) as usize].pending -= 1;
        }
        let Some(round) = flight.pop_front() else {
            return Ok(ControlFlow::Continue(()));
        };
        self.router.recycle(&self.blocks);
        let _span = tracing::trace_span!("batch", batches = round.specs.len()).entered();
        let group: Vec<Batch> = round
            .specs
            .iter()
            .zip(round.buffers)
            .map(|(spec, rows)| Batch {
                rows,
                step: spec.step,
                ends_step: spec.ends_step,
                home: Some(self.pool_tx.clone()),
            })
            .collect();
        Ok(match self.out.send(Ok(group)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        })
    }
}

/// Deals the plan stream's rows to the lanes' queues, by chunk.
struct Router {
    num_lanes: usize,
    /// Plan-stream index of the next row to arrive.
    next_row: u64,
    /// Per lane, the index of its next row: earlier rows of the lane are passed over.
    next_rows: Vec<u64>,
    queues: Vec<VecDeque<(Arc<RowBlock>, Range<usize>)>>,
    queued: Vec<u64>,
    /// Blocks dealt, in arrival order, until every lane is done with them.
    held: VecDeque<Arc<RowBlock>>,
}

impl Router {
    fn deal(&mut self, block: RowBlock) {
        let block = Arc::new(block);
        let n = block.num_rows();
        let mut i = 0;
        while i < n {
            let row = self.next_row;
            let lane = lane_of(row, self.num_lanes);
            let chunk_end =
                (row / super::lanes::LANE_CHUNK_ROWS + 1) * super::lanes::LANE_CHUNK_ROWS;
            let len = ((n - i) as u64).min(chunk_end - row) as usize;
            let skip = (self.next_rows[lane].saturating_sub(row) as usize).min(len);
            if skip < len {
                self.queues[lane].push_back((block.clone(), i + skip..i + len));
                self.queued[lane] += (len - skip) as u64;
                self.next_rows[lane] = row + len as u64;
            }
            i += len;
            self.next_row += len as u64;
        }
        self.held.push_back(block);
    }

    /// The first `rows` rows queued for `lane`, as slices.
    fn take(&mut self, lane: usize, rows: u64) -> Vec<(Arc<RowBlock>, Range<usize>)> {
        let mut slices = Vec::new();
        let mut left = rows;
        while left > 0 {
            let (block, range) = self.queues[lane].front_mut().expect("dealt before taken");
            let n = (range.len() as u64).min(left) as usize;
            slices.push((block.clone(), range.start..range.start + n));
            range.start += n;
            if range.start == range.end {
                self.queues[lane].pop_front();
            }
            left -= n as u64;
        }
        self.queued[lane] -= rows;
        slices
    }

    /// Hands the blocks no lane needs any more back to the readers.
    fn recycle(&mut self, blocks: &PlanOrderReceiver) {
        while self.held.front().is_some_and(|b| Arc::strong_count(b) == 1) {
            if let Some(block) = self.held.pop_front().and_then(Arc::into_inner) {
                blocks.recycle(block);
            }
        }
    }
}

/// A lane's input for one job: slices of blocks in plan-stream order.
struct SliceQueue {
    slices: Vec<(Arc<RowBlock>, Range<usize>)>,
    at: usize,
}

impl LaneInput for SliceQueue {
    fn next_rows(&mut self, max_rows: usize) -> Option<(&RowBlock, Range<usize>)> {
        let i = self.at;
        let range = &mut self.slices.get_mut(i)?.1;
        let n = range.len().min(max_rows);
        let rows = range.start..range.start + n;
        range.start += n;
        if range.start == range.end {
            self.at += 1;
        }
        Some((&self.slices[i].0, rows))
    }
}

/// One lane's part of a job.
struct LaneJob {
    /// The lane's index among its thread's lanes.
    slot: usize,
    input: SliceQueue,
    pieces: Vec<(Piece, Segment)>,
}

/// One thread's part of a round.
struct Job {
    round: u64,
    lanes: Vec<LaneJob>,
}

/// A lane thread: runs its lanes' pieces, job by job, and reports each job done.
fn work(mut lanes: Vec<ShuffleBuffer>, jobs: Receiver<Job>, done: Sender<u64>) {
    for job in jobs {
        {
            let rows: usize = job
                .lanes
                .iter()
                .flat_map(|l| &l.pieces)
                .map(|(p, _)| p.rows)
                .sum();
            let _span = tracing::trace_span!("shuffle", rows).entered();
            for lane in job.lanes {
                let buffer = &mut lanes[lane.slot];
                let mut input = lane.input;
                for (piece, segment) in &lane.pieces {
                    // SAFETY: the segment's rows belong to this piece alone, and its round's
                    // buffers stay in place until this job is reported done.
                    let mut out = unsafe { SegmentWriter::new(segment) };
                    run_piece(buffer, &mut input, piece, &mut |x, y, id| {
                        out.push(x, y, id);
                        ControlFlow::Continue(())
                    });
                }
                // The blocks' last references go before the job is reported done.
                drop(input);
            }
        }
        if done.send(job.round).is_err() {
            return;
        }
    }
}
