//! `ShuffleBuffer`: a bounded reservoir that mixes a stream of rows.
//!
//! It holds at most `capacity_rows` rows in one flat arena. While it fills, rows are stored;
//! once full, each incoming row evicts a uniformly chosen resident row (which is emitted) and
//! takes its slot. At the end of the epoch [`ShuffleBuffer::drain`] emits the rest in uniformly
//! random order. With a capacity of at least the dataset's row count the result is a uniform
//! permutation; a smaller buffer plus unit-order shuffling is the out-of-core compromise (as in
//! tf.data). All choices come from one seeded RNG, so the output is a pure function of the
//! input sequence and the seed.

use std::ops::ControlFlow;

use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::data::RowBlock;
use crate::data::rows::copy_row;

/// Receives the rows a [`ShuffleBuffer`] emits; `Break` stops the buffer early.
pub type Emit<'a> = dyn FnMut(&[f32], f32, u64) -> ControlFlow<()> + 'a;

/// Takes the rows a [`ShuffleBuffer`] evicts in runs written straight into the batch being
/// filled: the `shuffle` thread's path, with no call per row ([`Emit`] takes them one at a
/// time). The rows, and their order, are the same either way.
pub trait BatchSink {
    /// The batch being filled and how many more rows it takes before a batch or step ends, or
    /// the epoch's last row to keep (at least 1); `None` when the rows are not kept (a dropped
    /// last partial step: they then go to [`emit_one`](BatchSink::emit_one) one at a time).
    fn open(&mut self) -> Option<(&mut RowBlock, usize)>;
    /// `num_rows` rows were appended to the open batch.
    fn appended(&mut self, num_rows: usize) -> ControlFlow<()>;
    /// One row, when [`open`](BatchSink::open) returned `None`.
    fn emit_one(&mut self, features: &[f32], target: f32, row_id: u64) -> ControlFlow<()>;
}

/// A sink that takes every row one at a time through an [`Emit`].
struct OneAtATime<'a, 'b>(&'a mut Emit<'b>);

impl BatchSink for OneAtATime<'_, '_> {
    fn open(&mut self) -> Option<(&mut RowBlock, usize)> {
        None
    }

    fn appended(&mut self, _: usize) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    fn emit_one(&mut self, features: &[f32], target: f32, row_id: u64) -> ControlFlow<()> {
        (self.0)(features, target, row_id)
    }
}

/// A fixed-capacity reservoir of rows; see the module docs.
pub struct ShuffleBuffer {
    capacity_rows: usize,
    arena: RowBlock,
    rng: Xoshiro256PlusPlus,
    /// Slots drawn for the current block (reused allocation).
    slots: Vec<usize>,
}

