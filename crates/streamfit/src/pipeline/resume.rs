//! Exact mid-epoch restarts: where a stream stands, and how to start it there again.
//!
//! The batches of an epoch are a pure function of the data, the seed and the configuration, and
//! the shuffle decisions depend only on row ids, never on feature values. So the state of the
//! shuffle stage after k steps can be computed without reading any data: [`CursorTracker`]
//! replays the epoch's plan through a [`ShuffleBuffer`] of row ids alone (zero features, the
//! same code as the real stage) up to the step boundary. The [`StreamCursor`] it returns holds
//! the rows consumed from the plan, the generator's state and the ids in the buffer in slot
//! order. [`Pipeline::resume`](super::Pipeline::resume) turns a cursor back into a running
//! stream: it re-reads only the units holding the buffered rows, refills the slots, and reads
//! the rest of the plan, so the resumed epoch emits exactly the rows, in exactly the order, the
//! uninterrupted one would have.

use std::collections::HashMap;
use std::ops::ControlFlow;

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::lane_resume::{self, LaneCursor, LaneTracker};
use super::stage::StreamStart;
use super::{Pipeline, RngStream, Shuffle, ShuffleBuffer, rng_for};
use crate::data::RowBlock;
use crate::data::source::{ChunkSink, Unit};
use crate::error::{Error, Result};

/// Where an epoch's stream stands at a step boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamCursor {
    /// Epoch, from 0.
    pub epoch: u64,
    /// Steps of this epoch completed.
    pub steps: u64,
    /// Rows emitted into those steps.
    pub rows_emitted: u64,
    /// Rows taken from the plan (in plan order) so far.
    pub rows_consumed: u64,
    /// The shuffle buffer's generator (absent without shuffling).
    pub rng: Option<Xoshiro256PlusPlus>,
    /// Ids of the rows in the shuffle buffer, in slot order.
    pub buffer_ids: Vec<u64>,
    /// With «shuffle_lanes» above 1: every lane's state, by lane (`rng` is then absent and
    /// `buffer_ids` empty). Absent with one lane, and in checkpoints written before lanes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lanes: Vec<LaneCursor>,
    /// With lanes: the generator that lays out the lanes' pieces of each batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane_selector: Option<Xoshiro256PlusPlus>,
}

/// Follows one epoch's shuffle decisions on row ids, forward only.
pub struct CursorTracker<'p> {
    pipeline: &'p Pipeline,
    epoch: u64,
    units: Vec<Unit>,
    plan: Vec<usize>,
    /// Rows each plan position delivers (refreshed as the epoch's pass drops files).
    position_rows: Vec<u64>,
    step_rows: u64,
    rows_per_epoch: u64,
    buffer: Option<ShuffleBuffer>,
    /// With more than one lane: the lanes (and no `buffer`).
    lanes: Option<LaneTracker>,
    /// Plan position and rows taken from the unit there.
    position: usize,
    offset: u64,
    rows_consumed: u64,
    rows_emitted: u64,
    steps: u64,
}

impl<'p> CursorTracker<'p> {
    /// A tracker at the start of epoch `epoch` of `pipeline`.
    pub fn new(pipeline: &'p Pipeline, epoch: u64) -> Self {
        let cfg = pipeline.config();
        let units = pipeline.source().units().to_vec();
        CursorTracker {
            pipeline,
            epoch,
            plan: pipeline.plan(epoch),
            position_rows: pipeline.position_rows(epoch),
            units,
            step_rows: cfg.step_rows,
            rows_per_epoch: pipeline.epoch_rows(epoch),
            lanes: match cfg.shuffle {
                Shuffle::Seeded(seed) if cfg.lanes() > 1 => {
                    Some(LaneTracker::new(pipeline, epoch, seed))
                }
                _ => None,
            },
            buffer: match cfg.shuffle {
                Shuffle::Off => None,
                Shuffle::Seeded(_) if cfg.lanes() > 1 => None,
                Shuffle::Seeded(seed) => Some(ShuffleBuffer::new(
                    pipeline.buffer_capacity(),
                    0,
                    rng_for(seed, epoch, RngStream::ShuffleBuffer),
                )),
            },
            position: 0,
            offset: 0,
            rows_consumed: 0,
            rows_emitted: 0,
            steps: 0,
        }
    }

