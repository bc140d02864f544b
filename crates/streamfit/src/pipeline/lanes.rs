//! Shuffle lanes: K independent reservoirs whose rows interleave into batches, so that the
//! shuffle work can run on several threads while the batches stay a function of the seed.
//!
//! With `shuffle_lanes` = K above 1 the rows of an epoch's plan stream (the rows in plan order,
//! numbered from 0) are dealt to the lanes in chunks of [`LANE_CHUNK_ROWS`]: chunk c goes to
//! lane c mod K. Each lane is a [`ShuffleBuffer`] of its share of the shuffle buffer's rows
//! (the total is unchanged) with its own generator, derived from the epoch's by jumps. Every
//! batch is split among the lanes in proportion to the rows each still has to emit (largest
//! remainders, so every lane ends with the epoch), and its lanes' pieces are laid out in an
//! order drawn per batch from a generator of its own. None of this depends on the data's
//! values, the reader or thread counts, or timing: [`LanePlanner`] decides it from row counts
//! alone, and [`run_piece`] is what a lane does with its piece, whichever thread runs it.
//! Because lanes take their chunks in plan order and at rates in proportion to their shares,
//! their positions in the plan stream stay within a few chunks of each other.
//!
//! This file holds the arithmetic and the per-lane step; `lane_stage.rs` runs lanes on
//! threads, `lane_resume.rs` follows and restarts them. With one lane none of it is used: the
//! `shuffle` thread runs one [`ShuffleBuffer`] as it always did.

use std::ops::{ControlFlow, Range};

use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::shuffle::Emit;
use super::{RngStream, ShuffleBuffer, rng_for};
use crate::data::RowBlock;

/// Rows of the plan stream dealt to one lane at a time. Part of the batch order: changing it
/// changes the batches of every run with more than one lane.
pub const LANE_CHUNK_ROWS: u64 = 1_024;

/// The most lanes a pipeline may have.
pub const MAX_LANES: usize = 64;

/// The lane that plan-stream row `row` goes to.
pub fn lane_of(row: u64, num_lanes: usize) -> usize {
    ((row / LANE_CHUNK_ROWS) % num_lanes as u64) as usize
}

/// Rows lane `lane` receives of a plan stream of `plan_rows` rows.
pub fn lane_rows(plan_rows: u64, lane: usize, num_lanes: usize) -> u64 {
    let (k, lanes) = (lane as u64, num_lanes as u64);
    let chunks = plan_rows / LANE_CHUNK_ROWS;
    let tail = plan_rows % LANE_CHUNK_ROWS;
    let mut rows = chunks / lanes * LANE_CHUNK_ROWS;
    if chunks % lanes > k {
        rows += LANE_CHUNK_ROWS;
    }
    if chunks % lanes == k {
        rows += tail;
    }
    rows
}

/// The plan-stream index of the `j`-th row (from 0) lane `lane` receives.
pub fn stream_index(j: u64, lane: usize, num_lanes: usize) -> u64 {
    ((j / LANE_CHUNK_ROWS) * num_lanes as u64 + lane as u64) * LANE_CHUNK_ROWS + j % LANE_CHUNK_ROWS
}

/// Rows of the shuffle buffer's `capacity_rows` that lane `lane` holds (at least 1).
pub fn lane_capacity(capacity_rows: usize, lane: usize, num_lanes: usize) -> usize {
    (capacity_rows / num_lanes + usize::from(lane < capacity_rows % num_lanes)).max(1)
}

/// The generator of lane `lane` in epoch `epoch`: the one-buffer generator, jumped `lane`
/// times (2^128 draws apart: the lanes' streams never overlap).
pub fn lane_rng(seed: u64, epoch: u64, lane: usize) -> Xoshiro256PlusPlus {
    let mut rng = rng_for(seed, epoch, RngStream::ShuffleBuffer);
    for _ in 0..lane {
        rng.jump();
    }
    rng
}

