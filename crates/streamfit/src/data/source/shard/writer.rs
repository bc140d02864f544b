//! [`ShardWriter`]: writes one shard file, header and metadata first, then rows block by block
//! with a running CRC32C per block, then the checksum table.
//!
//! It writes one file inside the directory `convert` is building (a partial directory renamed
//! into place when every shard and the manifest are done, so the dataset appears whole or not
//! at all); planning the shards and writing the manifest are `convert`'s.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::data::RowBlock;
use crate::data::source::shard::header::{
    BLOCK_BYTES, HEADER_BYTES, Header, MAX_FEATURES, ShardMeta,
};
use crate::error::{Error, Result};

/// Writes one shard file: header and metadata first, then rows block by block, then the
/// checksum table. The row count is fixed up front; [`ShardWriter::finish`] checks it.
pub struct ShardWriter {
    path: PathBuf,
    out: BufWriter<File>,
    header: Header,
    rows_written: u64,
    /// Checksums of the completed blocks and the running CRC of the current one.
    checksums: Vec<u32>,
    block_crc: u32,
    rows_in_block: u32,
    row_bytes: Vec<u8>,
}

impl ShardWriter {
    /// Creates `path` for `num_rows` rows described by `meta`.
    pub fn create(path: &Path, meta: &ShardMeta, num_rows: u64) -> Result<Self> {
        let out_err = |e: std::io::Error| Error::output(path, e);
        let num_features = u32::try_from(meta.feature_names.len())
            .ok()
            .filter(|&d| (1..=MAX_FEATURES).contains(&d))
            .ok_or_else(|| {
                Error::config(
                    "features",
                    format!("a shard holds 1..={MAX_FEATURES} features"),
                )
            })?;
        let meta_json = serde_json::to_vec(meta).map_err(|e| Error::output(path, e))?;
        let stride = 4 * (num_features as usize + 1);
        let header = Header {
            num_rows,
            num_features,
            block_rows: (BLOCK_BYTES / stride).max(1) as u32,
            meta_len: u32::try_from(meta_json.len())
                .map_err(|_| Error::output(path, "metadata too large"))?,
            meta_crc: crc32c::crc32c(&meta_json),
        };
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(out_err)?);
        out.write_all(&header.encode()).map_err(out_err)?;
        out.write_all(&meta_json).map_err(out_err)?;
        let pad = header.rows_offset() as usize - HEADER_BYTES - meta_json.len();
        out.write_all(&[0u8; 64][..pad]).map_err(out_err)?;
        Ok(ShardWriter {
            path: path.to_path_buf(),
            out,
            header,
            rows_written: 0,
            checksums: Vec::with_capacity(header.num_blocks() as usize),
            block_crc: 0,
            rows_in_block: 0,
            row_bytes: Vec::with_capacity(stride),
        })
    }

    /// Rows still expected.
    pub fn rows_left(&self) -> u64 {
        self.header.num_rows - self.rows_written
    }

    /// Appends rows `rows` of `block`.
    pub fn write_rows(&mut self, block: &RowBlock, rows: std::ops::Range<usize>) -> Result<()> {
        assert_eq!(block.num_features(), self.header.num_features as usize);
        if rows.len() as u64 > self.rows_left() {
            return Err(Error::internal(format!(
                "{}: more rows than the {} planned",
                self.path.display(),
                self.header.num_rows
            )));
        }
        for i in rows {
            self.row_bytes.clear();
            for v in block.row(i) {
                self.row_bytes.extend_from_slice(&v.to_le_bytes());
            }
            self.row_bytes
                .extend_from_slice(&block.targets()[i].to_le_bytes());
            self.out
                .write_all(&self.row_bytes)
                .map_err(|e| Error::output(&self.path, e))?;
            self.block_crc = crc32c::crc32c_append(self.block_crc, &self.row_bytes);
            self.rows_in_block += 1;
            self.rows_written += 1;
            if self.rows_in_block == self.header.block_rows {
                self.checksums.push(self.block_crc);
                self.block_crc = 0;
                self.rows_in_block = 0;
            }
        }
        Ok(())
    }

    /// Writes the checksum table, flushes and syncs the file; returns its length in bytes.
    pub fn finish(mut self) -> Result<u64> {
        if self.rows_left() != 0 {
            return Err(Error::internal(format!(
                "{}: {} rows written, {} planned",
                self.path.display(),
                self.rows_written,
                self.header.num_rows
            )));
        }
        if self.rows_in_block > 0 {
            self.checksums.push(self.block_crc);
        }
        let out_err = |e: std::io::Error| Error::output(&self.path, e);
        for crc in &self.checksums {
            self.out.write_all(&crc.to_le_bytes()).map_err(out_err)?;
        }
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::output(&self.path, e.error()))?;
        file.sync_all().map_err(out_err)?;
        Ok(self.header.file_len())
    }
}
