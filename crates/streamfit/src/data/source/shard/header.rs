//! The shard file's own layout: the fixed 64-byte [`Header`], the JSON [`ShardMeta`] block
//! that follows it, and [`read_header`], which reads and validates both with plain reads
//! before anything is mapped.
//!
//! The layout is specified in `docs/shard-format.md`; [`Header`] is its single implementation.
//! Every field is checked against the file's length, so a truncated or hostile file is an
//! error and never an out-of-bounds read. The dataset's manifest is `manifest.rs`'s.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::source::mapped_file::open_regular;
use crate::error::{Error, Result};

/// The first eight bytes of every shard file.
pub const MAGIC: [u8; 8] = *b"SFSHARD\0";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the fixed header.
pub const HEADER_BYTES: usize = 64;
/// Target bytes per checksum block (the block's row count is derived from the row stride).
pub const BLOCK_BYTES: usize = 1 << 20;
/// Largest metadata block a reader accepts (a guard against hostile lengths).
pub(super) const MAX_META_BYTES: u64 = 64 << 20;
/// Largest row width a reader accepts.
pub(super) const MAX_FEATURES: u32 = 1 << 20;

/// The fixed 64-byte header of a shard file (see `docs/shard-format.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Rows in the file.
    pub num_rows: u64,
    /// Features per row (the row stride is `4 × (num_features + 1)` bytes).
    pub num_features: u32,
    /// Rows per checksum block (the last block may be shorter).
    pub block_rows: u32,
    /// Bytes of the JSON metadata that follows the header.
    pub meta_len: u32,
    /// CRC32C of the metadata bytes.
    pub meta_crc: u32,
}

impl Header {
    /// Bytes per row: the features and the target.
    pub fn row_stride(&self) -> u64 {
        4 * (u64::from(self.num_features) + 1)
    }

    /// Number of checksum blocks.
    pub fn num_blocks(&self) -> u64 {
        self.num_rows.div_ceil(u64::from(self.block_rows))
    }

    /// Offset of the first row: after the metadata, rounded up to 64 bytes.
    pub fn rows_offset(&self) -> u64 {
        (HEADER_BYTES as u64 + u64::from(self.meta_len)).next_multiple_of(64)
    }

    /// Offset of the checksum table, right after the rows.
    pub fn checksums_offset(&self) -> u64 {
        self.rows_offset() + self.num_rows * self.row_stride()
    }

    /// The exact length a file with this header has.
    pub fn file_len(&self) -> u64 {
        self.checksums_offset() + 4 * self.num_blocks()
    }

    /// The 64 header bytes, ending with their own CRC32C.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.num_rows.to_le_bytes());
        out[24..28].copy_from_slice(&self.num_features.to_le_bytes());
        out[28..32].copy_from_slice(&(self.row_stride() as u32).to_le_bytes());
        out[32..36].copy_from_slice(&self.block_rows.to_le_bytes());
        out[36..44].copy_from_slice(&self.num_blocks().to_le_bytes());
        out[44..48].copy_from_slice(&self.meta_len.to_le_bytes());
        out[48..52].copy_from_slice(&self.meta_crc.to_le_bytes());
        // 52..60 reserved, zero.
        let crc = crc32c::crc32c(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and validates a header against the length of the file it came from. Every
    /// field is checked (magic, version, its own checksum, the derived sizes with overflow
    /// checks) so that any offset computed from the result lies inside the file.
    pub fn decode(bytes: &[u8], file_len: u64, path: &Path) -> Result<Header> {
        let bad = |reason: String| Error::CorruptShard {
            file: path.to_path_buf(),
            block: None,
            reason,
        };
        if bytes.len() < HEADER_BYTES || file_len < HEADER_BYTES as u64 {
            return Err(bad(format!(
                "file is {file_len} bytes, shorter than the {HEADER_BYTES}-byte header"
            )));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        if bytes[0..8] != MAGIC {
            return Err(bad("not a streamfit shard (wrong magic bytes)".into()));
        }
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}, this build reads version {VERSION}"
            )));
        }
        let stored_crc = u32_at(60);
        let crc = crc32c::crc32c(&bytes[..60]);
        if crc != stored_crc {
            return Err(bad(format!(
                "header checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
            )));
        }
        if u32_at(12) as usize != HEADER_BYTES {
            return Err(bad(format!(
                "header length {} is not {HEADER_BYTES}",
                u32_at(12)
            )));
        }
        let header = Header {
            num_rows: u64_at(16),
            num_features: u32_at(24),
            block_rows: u32_at(32),
            meta_len: u32_at(44),
            meta_crc: u32_at(48),
        };
        if header.num_features == 0 || header.num_features > MAX_FEATURES {
            return Err(bad(format!(
                "feature count {} outside 1..={MAX_FEATURES}",
                header.num_features
            )));
        }
        if u64::from(u32_at(28)) != header.row_stride() {
            return Err(bad(format!(
                "row stride {} does not match {} features",
                u32_at(28),
                header.num_features
            )));
        }
        if header.block_rows == 0 {
            return Err(bad("zero rows per checksum block".into()));
        }
        if u64::from(header.meta_len) > MAX_META_BYTES {
            return Err(bad(format!(
                "metadata length {} too large",
                header.meta_len
            )));
        }
        // The row count is the one field large enough to overflow the offsets.
        let expected_len = header
            .num_rows
            .checked_mul(header.row_stride())
            .and_then(|rows| rows.checked_add(header.rows_offset()))
            .and_then(|end| end.checked_add(4 * header.num_blocks()));
        if expected_len != Some(file_len) {
            return Err(bad(match expected_len {
                Some(len) => format!(
                    "header describes {} rows × {} features ({len} bytes) but the file is {file_len} bytes (truncated or padded)",
                    header.num_rows, header.num_features
                ),
                None => format!("row count {} overflows the file size", header.num_rows),
            }));
        }
        if u64_at(36) != header.num_blocks() {
            return Err(bad(format!(
                "block count {} does not match {} rows in blocks of {}",
                u64_at(36),
                header.num_rows,
                header.block_rows
            )));
        }
        Ok(header)
    }
}