/// The empty lanes of epoch `epoch`: `num_lanes` buffers sharing `capacity_rows` rows of
/// `num_features` features.
pub fn new_lanes(
    num_lanes: usize,
    capacity_rows: usize,
    num_features: usize,
    seed: u64,
    epoch: u64,
) -> Vec<ShuffleBuffer> {
    (0..num_lanes)
        .map(|k| {
            ShuffleBuffer::new(
                lane_capacity(capacity_rows, k, num_lanes),
                num_features,
                lane_rng(seed, epoch, k),
            )
        })
        .collect()
}

/// One lane's counts, as the planner tracks them (the rows themselves live in its buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneCount {
    /// Rows the buffer holds at most.
    pub capacity: u64,
    /// Rows it holds now.
    pub held: u64,
    /// Rows of the plan stream it receives in the epoch.
    pub total: u64,
    /// Rows of them taken so far.
    pub consumed: u64,
}

impl LaneCount {
    /// Rows the lane has still to emit this epoch.
    pub fn left(&self) -> u64 {
        self.total - self.consumed + self.held
    }

    /// Rows the lane takes from its input to emit `rows` more: it fills up first, then takes
    /// one row per row emitted, until its input runs out (then it drains).
    fn rows_to_take(&self, rows: u64) -> u64 {
        (self.total - self.consumed).min(self.capacity - self.held + rows)
    }
}

/// One lane's piece of a batch: `rows` consecutive rows of the batch, from `offset`, emitted by
/// lane `lane` after it takes `take` rows of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub lane: usize,
    pub offset: usize,
    pub rows: usize,
    pub take: u64,
}

/// Splits batches among the lanes (see the module docs); it sees counts only, never rows.
#[derive(Debug, Clone)]
pub struct LanePlanner {
    counts: Vec<LaneCount>,
    selector: Xoshiro256PlusPlus,
    order: Vec<usize>,
}

impl LanePlanner {
    /// A planner over lanes in the state `counts`, drawing layouts from `selector`.
    pub fn new(counts: Vec<LaneCount>, selector: Xoshiro256PlusPlus) -> Self {
        let order = (0..counts.len()).collect();
        LanePlanner {
            counts,
            selector,
            order,
        }
    }

    /// The selector of epoch `epoch` (seeded, before any batch).
    pub fn selector(seed: u64, epoch: u64) -> Xoshiro256PlusPlus {
        rng_for(seed, epoch, RngStream::Lanes)
    }

    /// The lanes' counts.
    pub fn counts(&self) -> &[LaneCount] {
        &self.counts
    }

    /// The selector's current state.
    pub fn selector_state(&self) -> &Xoshiro256PlusPlus {
        &self.selector
    }

    /// Rows every lane together has still to emit.
    pub fn rows_left(&self) -> u64 {
        self.counts.iter().map(LaneCount::left).sum()
    }

    /// Splits the next batch of `rows` rows (at most [`LanePlanner::rows_left`]) into pieces,
    /// appended to `pieces` in batch order, and counts them as done.
    pub fn split_batch(&mut self, rows: usize, pieces: &mut Vec<Piece>) {
        let total_left = self.rows_left();
        assert!(rows as u64 <= total_left, "a batch beyond the epoch's rows");
        // Largest remainders of rows × left_k / total_left; ties go to the lower lane.
        let mut shares: Vec<(u64, u128)> = self
            .counts
            .iter()
            .map(|c| {
                let exact = rows as u128 * c.left() as u128;
                let whole = exact / total_left.max(1) as u128;
                (whole as u64, exact - whole * total_left.max(1) as u128)
            })
            .collect();
        let given: u64 = shares.iter().map(|s| s.0).sum();
        let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
        by_remainder.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
        for &k in by_remainder.iter().take(rows - given as usize) {
            shares[k].0 += 1;
        }
        // From lane order each time: the layout depends on the selector's state alone.
        self.order.clear();
        self.order.extend(0..self.counts.len());
        self.order.shuffle(&mut self.selector);
        let mut offset = 0;
        for &lane in &self.order {
            let n = shares[lane].0;
            if n == 0 {
                continue;
            }
            let count = &mut self.counts[lane];
            let take = count.rows_to_take(n);
            count.consumed += take;
            count.held = count.held + take - n;
            pieces.push(Piece {
                lane,
                offset,
                rows: n as usize,
                take,
            });
            offset += n as usize;
        }
    }
}

