//! [`ByteRanges`]: the bytes of a Parquet file the reader may touch, as the parquet crate's
//! `ChunkReader`.
//!
//! A local file is one range, its whole memory map. A remote file is the ranges that were
//! fetched for the work at hand: the footer when it is opened, a unit's used column chunks
//! when that unit is read. The decoders (`read.rs`, `pages.rs`, `page_bounds.rs`) read
//! through this type only, so local and remote files share every line of decoding; a read
//! outside the fetched ranges is an error (a footer that points elsewhere), never a request.

use bytes::{Buf, Bytes};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};

/// Byte ranges of one file, each at its offset in the file.
#[derive(Debug, Clone)]
pub(super) struct ByteRanges {
    /// The file's length.
    len: u64,
    /// `(offset, bytes)`, sorted by offset, not overlapping.
    pieces: Vec<(u64, Bytes)>,
    /// What keeps the fetched bytes counted in the fetch budget (remote files).
    #[cfg(feature = "remote")]
    _permit: Option<std::sync::Arc<crate::data::source::remote::FetchPermit>>,
}

impl ByteRanges {
    /// The whole file.
    pub(super) fn whole(bytes: Bytes) -> ByteRanges {
        ByteRanges {
            len: bytes.len() as u64,
            pieces: vec![(0, bytes)],
            #[cfg(feature = "remote")]
            _permit: None,
        }
    }

    /// Some ranges of a file of `len` bytes (`pieces` need not be sorted).
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub(super) fn pieces(len: u64, mut pieces: Vec<(u64, Bytes)>) -> ByteRanges {
        pieces.sort_by_key(|(offset, _)| *offset);
        ByteRanges {
            len,
            pieces,
            #[cfg(feature = "remote")]
            _permit: None,
        }
    }

    /// These ranges, holding `permit` until the last clone is dropped.
    #[cfg(feature = "remote")]
    pub(super) fn holding(mut self, permit: crate::data::source::remote::FetchPermit) -> Self {
        self._permit = Some(std::sync::Arc::new(permit));
        self
    }

    /// The file's length.
    pub(super) fn file_len(&self) -> u64 {
        self.len
    }

    /// The bytes `start..end` of the file, when one fetched range holds them all.
    pub(super) fn slice(&self, start: u64, end: u64) -> Option<&[u8]> {
        if start > end || end > self.len {
            return None;
        }
        let at = self.pieces.partition_point(|(offset, _)| *offset <= start);
        let (offset, bytes) = self.pieces.get(at.checked_sub(1)?)?;
        let from = (start - offset) as usize;
        let to = (end - offset) as usize;
        bytes.get(from..to)
    }

    /// Like [`ByteRanges::slice`], as shared `Bytes`.
    fn bytes(&self, start: u64, len: usize) -> Result<Bytes, ParquetError> {
        let end = start.saturating_add(len as u64);
        let at = self.pieces.partition_point(|(offset, _)| *offset <= start);
        let found = at
            .checked_sub(1)
            .and_then(|i| self.pieces.get(i))
            .filter(|(offset, bytes)| end <= offset + bytes.len() as u64);
        match found {
            Some((offset, bytes)) => {
                Ok(bytes.slice((start - offset) as usize..(end - offset) as usize))
            }
            None => Err(ParquetError::EOF(format!(
                "bytes {start}..{end} of a {}-byte file were not read (the footer points outside the column chunks it lists)",
                self.len
            ))),
        }
    }
}

impl Length for ByteRanges {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for ByteRanges {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        // A reader runs to the end of the range holding `start`.
        let at = self.pieces.partition_point(|(offset, _)| *offset <= start);
        let (offset, bytes) = at
            .checked_sub(1)
            .and_then(|i| self.pieces.get(i))
            .ok_or_else(|| ParquetError::EOF(format!("byte {start} was not read")))?;
        let from = (start - offset) as usize;
        if from > bytes.len() {
            return Err(ParquetError::EOF(format!("byte {start} was not read")));
        }
        Ok(bytes.slice(from..).reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        self.bytes(start, length)
    }
}

/// Reads all of a `Read` (for tests).
#[cfg(test)]
fn read_all(mut r: impl std::io::Read) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_a_fetched_range_succeed_and_others_fail() {
        let ranges = ByteRanges::pieces(
            100,
            vec![
                (50, Bytes::from_static(b"0123456789")),
                (10, Bytes::from_static(b"abcdef")),
            ],
        );
        assert_eq!(ranges.get_bytes(12, 3).unwrap(), Bytes::from_static(b"cde"));
        assert_eq!(
            ranges.get_bytes(55, 5).unwrap(),
            Bytes::from_static(b"56789")
        );
        assert!(ranges.get_bytes(14, 4).is_err()); // runs past the first range
        assert!(ranges.get_bytes(0, 1).is_err());
        assert_eq!(ranges.slice(51, 53), Some(&b"12"[..]));
        assert_eq!(ranges.slice(60, 61), None);
        assert_eq!(read_all(ranges.get_read(58).unwrap()), b"89");
        let whole = ByteRanges::whole(Bytes::from_static(b"xyz"));
        assert_eq!(whole.file_len(), 3);
        assert_eq!(whole.get_bytes(0, 3).unwrap(), Bytes::from_static(b"xyz"));
    }
}
