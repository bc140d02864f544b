//! [`FileData`]: where a Parquet file's bytes live (a local memory map, or a remote object)
//! and how the reader gets the byte ranges it decodes ([`ByteRanges`]).
//!
//! A local file hands out its whole map, watches it for shrinking and releases a read unit
//! from the resident set. A remote file fetches, per unit, only the used columns' chunks
//! (close ones coalesced into one request), counted in the process's fetch budget until the
//! unit is decoded; it is checked against its listing on every fetch (see
//! [`RemoteObject`](crate::data::source::remote::RemoteObject)). Nothing else in the Parquet
//! reader knows which it has.

use std::path::Path;
use std::sync::Arc;

use memmap2::UncheckedAdvice;
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::RowGroupMetaData;

#[cfg(feature = "remote")]
use crate::data::source::TAIL_BYTES;
use crate::data::source::mapped_file::MappedFile;
use crate::data::source::parquet::ranges::ByteRanges;
use crate::data::source::{ChunkSink, FileIdentity};
use crate::error::Result;

/// Where one Parquet file's bytes are.
pub(super) enum FileData {
    /// A local file, memory-mapped.
    Mapped {
        map: Arc<MappedFile>,
        whole: ByteRanges,
    },
    /// An object in remote storage, with the tail fetched when it was opened (its footer).
    #[cfg(feature = "remote")]
    Remote {
        object: Arc<crate::data::source::remote::RemoteObject>,
        tail: bytes::Bytes,
    },
}

impl FileData {
    /// The file's length in bytes.
    pub(super) fn len(&self) -> u64 {
        match self {
            FileData::Mapped { map, .. } => map.len() as u64,
            #[cfg(feature = "remote")]
            FileData::Remote { object, .. } => object.size(),
        }
    }

    /// Bytes that hold (at least) the file's footer: the whole map of a local file, the
    /// tail fetched when a remote one was opened.
    pub(super) fn footer_bytes(&self) -> ByteRanges {
        match self {
            FileData::Mapped { whole, .. } => whole.clone(),
            #[cfg(feature = "remote")]
            FileData::Remote { object, tail } => {
                let len = object.size();
                ByteRanges::pieces(len, vec![(len - tail.len() as u64, tail.clone())])
            }
        }
    }

    /// [`Error::Changed`](crate::error::Error::Changed) when a local file changed size since
    /// it was opened (a remote one is checked on each fetch instead).
    pub(super) fn check(&self) -> Result<()> {
        match self {
            FileData::Mapped { map, .. } => map.check(),
            #[cfg(feature = "remote")]
            FileData::Remote { .. } => Ok(()),
        }
    }