/// The rows a lane takes next: slices of blocks in plan-stream order.
pub trait LaneInput {
    /// The next at most `max_rows` rows (fewer at a slice's end), or `None` when none are
    /// queued.
    fn next_rows(&mut self, max_rows: usize) -> Option<(&RowBlock, Range<usize>)>;
}

/// Runs one lane's piece: takes `piece.take` rows from `input` into `buffer` and emits
/// `piece.rows` rows through `emit` (evicted while the buffer is full, drained once the lane's
/// input is used up). Panics when `input` holds fewer rows than the piece takes (a planner
/// bug).
pub fn run_piece(
    buffer: &mut ShuffleBuffer,
    input: &mut dyn LaneInput,
    piece: &Piece,
    emit: &mut Emit<'_>,
) {
    let mut emitted = 0usize;
    let mut taken = 0u64;
    let mut counting = |x: &[f32], y: f32, id: u64| {
        emitted += 1;
        emit(x, y, id)
    };
    while taken < piece.take {
        let want = usize::try_from(piece.take - taken).unwrap_or(usize::MAX);
        let (block, rows) = input
            .next_rows(want)
            .expect("a lane's input holds the rows its piece takes");
        taken += rows.len() as u64;
        let _ = buffer.push_rows(block, rows, &mut counting);
    }
    let mut left = piece.rows - emitted;
    if left > 0 {
        let _ = buffer.drain(&mut |x: &[f32], y: f32, id: u64| {
            let _ = emit(x, y, id);
            left -= 1;
            if left == 0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn chunks_are_dealt_round_robin() {
        let k = 3;
        for plan_rows in [0, 1, 1023, 1024, 5000, 3 * 1024 * 7 + 17] {
            let mut counts = vec![0u64; k];
            for row in 0..plan_rows {
                counts[lane_of(row, k)] += 1;
            }
            for (lane, &n) in counts.iter().enumerate() {
                assert_eq!(lane_rows(plan_rows, lane, k), n, "{plan_rows} rows");
                for j in 0..n {
                    assert_eq!(lane_of(stream_index(j, lane, k), k), lane);
                }
            }
        }
        assert_eq!(stream_index(1024, 1, 3), 4 * 1024);
    }

    #[test]
    fn capacities_add_up() {
        for (capacity, lanes) in [(65_536, 3), (10, 4), (7, 7)] {
            let sum: usize = (0..lanes).map(|k| lane_capacity(capacity, k, lanes)).sum();
            assert_eq!(sum, capacity);
        }
    }

    /// Every lane ends exactly when the epoch does, whatever the batch sizes.
    #[test]
    fn batches_use_up_every_lane_exactly() {
        let totals = [5_000u64, 3_000, 1, 0];
        let counts = totals
            .iter()
            .map(|&total| LaneCount {
                capacity: 100,
                held: 0,
                total,
                consumed: 0,
            })
            .collect();
        let mut planner = LanePlanner::new(counts, Xoshiro256PlusPlus::seed_from_u64(5));
        let mut pieces = Vec::new();
        let mut rows_out = 0u64;
        while planner.rows_left() > 0 {
            let rows = planner.rows_left().min(37) as usize;
            pieces.clear();
            planner.split_batch(rows, &mut pieces);
            assert_eq!(pieces.iter().map(|p| p.rows).sum::<usize>(), rows);
            rows_out += rows as u64;
        }
        assert_eq!(rows_out, 8_001);
        for c in planner.counts() {
            assert_eq!((c.consumed, c.held), (c.total, 0));
        }
    }
}
