//! Exact mid-epoch restarts with shuffle lanes: every lane's state, followed and restored.
//!
//! As with one buffer ([`resume`](super::resume)), the lanes' decisions depend on row counts
//! and row ids only, so [`LaneTracker`] replays an epoch's batches through lanes of row ids
//! (zero features; the same planner and the same per-lane step as the running stage) up to a
//! step boundary, and records each lane's rows taken, generator and held ids, and the
//! selector's state ([`LaneCursor`]). [`restart`] turns such a cursor back into the start of
//! a lane pass: it re-reads the units holding the lanes' rows, refills each lane in slot order,
//! and starts the readers at the earliest row a lane has not taken, passing over the rows a
//! lane already took.

use std::ops::Range;

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::lane_stage::LaneStart;
use super::lanes::{
    LANE_CHUNK_ROWS, LaneCount, LaneInput, LanePlanner, Piece, lane_capacity, lane_rows, new_lanes,
    run_piece, stream_index,
};
use super::resume::refill;
use super::{Pipeline, Shuffle, ShuffleBuffer, StreamCursor};
use crate::data::RowBlock;
use crate::data::source::Unit;
use crate::error::{Error, Result};

/// One lane's state at a step boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaneCursor {
    /// Rows of its share of the plan stream the lane has taken.
    pub consumed: u64,
    /// Its generator.
    pub rng: Xoshiro256PlusPlus,
    /// Ids of the rows it holds, in slot order.
    pub buffer_ids: Vec<u64>,
}

/// The start of lane pass `epoch` of `pipeline` (before any batch).
pub(super) fn fresh_start(pipeline: &Pipeline, epoch: u64, seed: u64) -> LaneStart {
    let lanes = pipeline.config().lanes();
    let buffers = new_lanes(
        lanes,
        pipeline.buffer_capacity(),
        pipeline.source().row_width(),
        seed,
        epoch,
    );
    let plan_rows = pipeline.available_rows(epoch);
    let counts = (0..lanes)
        .map(|k| LaneCount {
            capacity: buffers[k].capacity() as u64,
            held: 0,
            total: lane_rows(plan_rows, k, lanes),
            consumed: 0,
        })
        .collect();
    LaneStart {
        buffers,
        planner: LanePlanner::new(counts, LanePlanner::selector(seed, epoch)),
        first_row: 0,
        next_rows: (0..lanes).map(|k| stream_index(0, k, lanes)).collect(),
    }
}

/// Follows one epoch's lanes on row ids, forward only.
pub(super) struct LaneTracker {
    planner: LanePlanner,
    buffers: Vec<ShuffleBuffer>,
    inputs: Vec<IdInput>,
    step_rows: u64,
    batch_rows: u64,
    rows_emitted: u64,
    pieces: Vec<Piece>,
}

impl LaneTracker {
    /// A tracker at the start of epoch `epoch` of `pipeline` (shuffled with `seed`).
    pub(super) fn new(pipeline: &Pipeline, epoch: u64, seed: u64) -> Self {
        let start = fresh_start(pipeline, epoch, seed);
        let lanes = start.buffers.len();
        let stream = StreamMap::new(pipeline, epoch);
        let buffers = start
            .buffers
            .iter()
            .map(|b| ShuffleBuffer::new(b.capacity(), 0, b.rng().clone()))
            .collect();
        LaneTracker {
            planner: start.planner,
            buffers,
            inputs: (0..lanes)
                .map(|lane| IdInput {
                    stream: stream.clone(),
                    lane,
                    num_lanes: lanes,
                    taken: 0,
                    ids: RowBlock::with_capacity(0, 0),
                })
                .collect(),
            step_rows: pipeline.config().step_rows,
            batch_rows: pipeline.config().batch_rows() as u64,
            rows_emitted: 0,
            pieces: Vec::new(),
        }
    }

    /// Moves to `target` rows emitted (a step boundary at or after the current one; at most
    /// the epoch's rows), batch by batch as the stage cuts them, and returns the cursor parts:
    /// the rows taken in all and every lane's state.
    pub(super) fn advance_to(&mut self, target: u64) -> (u64, Vec<LaneCursor>, Xoshiro256PlusPlus) {
        while self.rows_emitted < target {
            // Steps start at multiples of `step_rows`; a batch never crosses a step's end.
            let in_step = self.rows_emitted % self.step_rows;
            let rows = self
                .batch_rows
                .min(self.step_rows - in_step)
                .min(target - self.rows_emitted) as usize;
            self.pieces.clear();
            self.planner.split_batch(rows, &mut self.pieces);
            for piece in &self.pieces {
                run_piece(
                    &mut self.buffers[piece.lane],
                    &mut self.inputs[piece.lane],
                    piece,
                    &mut |_, _, _| std::ops::ControlFlow::Continue(()),
                );
            }
            self.rows_emitted += rows as u64;
        }
        let lanes = self
            .planner
            .counts()
            .iter()
            .zip(&self.buffers)
            .map(|(count, buffer)| LaneCursor {
                consumed: count.consumed,
                rng: buffer.rng().clone(),
                buffer_ids: buffer.row_ids().to_vec(),
            })
            .collect();
        let consumed = self.planner.counts().iter().map(|c| c.consumed).sum();
        (consumed, lanes, self.planner.selector_state().clone())
    }
}

