//! The fast path for flat float32 columns: data pages decoded straight into row-major blocks.
//!
//! Most training data is a table of float32 columns written with PLAIN encoding (dictionaries
//! give up on continuous values). For those columns the arrow record reader only copies each
//! decompressed page into an arrow buffer (after zeroing it) before streamfit transposes the
//! buffer into rows. This path skips that middle copy: it walks each used column's pages with
//! the parquet page reader (which checks CRCs and decompresses) and transposes the values from
//! the decompressed pages into the block. Columns' pages end at different rows, so the block
//! is filled in runs that end wherever the next page of any column starts.
//!
//! A unit takes this path only when its footer says every used column is a flat FLOAT column
//! (required, or optional with at most one definition level) without a dictionary page or any
//! encoding besides PLAIN for values and RLE (or BIT_PACKED) for levels. A page that
//! contradicts the footer (another encoding) makes [`FlatReader::fill`] answer
//! [`Stop::Unsupported`], and the caller reads the rest of the unit through the arrow reader.
//! Nulls are found from the definition levels and reported with their row and column (the
//! first in row order).

use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Encoding, Type as PhysicalType};
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::schema::types::SchemaDescriptor;

use crate::data::source::parquet::ranges::ByteRanges;
use crate::data::transpose::transpose8;

/// Leaf columns of the used columns of a file whose every used column is a flat float32
/// column: features in order, then the label when it is read.
pub(super) fn flat_leaves(
    parquet_schema: &SchemaDescriptor,
    roots: &[usize],
) -> Option<Vec<usize>> {
    if cfg!(target_endian = "big") {
        return None; // PLAIN floats are little-endian; the pages are read in place
    }
    roots
        .iter()
        .map(|&root| {
            let mut leaves = (0..parquet_schema.num_columns())
                .filter(|&l| parquet_schema.get_column_root_idx(l) == root);
            let leaf = leaves.next()?;
            let column = parquet_schema.column(leaf);
            let flat = leaves.next().is_none()
                && column.physical_type() == PhysicalType::FLOAT
                && column.max_rep_level() == 0
                && column.max_def_level() <= 1;
            flat.then_some(leaf)
        })
        .collect()
}

/// True when the footer says every column in `leaves` of this row group holds only PLAIN
/// values (levels RLE, or BIT_PACKED as old writers list it even for required columns) and no
/// dictionary page. A page that is not PLAIN after all is caught when it is read.
pub(super) fn plain_row_group(row_group: &RowGroupMetaData, leaves: &[usize]) -> bool {
    leaves.iter().all(|&leaf| {
        let column = row_group.column(leaf);
        #[allow(deprecated)] // BIT_PACKED is deprecated for writing, not for reading
        let level_or_plain =
            |e: Encoding| matches!(e, Encoding::PLAIN | Encoding::RLE | Encoding::BIT_PACKED);
        column.dictionary_page_offset().is_none() && column.encodings().all(level_or_plain)
    })
}

/// What stopped a [`FlatReader`].
#[derive(Debug)]
pub(super) enum Stop {
    /// The page reader failed (corrupt page, CRC mismatch, bad compression), in column
    /// `column` (index into the used columns) when known.
    Corrupt {
        column: Option<usize>,
        reason: String,
    },
    /// Column `column` (index into the used columns) is null at `row` of the row group, the
    /// first null in row order (the label first at one row). The block's first `filled` rows
    /// were filled (the caller checks them for NaN before reporting the null).
    Null {
        column: usize,
        row: u64,
        filled: usize,
    },
    /// The pages hold a different number of rows than the footer: `found` so far.
    RowCount { found: u64 },
    /// A page this path does not decode (another encoding than the footer listed).
    Unsupported,
}

impl Stop {
    fn corrupt(reason: impl Into<String>) -> Stop {
        Stop::Corrupt {
            column: None,
            reason: reason.into(),
        }
    }

    fn in_column(self, index: usize) -> Stop {
        match self {
            Stop::Corrupt {
                column: None,
                reason,
            } => Stop::Corrupt {
                column: Some(index),
                reason,
            },
            other => other,
        }
    }
}