/// The JSON metadata block of a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardMeta {
    /// Feature names in row order.
    pub feature_names: Vec<String>,
    /// The label column of the source.
    pub label: String,
    /// Global id of the shard's first row (rows before it in the dataset).
    pub first_row_id: u64,
    /// Rows per unit, in order (each unit is one row group of the source).
    pub units: Vec<u64>,
}

/// Reads a file's header and metadata with plain reads and validates them (a path that is not
/// a regular file is refused before it is read).
pub(super) fn read_header(path: &Path) -> Result<(Header, ShardMeta, File)> {
    let mut file = open_regular(path)?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = [0u8; HEADER_BYTES];
    let got = read_up_to(&mut file, &mut head).map_err(|e| Error::io(path, e))?;
    let header = Header::decode(&head[..got], file_len, path)?;
    // The metadata and the zero padding up to the rows (the header bounded both).
    let mut meta_bytes = vec![0u8; (header.rows_offset() as usize) - HEADER_BYTES];
    file.seek(SeekFrom::Start(HEADER_BYTES as u64))
        .and_then(|_| file.read_exact(&mut meta_bytes))
        .map_err(|e| Error::io(path, e))?;
    let padding = meta_bytes.split_off(header.meta_len as usize);
    let bad = |reason: String| Error::CorruptShard {
        file: path.to_path_buf(),
        block: None,
        reason,
    };
    if crc32c::crc32c(&meta_bytes) != header.meta_crc {
        return Err(bad("metadata checksum mismatch".into()));
    }
    if padding.iter().any(|&b| b != 0) {
        return Err(bad(
            "non-zero padding between the metadata and the rows".into()
        ));
    }
    let meta: ShardMeta =
        serde_json::from_slice(&meta_bytes).map_err(|e| bad(format!("metadata: {e}")))?;
    if meta.feature_names.len() != header.num_features as usize {
        return Err(bad(format!(
            "metadata names {} features, header says {}",
            meta.feature_names.len(),
            header.num_features
        )));
    }
    let unit_rows = meta
        .units
        .iter()
        .try_fold(0u64, |acc, &rows| acc.checked_add(rows));
    if unit_rows != Some(header.num_rows) || meta.units.contains(&0) {
        return Err(bad(format!(
            "metadata units do not add up to the header's {} rows",
            header.num_rows
        )));
    }
    Ok((header, meta, file))
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            num_rows: 10,
            num_features: 3,
            block_rows: 4,
            meta_len: 100,
            meta_crc: 7,
        }
    }

    #[test]
    fn header_round_trips_and_fixes_the_file_length() {
        let h = header();
        assert_eq!(h.rows_offset(), 192);
        assert_eq!(h.num_blocks(), 3);
        assert_eq!(h.file_len(), 192 + 10 * 16 + 12);
        let bytes = h.encode();
        assert_eq!(
            Header::decode(&bytes, h.file_len(), Path::new("s")).unwrap(),
            h
        );
        let err = Header::decode(&bytes, h.file_len() - 1, Path::new("s")).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn every_flipped_header_byte_is_rejected() {
        let h = header();
        let bytes = h.encode();
        for i in 0..HEADER_BYTES {
            let mut bad = bytes;
            bad[i] ^= 0x10;
            assert!(
                Header::decode(&bad, h.file_len(), Path::new("s")).is_err(),
                "byte {i}"
            );
        }
    }
}