/// How many evictions ahead a row is prefetched.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to start loading `values` into cache (a hint; no effect on results).
#[inline(always)]
fn prefetch<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = values.as_ptr().cast::<i8>();
        for offset in (0..size_of_val(values)).step_by(64) {
            // SAFETY: the address lies inside `values`; prefetch never faults or writes.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

impl ShuffleBuffer {
    /// An empty buffer of `capacity_rows` (at least 1) rows of `num_features` features.
    /// The arena's address space is reserved at once (with huge pages advised: random slots
    /// otherwise miss the TLB on most reads), but pages become resident only as rows fill
    /// them. Callers clamp the capacity to the dataset's row count, which changes no result:
    /// a buffer that never fills only drains.
    pub fn new(capacity_rows: usize, num_features: usize, rng: Xoshiro256PlusPlus) -> Self {
        let mut arena = RowBlock::with_capacity(num_features, capacity_rows.max(1));
        arena.advise_huge_pages();
        ShuffleBuffer {
            capacity_rows: capacity_rows.max(1),
            arena,
            rng,
            slots: Vec::new(),
        }
    }

    /// Rows currently held.
    pub fn len(&self) -> usize {
        self.arena.num_rows()
    }

    /// True when no rows are held.
    pub fn is_empty(&self) -> bool {
        self.arena.is_empty()
    }

    /// Offers every row of `block`; each row that the buffer evicts is passed to `emit`.
    pub fn push_block(&mut self, block: &RowBlock, emit: &mut Emit<'_>) -> ControlFlow<()> {
        self.push_rows(block, 0..block.num_rows(), emit)
    }

    /// Offers rows `rows` of `block`, in order; each row that the buffer evicts is passed to
    /// `emit`.
    pub fn push_rows(
        &mut self,
        block: &RowBlock,
        rows: std::ops::Range<usize>,
        emit: &mut Emit<'_>,
    ) -> ControlFlow<()> {
        self.push_rows_into(block, rows, &mut OneAtATime(emit))
    }

    /// [`push_rows`](ShuffleBuffer::push_rows) with the evicted rows written into `sink`'s
    /// batches in runs: the same draws, the same rows in the same order, the same buffer state
    /// after (except after a `Break`: then the rows of the run already written are stored).
    pub fn push_rows_into(
        &mut self,
        block: &RowBlock,
        rows: std::ops::Range<usize>,
        sink: &mut dyn BatchSink,
    ) -> ControlFlow<()> {
        let n = rows.end;
        let (features, targets, ids) = (block.features(), block.targets(), block.row_ids());
        let d = block.num_features();
        let mut i = rows.start;
        let room = self.capacity_rows - self.arena.num_rows();
        if room > 0 {
            i += room.min(rows.len());
            self.arena.extend_from(block, rows.start..i);
        }
        self.slots.clear();
        self.slots
            .extend((i..n).map(|_| self.rng.random_range(0..self.capacity_rows)));
        // Full: each incoming row evicts a random resident. The slots are drawn for the whole
        // block first (the same draws in the same order as one at a time), so the rows a few
        // steps ahead can be prefetched: the arena is larger than the caches and random
        // slots defeat the hardware prefetcher. The incoming rows are prefetched too (a
        // reader on the other core has just written them).
        let mut k = 0;
        while k < self.slots.len() {
            let Some((batch, room)) = sink.open() else {
                self.prefetch_ahead(k, i, block);
                let slot = self.slots[k];
                sink.emit_one(
                    self.arena.row(slot),
                    self.arena.targets()[slot],
                    self.arena.row_ids()[slot],
                )?;
                self.arena
                    .set_row(slot, &features[i * d..(i + 1) * d], targets[i], ids[i]);
                (i, k) = (i + 1, k + 1);
                continue;
            };
            let run = room.min(self.slots.len() - k);
            let (out_x, out_y, out_ids) = batch.append_rows(run);
            for j in 0..run {
                self.prefetch_ahead(k + j, i + j, block);
                let slot = self.slots[k + j];
                copy_row(&mut out_x[j * d..(j + 1) * d], self.arena.row(slot));
                out_y[j] = self.arena.targets()[slot];
                out_ids[j] = self.arena.row_ids()[slot];
                let at = i + j;
                self.arena
                    .set_row(slot, &features[at * d..(at + 1) * d], targets[at], ids[at]);
            }
            (i, k) = (i + run, k + run);
            sink.appended(run)?;
        }
        ControlFlow::Continue(())
    }

    /// Prefetches what the eviction [`PREFETCH_AHEAD`] after eviction `k` (whose incoming row
    /// is row `i` of `block`) will touch.
    #[inline(always)]
    fn prefetch_ahead(&self, k: usize, i: usize, block: &RowBlock) {
        if let Some(&ahead) = self.slots.get(k + PREFETCH_AHEAD) {
            prefetch(self.arena.row(ahead));
            prefetch(&self.arena.targets()[ahead..=ahead]);
            prefetch(&self.arena.row_ids()[ahead..=ahead]);
            prefetch(block.row(i + PREFETCH_AHEAD));
        }
    }

    /// Emits every held row in uniformly random order and empties the buffer. When `emit`
    /// breaks, the row it was given is already removed, so the buffer is left in the state of
    /// exactly that many emissions (a cursor can stop mid-drain and resume).
    pub fn drain(&mut self, emit: &mut Emit<'_>) -> ControlFlow<()> {
        while !self.arena.is_empty() {
            let slot = self.rng.random_range(0..self.arena.num_rows());
            let flow = emit(
                self.arena.row(slot),
                self.arena.targets()[slot],
                self.arena.row_ids()[slot],
            );
            self.arena.swap_remove(slot);
            flow?;
        }
        ControlFlow::Continue(())
    }

    /// A buffer restored from a checkpoint: `arena` holds the rows in slot order and `rng`
    /// is the generator's state at that point.
    pub fn from_parts(capacity_rows: usize, arena: RowBlock, rng: Xoshiro256PlusPlus) -> Self {
        ShuffleBuffer {
            capacity_rows: capacity_rows.max(1),
            arena,
            rng,
            slots: Vec::new(),
        }
    }

    /// The generator's current state.
    pub fn rng(&self) -> &Xoshiro256PlusPlus {
        &self.rng
    }

    /// Ids of the held rows, in slot order.
    pub fn row_ids(&self) -> &[u64] {
        self.arena.row_ids()
    }

    /// The most rows the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity_rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn block(ids: std::ops::Range<u64>) -> RowBlock {
        let mut b = RowBlock::with_capacity(2, 0);
        for id in ids {
            b.push_row(&[id as f32, -(id as f32)], id as f32 * 0.5, id);
        }
        b
    }

    fn run(capacity: usize, seed: u64) -> Vec<u64> {
        let mut buf = ShuffleBuffer::new(capacity, 2, Xoshiro256PlusPlus::seed_from_u64(seed));
        let mut out = Vec::new();
        let mut emit = |x: &[f32], y: f32, id: u64| {
            assert_eq!(x, &[id as f32, -(id as f32)]);
            assert_eq!(y, id as f32 * 0.5);
            out.push(id);
            ControlFlow::Continue(())
        };
        for start in (0..100).step_by(30) {
            let _ = buf.push_block(&block(start..(start + 30).min(100)), &mut emit);
            assert!(buf.len() <= capacity);
        }
        let _ = buf.drain(&mut emit);
        out
    }

    #[test]
    fn every_row_comes_out_once_with_its_values() {
        for capacity in [1, 7, 64, 1000] {
            let mut out = run(capacity, 1);
            out.sort_unstable();
            assert_eq!(out, (0..100).collect::<Vec<_>>(), "capacity {capacity}");
        }
    }

    /// A sink whose open batch takes 1, 2, 3, … 7 rows in turn, and which refuses a run now
    /// and then (rows then come one at a time), recording every row it is given.
    struct Runs {
        batch: RowBlock,
        turn: usize,
        out: Vec<(Vec<f32>, f32, u64)>,
    }

    impl BatchSink for Runs {
        fn open(&mut self) -> Option<(&mut RowBlock, usize)> {
            self.turn += 1;
            (!self.turn.is_multiple_of(5)).then(|| (&mut self.batch, self.turn % 7 + 1))
        }

        fn appended(&mut self, num_rows: usize) -> ControlFlow<()> {
            let n = self.batch.num_rows();
            for i in n - num_rows..n {
                let b = &self.batch;
                self.out
                    .push((b.row(i).to_vec(), b.targets()[i], b.row_ids()[i]));
            }
            if n > 20 {
                self.batch.reset(2);
            }
            ControlFlow::Continue(())
        }

        fn emit_one(&mut self, features: &[f32], target: f32, row_id: u64) -> ControlFlow<()> {
            self.out.push((features.to_vec(), target, row_id));
            ControlFlow::Continue(())
        }
    }

    #[test]
    fn rows_written_in_runs_are_those_emitted_one_at_a_time() {
        for capacity in [1, 7, 64, 1000] {
            let seed = Xoshiro256PlusPlus::seed_from_u64(5);
            let (mut one, mut runs) = (
                ShuffleBuffer::new(capacity, 2, seed.clone()),
                ShuffleBuffer::new(capacity, 2, seed),
            );
            let mut expected = Vec::new();
            let mut sink = Runs {
                batch: RowBlock::with_capacity(2, 0),
                turn: 0,
                out: Vec::new(),
            };
            for start in (0..300).step_by(45) {
                let b = block(start..(start + 45).min(300));
                let _ = one.push_rows(&b, 3..b.num_rows(), &mut |x, y, id| {
                    expected.push((x.to_vec(), y, id));
                    ControlFlow::Continue(())
                });
                let _ = runs.push_rows_into(&b, 3..b.num_rows(), &mut sink);
                assert_eq!(one.row_ids(), runs.row_ids(), "capacity {capacity}");
                assert_eq!(one.rng(), runs.rng());
            }
            assert_eq!(sink.out, expected, "capacity {capacity}");
            assert!(capacity >= 300 || !expected.is_empty());
        }
    }

    #[test]
    fn order_depends_on_seed_only() {
        assert_eq!(run(16, 3), run(16, 3));
        assert_ne!(run(16, 3), run(16, 4));
        assert_ne!(run(16, 3), (0..100).collect::<Vec<_>>());
    }
}