fn corrupt(e: parquet::errors::ParquetError) -> Stop {
    Stop::corrupt(e.to_string())
}

/// Reads the used columns of one row group page by page.
pub(super) struct FlatReader {
    columns: Vec<ColumnPages>,
    /// Rows handed out so far.
    rows_done: u64,
}

/// One column's page cursor.
struct ColumnPages {
    pages: SerializedPageReader<ByteRanges>,
    /// The current page's decompressed bytes.
    page: Bytes,
    /// Byte offset of the current page's first unread value.
    at: usize,
    /// Unread values in the current page before its first null (all of them when none).
    left: usize,
    /// The row of the current page's first null, if it has one.
    null_at: Option<u64>,
    /// Rows in the pages read so far (the current one included).
    rows_read: u64,
    /// Whether values carry definition levels.
    optional: bool,
    /// The current page's values when their offset is not 4-byte aligned.
    aligned: Vec<f32>,
}

impl FlatReader {
    /// Page readers over `leaves` of a row group whose chunks `bytes` hold.
    pub(super) fn new(
        bytes: &ByteRanges,
        row_group: &RowGroupMetaData,
        leaves: &[usize],
    ) -> Result<Self, Stop> {
        let num_rows = row_group.num_rows().max(0) as u64;
        let chunk = Arc::new(bytes.clone());
        let columns = leaves
            .iter()
            .enumerate()
            .map(|(index, &leaf)| {
                let meta = row_group.column(leaf);
                let pages = SerializedPageReader::new(chunk.clone(), meta, num_rows as usize, None)
                    .map_err(|e| corrupt(e).in_column(index))?;
                Ok(ColumnPages {
                    pages,
                    page: Bytes::new(),
                    at: 0,
                    left: 0,
                    null_at: None,
                    rows_read: 0,
                    optional: meta.column_descr().max_def_level() > 0,
                    aligned: Vec::new(),
                })
            })
            .collect::<Result<_, Stop>>()?;
        Ok(FlatReader {
            columns,
            rows_done: 0,
        })
    }

    /// Rows handed out so far.
    pub(super) fn rows_done(&self) -> u64 {
        self.rows_done
    }

    /// Fills the next `n` rows: features row-major into `features` (`n × d` where `d` is the
    /// number of feature columns) and, when the label is read, the label into `targets`.
    /// Returns true when a value is NaN or infinite (the caller finds which).
    pub(super) fn fill(
        &mut self,
        n: usize,
        features: &mut [f32],
        targets: &mut [f32],
        has_label: bool,
    ) -> Result<bool, Stop> {
        let d = self.columns.len() - usize::from(has_label);
        let mut bad = false;
        let mut done = 0;
        while done < n {
            let row = self.rows_done + done as u64;
            for (index, column) in self.columns.iter_mut().enumerate() {
                if column.left == 0 && column.null_at.is_none() {
                    column
                        .next_page(row)
                        .map_err(|stop| stop.in_column(index))?;
                }
            }
            // A column whose next value is a null stops the block there: the label first,
            // then the features in order.
            let null = (0..self.columns.len())
                .map(|k| (k + d) % self.columns.len())
                .find(|&k| self.columns[k].left == 0 && self.columns[k].null_at == Some(row));
            if let Some(column) = null {
                return Err(Stop::Null {
                    column,
                    row,
                    filled: done,
                });
            }
            let run = self
                .columns
                .iter()
                .map(|c| c.left)
                .fold(n - done, usize::min);
            let out = &mut features[done * d..(done + run) * d];
            for start in (0..run).step_by(TILE_ROWS) {
                let end = (start + TILE_ROWS).min(run);
                let tile = &mut out[start * d..end * d];
                let mut j = 0;
                while j + 8 <= d {
                    let block: [&[f32]; 8] =
                        std::array::from_fn(|k| self.columns[j + k].values(run));
                    bad |= transpose8(block, start..end, tile, d, j);
                    j += 8;
                }
                for (k, column) in self.columns[j..d].iter().enumerate() {
                    let values = &column.values(run)[start..end];
                    for (row, &v) in tile.chunks_exact_mut(d).zip(values) {
                        row[j + k] = v;
                        bad |= !v.is_finite();
                    }
                }
            }
            if has_label {
                let label = self.columns[d].values(run);
                targets[done..done + run].copy_from_slice(label);
                bad |= label.iter().any(|v| !v.is_finite());
            }
            for column in self.columns.iter_mut() {
                column.advance(run);
            }
            done += run;
        }
        self.rows_done += n as u64;
        Ok(bad)
    }

