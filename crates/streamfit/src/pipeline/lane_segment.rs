//! Where a lane writes: [`Segment`], its rows of a batch buffer, shared with a lane thread.
//!
//! The lanes of a round write disjoint rows of the same batch buffers from their threads, so a
//! segment carries raw pointers to its rows; [`SegmentWriter`] turns them back into slices on
//! the lane's thread and writes rows in order. Safety rests on two facts the coordinator
//! (`lane_stage.rs`) keeps: the pieces of a batch cover its rows exactly once, and a round's
//! buffers neither move nor are read until every lane thread has reported the round done.

use super::lanes::Piece;
use crate::data::RowBlock;

/// Rows of a batch buffer that one lane writes: raw parts, so that the lanes of a round can
/// write disjoint rows of the same buffers from their threads.
pub(super) struct Segment {
    features: *mut f32,
    targets: *mut f32,
    ids: *mut u64,
    rows: usize,
    num_features: usize,
}

// SAFETY: a segment is written by exactly one lane thread; the coordinator neither reads nor
// moves the buffer's storage until that thread reports the round done.
unsafe impl Send for Segment {}

impl Segment {
    /// The rows of `piece` in `rows` (sized to the whole batch already).
    pub(super) fn of(rows: &mut RowBlock, piece: &Piece) -> Segment {
        let d = rows.num_features();
        let first = piece.offset;
        assert!(
            first + piece.rows <= rows.num_rows(),
            "a piece beyond its batch"
        );
        Segment {
            // SAFETY: the offsets lie inside the batch's rows (the pieces of a batch cover its
            // rows exactly once).
            features: unsafe { rows.features_mut().as_mut_ptr().add(first * d) },
            targets: unsafe { rows.targets_mut().as_mut_ptr().add(first) },
            ids: unsafe { rows.row_ids_mut().as_mut_ptr().add(first) },
            rows: piece.rows,
            num_features: d,
        }
    }
}

/// Writes rows into a [`Segment`], in order.
pub(super) struct SegmentWriter<'a> {
    features: &'a mut [f32],
    targets: &'a mut [f32],
    ids: &'a mut [u64],
    next: usize,
    num_features: usize,
}

impl SegmentWriter<'_> {
    /// # Safety
    /// The segment's buffer is alive and no other writer or reader touches its rows while the
    /// writer lives.
    pub(super) unsafe fn new(segment: &Segment) -> SegmentWriter<'_> {
        let d = segment.num_features;
        // SAFETY: as the caller promises; the pointers cover `rows` rows.
        unsafe {
            SegmentWriter {
                features: std::slice::from_raw_parts_mut(segment.features, segment.rows * d),
                targets: std::slice::from_raw_parts_mut(segment.targets, segment.rows),
                ids: std::slice::from_raw_parts_mut(segment.ids, segment.rows),
                next: 0,
                num_features: d,
            }
        }
    }

    #[inline]
    pub(super) fn push(&mut self, x: &[f32], y: f32, id: u64) {
        let d = self.num_features;
        let i = self.next;
        let dst = &mut self.features[i * d..(i + 1) * d];
        let (dst_chunks, dst_tail) = dst.as_chunks_mut::<8>();
        let (src_chunks, src_tail) = x.as_chunks::<8>();
        for (a, b) in dst_chunks.iter_mut().zip(src_chunks) {
            *a = *b;
        }
        dst_tail.copy_from_slice(src_tail);
        self.targets[i] = y;
        self.ids[i] = id;
        self.next += 1;
    }
}
