//! `RowBlock`: a contiguous, row-major block of decoded rows.
//!
//! Rows never travel through streamfit as individual heap objects: a reader decodes a unit into
//! blocks (chunks), the shuffle stage copies rows out of them into batch blocks, and both kinds
//! of block are recycled. A block owns three parallel arrays: the features (`rows × d` f32,
//! row-major), the targets (one f32 per row) and the rows' global ids (their position in the
//! dataset in file order).

/// A block of rows in row-major layout with their targets and global row ids.
///
/// The feature vector may be longer than `num_rows × d`: a reset block keeps its initialised
/// memory as slack, so refilling a recycled block writes rows in place instead of zeroing or
/// growing a vector. Only the first `num_rows × d` values are rows.
#[derive(Debug, Clone, Default)]
pub struct RowBlock {
    num_features: usize,
    features: Vec<f32>,
    targets: Vec<f32>,
    row_ids: Vec<u64>,
}

impl PartialEq for RowBlock {
    fn eq(&self, other: &Self) -> bool {
        self.num_features == other.num_features
            && self.features() == other.features()
            && self.targets == other.targets
            && self.row_ids == other.row_ids
    }
}

/// Copies one row; fixed 8-value pieces compile to vector moves instead of a `memmove` call.
#[inline(always)]
pub(crate) fn copy_row(dst: &mut [f32], src: &[f32]) {
    let (dst_chunks, dst_tail) = dst.as_chunks_mut::<8>();
    let (src_chunks, src_tail) = src.as_chunks::<8>();
    for (d, s) in dst_chunks.iter_mut().zip(src_chunks) {
        *d = *s;
    }
    dst_tail.copy_from_slice(src_tail);
}

impl RowBlock {
    /// An empty block for rows of `num_features` features with room for `capacity_rows` rows.
    pub fn with_capacity(num_features: usize, capacity_rows: usize) -> Self {
        RowBlock {
            num_features,
            features: Vec::with_capacity(num_features * capacity_rows),
            targets: Vec::with_capacity(capacity_rows),
            row_ids: Vec::with_capacity(capacity_rows),
        }
    }

    /// Asks the kernel to back the reserved feature storage with transparent huge pages
    /// (Linux; a hint with no effect on contents, nothing elsewhere). For large blocks read at
    /// random, like the shuffle arena: 2 MiB pages cut the TLB misses of random row reads.
    /// The advice covers the current allocation; reserve the capacity first.
    pub fn advise_huge_pages(&mut self) {
        #[cfg(target_os = "linux")]
        {
            const HUGE_PAGE: usize = 2 << 20;
            let start = self.features.as_ptr() as usize;
            let end = start + self.features.capacity() * size_of::<f32>();
            let (first, last) = (
                start.next_multiple_of(HUGE_PAGE),
                end / HUGE_PAGE * HUGE_PAGE,
            );
            if last > first {
                // SAFETY: [first, last) lies inside this vector's allocation, and MADV_HUGEPAGE
                // changes only how the kernel backs the pages, never what they hold.
                unsafe {
                    libc::madvise(
                        first as *mut libc::c_void,
                        last - first,
                        libc::MADV_HUGEPAGE,
                    )
                };
            }
        }
    }

    /// Number of features per row.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Number of rows held.
    pub fn num_rows(&self) -> usize {
        self.targets.len()
    }

    /// True when the block holds no rows.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// All features, row-major: row `i` is `features()[i * d..(i + 1) * d]`.
    pub fn features(&self) -> &[f32] {
        &self.features[..self.targets.len() * self.num_features]
    }

    /// All features, mutable (to transform rows in place).
    pub fn features_mut(&mut self) -> &mut [f32] {
        let n = self.targets.len() * self.num_features;
        &mut self.features[..n]
    }

    /// One target per row.
    pub fn targets(&self) -> &[f32] {
        &self.targets
    }

    /// One target per row, mutable.
    pub fn targets_mut(&mut self) -> &mut [f32] {
        &mut self.targets
    }

    /// One global row id per row.
    pub fn row_ids(&self) -> &[u64] {
        &self.row_ids
    }