    /// Checks that no column has values beyond the rows handed out (call once all the row
    /// group's rows are).
    pub(super) fn finish(mut self) -> Result<(), Stop> {
        for (index, column) in self.columns.iter_mut().enumerate() {
            if column.left > 0 || column.null_at.is_some() {
                return Err(Stop::RowCount {
                    found: column.rows_read,
                });
            }
            while let Some(page) = column
                .pages
                .get_next_page()
                .map_err(|e| corrupt(e).in_column(index))?
            {
                if page.num_values() > 0 {
                    return Err(Stop::RowCount {
                        found: column.rows_read + u64::from(page.num_values()),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Rows per transposed tile: 64 features × 1,024 rows (256 KiB) stay in L2 while eight
/// columns at a time are written into them (256 and 4,096 rows were slower).
const TILE_ROWS: usize = 1024;

impl ColumnPages {
    /// The next `n` unread values (`n <= self.left`).
    #[inline]
    fn values(&self, n: usize) -> &[f32] {
        if !self.aligned.is_empty() {
            let start = self.aligned.len() - self.left;
            return &self.aligned[start..start + n];
        }
        let bytes = &self.page[self.at..self.at + 4 * n];
        assert!(
            bytes.as_ptr().cast::<f32>().is_aligned(),
            "unaligned values are copied by next_page"
        );
        // SAFETY: `bytes` holds 4·n initialised bytes at an f32-aligned address (asserted just
        // above), every bit pattern is a valid f32, and the slice borrows `self.page`.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), n) }
    }

    fn advance(&mut self, n: usize) {
        self.left -= n;
        if self.aligned.is_empty() {
            self.at += 4 * n;
        }
    }

    /// Moves to the next page holding values; `row` is the row group row its first value is
    /// for (the rows of all earlier pages).
    fn next_page(&mut self, row: u64) -> Result<(), Stop> {
        let truncated = || Stop::corrupt("truncated definition levels");
        loop {
            let page = self
                .pages
                .get_next_page()
                .map_err(corrupt)?
                .ok_or(Stop::RowCount { found: row })?;
            // The page's values, where they start, and the index of its first null.
            let (buf, num_values, values_at, first_null_index) = match page {
                Page::DataPage {
                    buf,
                    num_values,
                    encoding: Encoding::PLAIN,
                    def_level_encoding,
                    ..
                } => {
                    if !self.optional {
                        (buf, num_values, 0, None)
                    } else {
                        if def_level_encoding != Encoding::RLE {
                            return Err(Stop::Unsupported);
                        }
                        let len = buf
                            .get(..4)
                            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                            .ok_or_else(truncated)?;
                        let end = len.checked_add(4).ok_or_else(truncated)?;
                        let levels = buf.get(4..end).ok_or_else(truncated)?;
                        let null = first_null(levels, num_values as usize)?;
                        (buf, num_values, end, null)
                    }
                }
                Page::DataPageV2 {
                    buf,
                    num_values,
                    encoding: Encoding::PLAIN,
                    num_nulls,
                    def_levels_byte_len,
                    rep_levels_byte_len,
                    ..
                } => {
                    let rep = rep_levels_byte_len as usize;
                    let end = rep
                        .checked_add(def_levels_byte_len as usize)
                        .ok_or_else(truncated)?;
                    let null = if self.optional {
                        let levels = buf.get(rep..end).ok_or_else(truncated)?;
                        first_null(levels, num_values as usize)?
                    } else {
                        None
                    };
                    if num_nulls > 0 && null.is_none() {
                        return Err(Stop::corrupt(format!(
                            "a data page's header counts {num_nulls} nulls but its definition levels hold none"
                        )));
                    }
                    (buf, num_values, end, null)
                }
                Page::DictionaryPage { .. } | Page::DataPage { .. } | Page::DataPageV2 { .. } => {
                    return Err(Stop::Unsupported);
                }
            };
            // Rows before the first null have one value each, stored in order.
            let n = first_null_index.unwrap_or(num_values as usize);
            let bytes = n
                .checked_mul(4)
                .and_then(|b| b.checked_add(values_at))
                .ok_or_else(|| Stop::corrupt("a data page's value count overflows"))?;
            if buf.len() < bytes {
                return Err(Stop::corrupt(format!(
                    "a data page of {n} float values holds only {} bytes of values",
                    buf.len().saturating_sub(values_at)
                )));
            }
            self.rows_read = row + u64::from(num_values);
            self.left = n;
            self.null_at = first_null_index.map(|i| row + i as u64);
            self.at = values_at;
            self.aligned.clear();
            if !(buf.as_ptr() as usize + values_at).is_multiple_of(align_of::<f32>()) {
                self.aligned.extend(
                    buf[values_at..bytes]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
                );
            }
            self.page = buf;
            if n > 0 || self.null_at.is_some() {
                return Ok(());
            }
        }
    }
}

/// Index of the first definition level that is not 1 among the first `count` levels of a
/// bit-width-1 RLE/bit-packed hybrid run sequence, or `None` when all are 1.
fn first_null(levels: &[u8], count: usize) -> Result<Option<usize>, Stop> {
    let truncated = || Stop::corrupt("truncated definition levels");
    let mut pos = 0;
    let mut index = 0;
    while index < count {
        // ULEB128 run header.
        let mut header = 0u64;
        let mut shift = 0;
        loop {
            let byte = *levels.get(pos).ok_or_else(truncated)?;
            pos += 1;
            header |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(Stop::corrupt("bad definition level run header"));
            }
        }
        let len = (header >> 1) as usize;
        if header & 1 == 0 {
            // RLE run: `len` copies of one value stored in one byte.
            let value = *levels.get(pos).ok_or_else(truncated)?;
            pos += 1;
            if value != 1 && len > 0 {
                return Ok(Some(index));
            }
            index = index.saturating_add(len);
        } else {
            // Bit-packed run: `len` groups of eight 1-bit values, one byte per group.
            let bytes = levels.get(pos..pos + len).ok_or_else(truncated)?;
            pos += len;
            for &byte in bytes {
                let valid = (count - index).min(8);
                let mask = if valid == 8 { 0xff } else { (1u8 << valid) - 1 };
                if byte & mask != mask {
                    return Ok(Some(index + (!byte & mask).trailing_zeros() as usize));
                }
                index += valid;
                if index >= count {
                    return Ok(None);
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_null_reads_rle_and_bit_packed_runs() {
        // RLE: 10 ones.
        assert_eq!(first_null(&[10 << 1, 1], 10).unwrap(), None);
        // RLE: 3 ones, then 2 zeros.
        assert_eq!(first_null(&[3 << 1, 1, 2 << 1, 0], 5).unwrap(), Some(3));
        // Bit-packed, 2 groups: all ones, then bit 5 clear.
        assert_eq!(
            first_null(&[(2 << 1) | 1, 0xff, 0b1101_1111], 16).unwrap(),
            Some(13)
        );
        // Padding bits beyond `count` are ignored.
        assert_eq!(first_null(&[(1 << 1) | 1, 0b0000_0111], 3).unwrap(), None);
        // A long RLE run with a two-byte header.
        assert_eq!(first_null(&[0x80, 0x02, 1], 128).unwrap(), None);
        assert!(matches!(
            first_null(&[10 << 1], 10),
            Err(Stop::Corrupt { .. })
        ));
    }
}