    /// Moves forward to the end of step `steps` of the epoch (not before the current one) and
    /// returns the cursor there.
    pub fn advance_to(&mut self, steps: u64) -> StreamCursor {
        assert!(steps >= self.steps, "a cursor only moves forward");
        // Files dropped since the last call change what the plan delivers from their failure
        // on (which this tracker has not passed yet: the stage found the failure before it
        // emitted any row after it).
        self.position_rows = self.pipeline.position_rows(self.epoch);
        self.rows_per_epoch = self.pipeline.epoch_rows(self.epoch);
        let target = (steps * self.step_rows).min(self.rows_per_epoch);
        if let Some(lanes) = &mut self.lanes {
            let (rows_consumed, lanes, selector) = lanes.advance_to(target);
            self.steps = steps;
            return StreamCursor {
                epoch: self.epoch,
                steps,
                rows_emitted: target,
                rows_consumed,
                rng: None,
                buffer_ids: Vec::new(),
                lanes,
                lane_selector: Some(selector),
            };
        }
        match &mut self.buffer {
            None => {
                self.rows_emitted = target;
                self.rows_consumed = target;
            }
            Some(buffer) => {
                while self.rows_emitted < target {
                    // Past positions that deliver nothing more (a dropped file's).
                    while self.position < self.plan.len()
                        && self.offset >= self.position_rows[self.position]
                    {
                        self.position += 1;
                        self.offset = 0;
                    }
                    if self.position < self.plan.len() {
                        // Feed a run of rows that cannot overshoot: while filling, at most the
                        // free slots (nothing is emitted); once full, one emission per row.
                        let unit = self.units[self.plan[self.position]];
                        let left_in_unit = self.position_rows[self.position] - self.offset;
                        let room = (buffer.capacity() - buffer.len()) as u64;
                        let n = if room > 0 {
                            room.min(left_in_unit)
                        } else {
                            (target - self.rows_emitted).min(left_in_unit)
                        };
                        let mut ids = RowBlock::with_capacity(0, n as usize);
                        ids.append_with::<()>(
                            n as usize,
                            unit.first_row_id + self.offset,
                            |_, _| Ok(()),
                        )
                        .expect("nothing to fill");
                        let mut emitted = 0u64;
                        let _ = buffer.push_block(&ids, &mut |_, _, _| {
                            emitted += 1;
                            ControlFlow::Continue(())
                        });
                        self.rows_emitted += emitted;
                        self.rows_consumed += n;
                        self.offset += n;
                    } else {
                        let mut left = target - self.rows_emitted;
                        let _ = buffer.drain(&mut |_, _, _| {
                            left -= 1;
                            if left == 0 {
                                ControlFlow::Break(())
                            } else {
                                ControlFlow::Continue(())
                            }
                        });
                        self.rows_emitted = target;
                    }
                }
            }
        }
        self.steps = steps;
        StreamCursor {
            epoch: self.epoch,
            steps,
            rows_emitted: self.rows_emitted,
            rows_consumed: self.rows_consumed,
            rng: self.buffer.as_ref().map(|b| b.rng().clone()),
            buffer_ids: self
                .buffer
                .as_ref()
                .map(|b| b.row_ids().to_vec())
                .unwrap_or_default(),
            lanes: Vec::new(),
            lane_selector: None,
        }
    }
}

/// Collects the rows of re-read units into their shuffle-buffer slots.
struct SlotFiller<'a> {
    slots: &'a HashMap<u64, usize>,
    arena: &'a mut RowBlock,
    filled: usize,
    scratch: RowBlock,
}

impl ChunkSink for SlotFiller<'_> {
    fn empty_block(&mut self) -> RowBlock {
        std::mem::take(&mut self.scratch)
    }

    fn send(&mut self, block: RowBlock) -> ControlFlow<()> {
        for i in 0..block.num_rows() {
            let id = block.row_ids()[i];
            if let Some(&slot) = self.slots.get(&id) {
                self.arena
                    .set_row(slot, block.row(i), block.targets()[i], id);
                self.filled += 1;
            }
        }
        self.scratch = block;
        ControlFlow::Continue(())
    }
}