    /// The features of row `i`. Panics when `i` is out of range (a caller bug).
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        assert!(i < self.targets.len(), "row {i} out of range");
        let d = self.num_features;
        &self.features[i * d..(i + 1) * d]
    }

    /// The rows' global ids, to renumber them (a source that presents part of another's
    /// rows as a dataset of its own).
    pub fn row_ids_mut(&mut self) -> &mut [u64] {
        &mut self.row_ids
    }

    /// Removes all rows and sets the row width, keeping the allocation.
    pub fn reset(&mut self, num_features: usize) {
        self.num_features = num_features;
        self.targets.clear();
        self.row_ids.clear();
    }

    /// Makes room for `num_rows` more rows and returns the range of their feature slots
    /// (slack is reused; only memory never used before is zeroed).
    #[inline]
    fn grow(&mut self, num_rows: usize) -> std::ops::Range<usize> {
        let d = self.num_features;
        let start = self.targets.len() * d;
        let end = start + num_rows * d;
        if self.features.len() < end {
            self.features.resize(end, 0.0);
        }
        start..end
    }

    /// Appends one row. `features.len()` must equal [`RowBlock::num_features`].
    #[inline]
    pub fn push_row(&mut self, features: &[f32], target: f32, row_id: u64) {
        debug_assert_eq!(features.len(), self.num_features);
        let slots = self.grow(1);
        copy_row(&mut self.features[slots], features);
        self.targets.push(target);
        self.row_ids.push(row_id);
    }

    /// Appends rows `rows` of `other` (which must have the same row width).
    pub fn extend_from(&mut self, other: &RowBlock, rows: std::ops::Range<usize>) {
        debug_assert_eq!(other.num_features, self.num_features);
        let d = self.num_features;
        let slots = self.grow(rows.len());
        self.features[slots].copy_from_slice(&other.features[rows.start * d..rows.end * d]);
        self.targets.extend_from_slice(&other.targets[rows.clone()]);
        self.row_ids.extend_from_slice(&other.row_ids[rows]);
    }

    /// Appends `num_rows` rows to be written in place and returns their slots: features
    /// (`num_rows × d`, row-major; whatever the block's slack held there, zeros where it never
    /// held rows), targets and ids (zeros). For writers that fill rows in bulk.
    #[inline]
    pub fn append_rows(&mut self, num_rows: usize) -> (&mut [f32], &mut [f32], &mut [u64]) {
        let slots = self.grow(num_rows);
        let start = self.targets.len();
        self.targets.resize(start + num_rows, 0.0);
        self.row_ids.resize(start + num_rows, 0);
        (
            &mut self.features[slots],
            &mut self.targets[start..],
            &mut self.row_ids[start..],
        )
    }

    /// Overwrites row `i` in place. Panics when `i` is out of range (a caller bug).
    #[inline]
    pub fn set_row(&mut self, i: usize, features: &[f32], target: f32, row_id: u64) {
        let d = self.num_features;
        self.targets[i] = target;
        self.row_ids[i] = row_id;
        copy_row(&mut self.features[i * d..(i + 1) * d], features);
    }

    /// Keeps the first `num_rows` rows (all of them when there are fewer).
    pub fn truncate(&mut self, num_rows: usize) {
        self.targets.truncate(num_rows);
        self.row_ids.truncate(num_rows);
    }

    /// Removes row `i` by moving the last row into its place.
    pub fn swap_remove(&mut self, i: usize) {
        let d = self.num_features;
        let last = self.targets.len() - 1;
        if i != last {
            self.features.copy_within(last * d..(last + 1) * d, i * d);
        }
        self.targets.swap_remove(i);
        self.row_ids.swap_remove(i);
    }

    /// Appends `num_rows` rows whose values are then written by `fill` into the returned
    /// slices (features row-major, targets), with ids `first_row_id..first_row_id + num_rows`.
    ///
    /// `fill` must overwrite every slot: they hold zeros or values of earlier rows.
    pub fn append_with<E>(
        &mut self,
        num_rows: usize,
        first_row_id: u64,
        fill: impl FnOnce(&mut [f32], &mut [f32]) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.targets.len();
        let features = self.grow(num_rows);
        self.targets.resize(start + num_rows, 0.0);
        self.row_ids
            .extend(first_row_id..first_row_id + num_rows as u64);
        fill(&mut self.features[features], &mut self.targets[start..])
    }

    /// Moves each row's last value out, appended to `out` in row order, and closes the rows
    /// up: a block of `d` values per row becomes one of `d − 1` (in place, one pass). How the
    /// trainer takes a row weight carried as a trailing value off its features. Panics on a
    /// block with no value per row (a caller bug).
    pub fn split_off_last_column(&mut self, out: &mut Vec<f32>) {
        let d = self.num_features;
        assert!(d > 0, "a block with no column has none to split off");
        let n = self.targets.len();
        out.reserve(n);
        for i in 0..n {
            out.push(self.features[i * d + d - 1]);
            self.features.copy_within(i * d..i * d + d - 1, i * (d - 1));
        }
        self.num_features = d - 1;
    }

    /// Approximate heap bytes one row occupies in a block with `num_features` features.
    pub fn bytes_per_row(num_features: usize) -> usize {
        num_features * 4 + 4 + 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_append_keep_rows_aligned() {
        let mut block = RowBlock::with_capacity(2, 4);
        block.push_row(&[1.0, 2.0], 0.5, 7);
        block
            .append_with::<()>(2, 10, |x, y| {
                x.copy_from_slice(&[3.0, 4.0, 5.0, 6.0]);
                y.copy_from_slice(&[1.0, 0.0]);
                Ok(())
            })
            .unwrap();
        assert_eq!(block.num_rows(), 3);
        assert_eq!(block.row(2), &[5.0, 6.0]);
        assert_eq!(block.targets(), &[0.5, 1.0, 0.0]);
        assert_eq!(block.row_ids(), &[7, 10, 11]);
        let mut last = Vec::new();
        block.split_off_last_column(&mut last);
        assert_eq!(last, [2.0, 4.0, 6.0]);
        assert_eq!(block.features(), &[1.0, 3.0, 5.0]);
        assert_eq!((block.num_features(), block.num_rows()), (1, 3));
        assert_eq!(block.row_ids(), &[7, 10, 11]);
        block.reset(3);
        assert!(block.is_empty());
        assert_eq!(block.num_features(), 3);
    }
}