/// The row ids of an epoch's plan stream: plan-stream index → row id.
#[derive(Clone)]
struct StreamMap {
    /// Per plan position: its first plan-stream index, its unit's first row id and its rows.
    positions: std::sync::Arc<Vec<(u64, u64, u64)>>,
}

impl StreamMap {
    fn new(pipeline: &Pipeline, epoch: u64) -> Self {
        let units: &[Unit] = pipeline.source().units();
        let mut start = 0;
        let positions = pipeline
            .plan(epoch)
            .iter()
            .zip(pipeline.position_rows(epoch))
            .map(|(&unit, rows)| {
                let entry = (start, units[unit].first_row_id, rows);
                start += rows;
                entry
            })
            .collect();
        StreamMap {
            positions: std::sync::Arc::new(positions),
        }
    }

    /// The id of plan-stream row `index` and how many rows from it on have consecutive ids.
    fn ids_at(&self, index: u64) -> (u64, u64) {
        let p = self
            .positions
            .partition_point(|&(start, _, _)| start <= index)
            - 1;
        let (start, first_id, rows) = self.positions[p];
        (first_id + (index - start), start + rows - index)
    }
}

/// A lane's input as row ids, made from the plan.
struct IdInput {
    stream: StreamMap,
    lane: usize,
    num_lanes: usize,
    taken: u64,
    ids: RowBlock,
}

impl LaneInput for IdInput {
    fn next_rows(&mut self, max_rows: usize) -> Option<(&RowBlock, Range<usize>)> {
        let index = stream_index(self.taken, self.lane, self.num_lanes);
        let (first_id, run) = self.stream.ids_at(index);
        let in_chunk = LANE_CHUNK_ROWS - self.taken % LANE_CHUNK_ROWS;
        let n = (max_rows as u64).min(run).min(in_chunk) as usize;
        self.ids.reset(0);
        self.ids
            .append_with::<()>(n, first_id, |_, _| Ok(()))
            .expect("nothing to fill");
        self.taken += n as u64;
        Some((&self.ids, 0..n))
    }
}

/// The start of a lane pass resuming at `cursor`, the plan position its readers start at,
/// and the rows re-read.
pub(super) fn restart(
    pipeline: &Pipeline,
    cursor: &StreamCursor,
) -> Result<(LaneStart, usize, u64)> {
    let cfg = pipeline.config();
    let bad =
        |what: &str| Error::config("resume", format!("the checkpoint's stream cursor {what}"));
    let lanes = cfg.lanes();
    let (Shuffle::Seeded(_), Some(selector)) = (cfg.shuffle, &cursor.lane_selector) else {
        return Err(bad("does not match the shuffle setting"));
    };
    if cursor.lanes.len() != lanes || cursor.rng.is_some() || !cursor.buffer_ids.is_empty() {
        return Err(bad("does not match «shuffle_lanes»"));
    }
    let plan_rows = pipeline.available_rows(cursor.epoch);
    let capacity = pipeline.buffer_capacity();
    let mut counts = Vec::with_capacity(lanes);
    let mut emitted = 0u64;
    for (k, lane) in cursor.lanes.iter().enumerate() {
        let count = LaneCount {
            capacity: lane_capacity(capacity, k, lanes) as u64,
            held: lane.buffer_ids.len() as u64,
            total: lane_rows(plan_rows, k, lanes),
            consumed: lane.consumed,
        };
        if count.consumed > count.total
            || count.held > count.capacity
            || count.held > count.consumed
        {
            return Err(bad("does not fit this dataset and batch size"));
        }
        emitted += count.consumed - count.held;
        counts.push(count);
    }
    if emitted != cursor.rows_emitted {
        return Err(bad("does not fit this dataset and batch size"));
    }
    let ids: Vec<u64> = cursor
        .lanes
        .iter()
        .flat_map(|l| l.buffer_ids.iter().copied())
        .collect();
    let (arena, reread) = refill(pipeline, &ids)?;
    let mut from = 0;
    let buffers = cursor
        .lanes
        .iter()
        .zip(&counts)
        .map(|(lane, count)| {
            let mut rows = RowBlock::with_capacity(arena.num_features(), count.capacity as usize);
            rows.extend_from(&arena, from..from + lane.buffer_ids.len());
            from += lane.buffer_ids.len();
            ShuffleBuffer::from_parts(count.capacity as usize, rows, lane.rng.clone())
        })
        .collect();
    let next_rows: Vec<u64> = counts
        .iter()
        .enumerate()
        .map(|(k, c)| stream_index(c.consumed, k, lanes))
        .collect();
    // The readers start at the plan position holding the earliest row a lane has still to
    // take (none: past the plan).
    let earliest = counts
        .iter()
        .zip(&next_rows)
        .filter(|(c, _)| c.consumed < c.total)
        .map(|(_, &row)| row)
        .min()
        .unwrap_or(plan_rows);
    let position_rows = pipeline.position_rows(cursor.epoch);
    let mut first_row = 0u64;
    let mut position = position_rows.len();
    for (p, &rows) in position_rows.iter().enumerate() {
        if first_row + rows > earliest {
            position = p;
            break;
        }
        first_row += rows;
    }
    Ok((
        LaneStart {
            buffers,
            planner: LanePlanner::new(counts, selector.clone()),
            first_row,
            next_rows,
        },
        position,
        reread,
    ))
}