/// The start state, the rest of the plan, the plan position it starts at and the rows
/// re-read, for resuming at `cursor`.
pub(super) fn restart(
    pipeline: &Pipeline,
    cursor: &StreamCursor,
) -> Result<(StreamStart, Vec<usize>, usize, u64)> {
    let cfg = pipeline.config();
    let bad =
        |what: String| Error::config("resume", format!("the checkpoint's stream cursor {what}"));
    let epoch_rows = pipeline.epoch_rows(cursor.epoch);
    if cfg.lanes() > 1 || !cursor.lanes.is_empty() {
        if cfg.lanes() == 1 {
            return Err(bad("does not match «shuffle_lanes»".into()));
        }
        let step_end = cursor
            .steps
            .checked_mul(cfg.step_rows)
            .map(|rows| rows.min(epoch_rows));
        if step_end != Some(cursor.rows_emitted) {
            return Err(bad("does not fit this dataset and batch size".into()));
        }
        let (lanes, position, reread) = lane_resume::restart(pipeline, cursor)?;
        let plan = pipeline.plan(cursor.epoch);
        return Ok((
            StreamStart {
                skip_rows: 0,
                buffer: None,
                lanes: Some(lanes),
                step: cursor.steps,
                rows_emitted: cursor.rows_emitted,
                epoch_rows,
                plan_rows: pipeline.available_rows(cursor.epoch),
            },
            plan[position.min(plan.len())..].to_vec(),
            position,
            reread,
        ));
    }
    let step_end = cursor
        .steps
        .checked_mul(cfg.step_rows)
        .map(|rows| rows.min(epoch_rows));
    // Every row taken from the plan was either emitted or is still buffered.
    let consistent = cursor
        .rows_emitted
        .checked_add(cursor.buffer_ids.len() as u64)
        == Some(cursor.rows_consumed);
    // The rows this pipeline's plan delivers (its share in a data-parallel run; less what
    // the files dropped in the epoch took out).
    let position_rows = pipeline.position_rows(cursor.epoch);
    let plan_rows: u64 = position_rows.iter().sum();
    if cursor.rows_consumed > plan_rows
        || cursor.rows_emitted > epoch_rows
        || cursor.buffer_ids.len() > pipeline.buffer_capacity()
        || step_end != Some(cursor.rows_emitted)
        || !consistent
    {
        return Err(bad("does not fit this dataset and batch size".into()));
    }
    let plan = pipeline.plan(cursor.epoch);
    // The plan position holding row `rows_consumed`, and the rows to skip there.
    let mut before = 0u64;
    let mut position = plan.len();
    for (p, &rows) in position_rows.iter().enumerate() {
        if before + rows > cursor.rows_consumed {
            position = p;
            break;
        }
        before += rows;
    }
    let skip_rows = cursor.rows_consumed - before.min(cursor.rows_consumed);
    let (buffer, reread) = match (cfg.shuffle, &cursor.rng) {
        (Shuffle::Off, None) if cursor.buffer_ids.is_empty() => (None, 0),
        (Shuffle::Seeded(_), Some(rng)) => {
            let (arena, reread) = refill(pipeline, &cursor.buffer_ids)?;
            (
                Some(ShuffleBuffer::from_parts(
                    pipeline.buffer_capacity(),
                    arena,
                    rng.clone(),
                )),
                reread,
            )
        }
        _ => return Err(bad("does not match the shuffle setting".into())),
    };
    Ok((
        StreamStart {
            skip_rows,
            buffer,
            lanes: None,
            step: cursor.steps,
            rows_emitted: cursor.rows_emitted,
            epoch_rows,
            plan_rows,
        },
        plan[position..].to_vec(),
        position,
        reread,
    ))
}

/// Reads the units holding `ids` and returns the rows in that (slot) order, with the number of
/// rows read.
pub(super) fn refill(pipeline: &Pipeline, ids: &[u64]) -> Result<(RowBlock, u64)> {
    let source = pipeline.source();
    let units = source.units();
    let d = source.row_width();
    let mut arena = RowBlock::with_capacity(d, pipeline.buffer_capacity());
    arena
        .append_with::<()>(ids.len(), 0, |x, y| {
            x.fill(0.0);
            y.fill(0.0);
            Ok(())
        })
        .expect("zero fill");
    let mut slots = HashMap::with_capacity(ids.len());
    // Per unit, the offsets of the rows wanted from it.
    let mut wanted: HashMap<usize, Vec<u64>> = HashMap::new();
    for (slot, &id) in ids.iter().enumerate() {
        if slots.insert(id, slot).is_some() {
            return Err(Error::config(
                "resume",
                format!("the checkpoint lists row {id} twice in the shuffle buffer"),
            ));
        }
        let unit = units.partition_point(|u| u.first_row_id + u.num_rows <= id);
        if unit == units.len() {
            return Err(Error::config(
                "resume",
                format!("the checkpoint's shuffle buffer holds row {id}, beyond the dataset"),
            ));
        }
        wanted
            .entry(unit)
            .or_default()
            .push(id - units[unit].first_row_id);
    }
    let mut needed: Vec<(usize, Vec<u64>)> = wanted.into_iter().collect();
    needed.sort_unstable_by_key(|(unit, _)| *unit);
    let mut filler = SlotFiller {
        slots: &slots,
        arena: &mut arena,
        filled: 0,
        scratch: RowBlock::default(),
    };
    let mut reread = 0u64;
    for (unit, mut offsets) in needed {
        offsets.sort_unstable();
        let filled = filler.filled;
        match source.read_rows(unit, &offsets, pipeline.config().block_rows, &mut filler) {
            Ok(rows) => reread += rows,
            // The failing unit of a dropped file: its rows before the failure are all there is,
            // and all the buffer holds of it.
            Err(_) if filler.filled - filled == offsets.len() => {
                reread += units[unit].num_rows;
            }
            Err(e) => return Err(e),
        }
    }
    if filler.filled != ids.len() {
        return Err(Error::internal(format!(
            "refilled {} of {} shuffle-buffer rows",
            filler.filled,
            ids.len()
        )));
    }
    Ok((arena, reread))
}
