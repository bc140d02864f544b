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

/// Receives the rows a [`ShuffleBuffer`] emits; `Break` stops the buffer early.
pub type Emit<'a> = dyn FnMut(&[f32], f32, u64) -> ControlFlow<()> + 'a;

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
        let n = rows.end;
        let (features, targets, ids) = (block.features(), block.targets(), block.row_ids());
        let d = block.num_features();
        let mut i = rows.start;
        // Filling: store rows without emitting, in one bulk copy per block.
        let room = self.capacity_rows - self.arena.num_rows();
        if room > 0 {
            i += room.min(rows.len());
            self.arena.extend_from(block, rows.start..i);
        }
        // Full: each incoming row evicts a random resident. The slots are drawn for the whole
        // block first (the same draws in the same order as one at a time), so the rows a few
        // steps ahead can be prefetched: the arena is larger than the caches and random
        // slots defeat the hardware prefetcher.
        self.slots.clear();
        self.slots
            .extend((i..n).map(|_| self.rng.random_range(0..self.capacity_rows)));
        for k in 0..self.slots.len() {
            if let Some(&ahead) = self.slots.get(k + PREFETCH_AHEAD) {
                prefetch(self.arena.row(ahead));
                prefetch(&self.arena.targets()[ahead..=ahead]);
                prefetch(&self.arena.row_ids()[ahead..=ahead]);
            }
            let slot = self.slots[k];
            emit(
                self.arena.row(slot),
                self.arena.targets()[slot],
                self.arena.row_ids()[slot],
            )?;
            self.arena
                .set_row(slot, &features[i * d..(i + 1) * d], targets[i], ids[i]);
            i += 1;
        }
        ControlFlow::Continue(())
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

    #[test]
    fn order_depends_on_seed_only() {
        assert_eq!(run(16, 3), run(16, 3));
        assert_ne!(run(16, 3), run(16, 4));
        assert_ne!(run(16, 3), (0..100).collect::<Vec<_>>());
    }
}