    /// The bytes of the chunks of the columns `mask` selects in `row_groups`: the whole map
    /// of a local file, or with `explicit` the chunks read into buffers of their own and
    /// dropped from the page cache ([`ReadMode`](crate::data::ReadMode)); the fetched chunks
    /// of a remote one.
    pub(super) fn chunks<'a>(
        &self,
        row_groups: impl IntoIterator<Item = &'a RowGroupMetaData>,
        mask: &ProjectionMask,
        explicit: bool,
    ) -> Result<ByteRanges> {
        match self {
            FileData::Mapped { map, .. } if explicit => {
                let len = map.len() as u64;
                let pieces = coalesce(chunk_ranges(len, row_groups, mask))
                    .into_iter()
                    .map(|r| Ok((r.start, map.read_at(r.start, (r.end - r.start) as usize)?)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(ByteRanges::pieces(len, pieces))
            }
            FileData::Mapped { whole, .. } => {
                let _ = (row_groups.into_iter().next(), mask);
                Ok(whole.clone())
            }
            #[cfg(feature = "remote")]
            FileData::Remote { object, .. } => {
                let _ = explicit; // remote bytes are always fetched by ranges
                let ranges = chunk_ranges(object.size(), row_groups, mask);
                let (fetched, permit) = object.read_ranges(&ranges)?;
                Ok(assemble(object.size(), &ranges, fetched, permit))
            }
        }
    }

    /// A remote file's object and the byte ranges of the chunks of the columns `mask` selects
    /// in `row_group` (what read-ahead fetches for a unit); `None` for a local file.
    #[cfg(feature = "remote")]
    pub(super) fn remote_chunks(
        &self,
        row_group: &RowGroupMetaData,
        mask: &ProjectionMask,
    ) -> Option<(
        Arc<crate::data::source::remote::RemoteObject>,
        Vec<std::ops::Range<u64>>,
    )> {
        match self {
            FileData::Mapped { .. } => None,
            FileData::Remote { object, .. } => Some((
                object.clone(),
                chunk_ranges(object.size(), [row_group], mask),
            )),
        }
    }

    /// Runs one unit's `read` into `sink`: a local file watched for shrinking (no block is
    /// handed on once it did, and the change replaces whatever the read returned).
    pub(super) fn read_watched<T>(
        &self,
        sink: &mut dyn ChunkSink,
        read: impl FnOnce(&mut dyn ChunkSink) -> Result<T>,
    ) -> Result<T> {
        match self {
            FileData::Mapped { map, .. } => map.read_watched(sink, read),
            #[cfg(feature = "remote")]
            FileData::Remote { .. } => read(sink),
        }
    }

    /// Releases a read row group's pages from this process's resident set (local files; a
    /// remote unit's bytes are freed when its [`ByteRanges`] are dropped).
    pub(super) fn release(&self, row_group: &RowGroupMetaData) {
        #[allow(irrefutable_let_patterns)] // the only variant without the `remote` feature
        let FileData::Mapped { map, .. } = self else {
            return;
        };
        let (mut start, mut end) = (u64::MAX, 0u64);
        for column in row_group.columns() {
            let (offset, len) = column.byte_range();
            start = start.min(offset);
            end = end.max(offset.saturating_add(len));
        }
        let end = end.min(map.len() as u64);
        if start < end {
            // SAFETY: the map is a read-only, shared file mapping; MADV_DONTNEED only drops
            // this process's page-table entries and later reads fault the same bytes back in
            // from the page cache, so no memory that Rust can observe changes.
            let _ = unsafe {
                map.map().unchecked_advise_range(
                    UncheckedAdvice::DontNeed,
                    start as usize,
                    (end - start) as usize,
                )
            };
        }
    }

    /// What a checkpoint records of this file: a local file as [`FileIdentity::of`] reads it
    /// now; a remote one as listed (URL, size, ETag) with the CRC32C of the tail read at open.
    pub(super) fn identity(&self, path: &Path) -> Result<FileIdentity> {
        match self {
            FileData::Mapped { .. } => FileIdentity::of(path),
            #[cfg(feature = "remote")]
            FileData::Remote { object, tail } => {
                let start = tail.len().saturating_sub(TAIL_BYTES as usize);
                Ok(FileIdentity {
                    path: object.name().to_path_buf(),
                    bytes: object.size(),
                    tail_crc32c: crc32c::crc32c(&tail[start..]),
                    etag: object.etag(),
                })
            }
        }
    }
}

/// The byte ranges of the chunks of the columns `mask` selects in `row_groups`, within a file
/// of `len` bytes.
fn chunk_ranges<'a>(
    len: u64,
    row_groups: impl IntoIterator<Item = &'a RowGroupMetaData>,
    mask: &ProjectionMask,
) -> Vec<std::ops::Range<u64>> {
    row_groups
        .into_iter()
        .flat_map(|rg| {
            (0..rg.num_columns())
                .filter(|&leaf| mask.leaf_included(leaf))
                .map(|leaf| {
                    let (offset, size) = rg.column(leaf).byte_range();
                    // Out-of-file ranges are left to page_bounds to report.
                    offset.min(len)..offset.saturating_add(size).min(len)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Gaps between chunks up to which an explicit read takes the gap along rather than reading
/// twice (a skipped column's chunk, a page index).
const READ_GAP_BYTES: u64 = 256 << 10;

/// `ranges` sorted and merged into the spans one explicit read each covers: overlapping ones
/// (two columns' chunks declared over each other) and ones at most [`READ_GAP_BYTES`] apart.
fn coalesce(mut ranges: Vec<std::ops::Range<u64>>) -> Vec<std::ops::Range<u64>> {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_by_key(|r| r.start);
    let mut spans: Vec<std::ops::Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match spans.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(READ_GAP_BYTES) => {
                last.end = last.end.max(r.end);
            }
            _ => spans.push(r),
        }
    }
    spans
}

/// The most bytes one reader holds to decode one row group of `row_groups` (in a file of
/// `file_len` bytes) with the columns `mask` selects: their chunks as stored plus the pages
/// alive at once as decompressed, per column at most the chunk's decompressed size and what
/// [`page_bounds`](super::page_bounds) lets one page declare (so a footer that lies about its
/// sizes cannot inflate the budget; its pages are refused when read).
pub(super) fn unit_io_bytes<'a>(
    row_groups: impl IntoIterator<Item = &'a RowGroupMetaData>,
    mask: &ProjectionMask,
    file_len: u64,
) -> u64 {
    row_groups
        .into_iter()
        .map(|rg| {
            (0..rg.num_columns())
                .filter(|&leaf| mask.leaf_included(leaf))
                .map(|leaf| {
                    let column = rg.column(leaf);
                    let stored = u64::try_from(column.compressed_size()).unwrap_or(0);
                    let declared = u64::try_from(column.uncompressed_size()).unwrap_or(0);
                    let decompressed = declared.min(super::page_bounds::max_page_bytes(column));
                    stored.min(file_len).saturating_add(decompressed)
                })
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0)
}

/// The fetched bytes of `ranges` (in a file of `len` bytes) as the [`ByteRanges`] a decoder
/// reads, holding `permit` (the bytes stay counted as fetched until they are dropped).
#[cfg(feature = "remote")]
pub(super) fn assemble(
    len: u64,
    ranges: &[std::ops::Range<u64>],
    fetched: Vec<bytes::Bytes>,
    permit: crate::data::source::remote::FetchPermit,
) -> ByteRanges {
    let pieces = ranges
        .iter()
        .zip(fetched)
        .map(|(r, bytes)| (r.start, bytes))
        .collect();
    merge_overlaps(len, pieces).holding(permit)
}

/// Ranges that may overlap (two columns' chunks declared over each other) as disjoint pieces:
/// an overlapping range is merged into the one before it.
#[cfg(feature = "remote")]
fn merge_overlaps(len: u64, mut pieces: Vec<(u64, bytes::Bytes)>) -> ByteRanges {
    pieces.sort_by_key(|(offset, _)| *offset);
    let mut out: Vec<(u64, bytes::Bytes)> = Vec::with_capacity(pieces.len());
    for (offset, bytes) in pieces {
        if let Some((last_offset, last)) = out.last_mut() {
            let last_end = *last_offset + last.len() as u64;
            if offset < last_end {
                let end = offset + bytes.len() as u64;
                if end > last_end {
                    let mut joined = last.to_vec();
                    joined.extend_from_slice(&bytes[(last_end - offset) as usize..]);
                    *last = bytes::Bytes::from(joined);
                }
                continue;
            }
        }
        out.push((offset, bytes));
    }
    ByteRanges::pieces(len, out)
}

#[cfg(test)]
mod tests {
    use super::coalesce;

    #[test]
    fn explicit_reads_cover_close_and_overlapping_chunks_once() {
        let gap = super::READ_GAP_BYTES;
        assert_eq!(
            coalesce(vec![100..200, 0..100, 150..180, 5..5]),
            vec![0..200],
            "adjacent, overlapping and empty ranges"
        );
        assert_eq!(
            coalesce(vec![0..10, 10 + gap..20 + gap, 21 + 2 * gap..30 + 2 * gap]),
            vec![0..20 + gap, 21 + 2 * gap..30 + 2 * gap],
            "a gap of READ_GAP_BYTES is read along, a longer one is not"
        );
    }
}
