//! streamfit shards: a fixed-stride binary format read through a memory map, with no decoding.
//!
//! A shard dataset is a directory with a `manifest.json` and one or more shard files. A shard
//! file is a 64-byte header, a JSON metadata block (feature names, label, unit sizes), the rows
//! (per row: the features then the target, little-endian f32) and one CRC32C per block of rows.
//! The layout is specified in `docs/shard-format.md`; [`Header`] is its single implementation.
//!
//! Opening a shard reads and validates the header and metadata with plain reads, against the
//! file's length, before anything is mapped, so a truncated or hostile file is an error and
//! never an out-of-bounds read. A unit is a row range (one Parquet row group of the converted
//! source), read by copying its rows from the map into a [`RowBlock`]. Each block of rows is
//! checked against its checksum the first time any reader touches it (once per process). The
//! reader asks the kernel to read a unit's pages ahead (`WILLNEED`) and drops them from this
//! process's resident set after the unit (`DONTNEED`), so resident memory stays bounded.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{Advice, Mmap, UncheckedAdvice};
use serde::{Deserialize, Serialize};

use crate::data::source::{ChunkSink, ColumnInfo, ColumnRole, Source, SourceInfo, Unit};
use crate::data::{ColumnSpec, FeatureSelection, RowBlock, Schema};
use crate::error::{Error, Result};

/// The first eight bytes of every shard file.
pub const MAGIC: [u8; 8] = *b"SFSHARD\0";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the fixed header.
pub const HEADER_BYTES: usize = 64;
/// Name of the manifest that marks a directory as a shard dataset.
pub const MANIFEST: &str = "manifest.json";
/// The `format` field of a manifest.
pub const MANIFEST_FORMAT: &str = "streamfit-shards";
/// Target bytes per checksum block (the block's row count is derived from the row stride).
pub const BLOCK_BYTES: usize = 1 << 20;
/// Largest metadata block a reader accepts (a guard against hostile lengths).
const MAX_META_BYTES: u64 = 64 << 20;
/// Largest row width a reader accepts.
const MAX_FEATURES: u32 = 1 << 20;

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

/// `manifest.json`: what a shard dataset holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Always [`VERSION`] for this build.
    pub version: u32,
    /// Rows in all shards.
    pub num_rows: u64,
    /// Feature names in row order.
    pub feature_names: Vec<String>,
    /// The label column of the source.
    pub label: String,
    /// The source the shards were converted from (files, and its used columns' types).
    pub source: ManifestSource,
    /// The shard files in order.
    pub shards: Vec<ManifestShard>,
}

/// Where a shard dataset came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestSource {
    /// The source files, as given to `convert`.
    pub files: Vec<PathBuf>,
    /// The source's used columns and their types, e.g. `f0: Float32, …, label: Float32`.
    pub schema: String,
}

/// One shard in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestShard {
    /// File name inside the dataset directory.
    pub file: String,
    /// Rows in the shard.
    pub rows: u64,
    /// Bytes of the shard file.
    pub bytes: u64,
}

/// True when `dir` is a directory holding a shard manifest.
pub fn is_shard_dataset(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

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

/// One opened shard file.
struct ShardFile {
    path: PathBuf,
    header: Header,
    map: Mmap,
    /// Per checksum block: verified already (by any reader)?
    verified: Vec<AtomicBool>,
}

/// A shard dataset opened for reading.
pub struct ShardSource {
    paths: Vec<PathBuf>,
    files: Vec<ShardFile>,
    schema: Schema,
    units: Vec<Unit>,
    /// Per unit: the first row inside its shard.
    unit_offsets: Vec<u64>,
    file_bytes: u64,
    verify_checksums: bool,
    manifest: Manifest,
}

/// Reads a file's header and metadata with plain reads and validates them.
fn read_header(path: &Path) -> Result<(Header, ShardMeta, File)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
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

impl ShardSource {
    /// Opens the shard dataset in `dir`. `spec` must be the default (every feature, the
    /// converted label) or name exactly the shards' columns: shards have fixed columns.
    pub fn open(dir: &Path, spec: &ColumnSpec, verify_checksums: bool) -> Result<Self> {
        let manifest_path = dir.join(MANIFEST);
        let bad_manifest = |reason: String| Error::CorruptShard {
            file: manifest_path.clone(),
            block: None,
            reason,
        };
        let text = std::fs::read(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| bad_manifest(format!("{e}")))?;
        if manifest.format != MANIFEST_FORMAT || manifest.version != VERSION {
            return Err(bad_manifest(format!(
                "format {} version {}, this build reads {MANIFEST_FORMAT} version {VERSION}",
                manifest.format, manifest.version
            )));
        }
        check_spec(spec, &manifest, dir)?;
        if manifest.shards.is_empty() || manifest.num_rows == 0 {
            return Err(Error::EmptyDataset {
                what: format!("{} lists no rows", manifest_path.display()),
            });
        }
        let mut files = Vec::with_capacity(manifest.shards.len());
        let mut units = Vec::new();
        let mut unit_offsets = Vec::new();
        let mut next_row_id = 0u64;
        let mut file_bytes = 0u64;
        for (index, entry) in manifest.shards.iter().enumerate() {
            if entry.file.contains(['/', '\\']) || entry.file.starts_with('.') {
                return Err(bad_manifest(format!(
                    "shard name {:?} leaves the directory",
                    entry.file
                )));
            }
            let path = dir.join(&entry.file);
            let (header, meta, file) = read_header(&path)?;
            let bad = |reason: String| Error::CorruptShard {
                file: path.clone(),
                block: None,
                reason,
            };
            if header.num_rows != entry.rows || header.file_len() != entry.bytes {
                return Err(bad(format!(
                    "holds {} rows in {} bytes; the manifest says {} rows in {} bytes",
                    header.num_rows,
                    header.file_len(),
                    entry.rows,
                    entry.bytes
                )));
            }
            if meta.feature_names != manifest.feature_names || meta.label != manifest.label {
                return Err(bad("its columns differ from the manifest's".into()));
            }
            if meta.first_row_id != next_row_id {
                return Err(bad(format!(
                    "first row id {} where {} rows precede it",
                    meta.first_row_id, next_row_id
                )));
            }
            // SAFETY: the map is read-only and the header was validated against the file's
            // length; like every file-backed map it assumes no one truncates the file while
            // streamfit runs (the same assumption the Parquet reader makes).
            let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
            if map.len() as u64 != header.file_len() {
                return Err(bad("the file changed size while it was opened".into()));
            }
            let _ = map.advise(Advice::Sequential);
            let mut offset = 0u64;
            for (k, &rows) in meta.units.iter().enumerate() {
                units.push(Unit {
                    file: index,
                    index_in_file: k,
                    num_rows: rows,
                    first_row_id: next_row_id + offset,
                });
                unit_offsets.push(offset);
                offset += rows;
            }
            next_row_id += header.num_rows;
            file_bytes += header.file_len();
            let verified = (0..header.num_blocks())
                .map(|_| AtomicBool::new(false))
                .collect();
            files.push(ShardFile {
                path,
                header,
                map,
                verified,
            });
        }
        if next_row_id != manifest.num_rows {
            return Err(bad_manifest(format!(
                "says {} rows but its shards hold {next_row_id}",
                manifest.num_rows
            )));
        }
        Ok(ShardSource {
            paths: files.iter().map(|f| f.path.clone()).collect(),
            schema: Schema {
                feature_names: manifest.feature_names.clone(),
                label: manifest.label.clone(),
            },
            files,
            units,
            unit_offsets,
            file_bytes,
            verify_checksums,
            manifest,
        })
    }

    /// The dataset's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Verifies every not yet verified checksum block overlapping rows `rows` of `file`.
    fn verify(&self, file: &ShardFile, rows: std::ops::Range<u64>) -> Result<()> {
        let h = &file.header;
        let block_rows = u64::from(h.block_rows);
        for block in block_span(h, &rows) {
            if file.verified[block as usize].load(Ordering::Acquire) {
                continue;
            }
            let first = block * block_rows;
            let last = (first + block_rows).min(h.num_rows);
            let start = (h.rows_offset() + first * h.row_stride()) as usize;
            let end = (h.rows_offset() + last * h.row_stride()) as usize;
            let at = (h.checksums_offset() + 4 * block) as usize;
            let stored = u32::from_le_bytes(file.map[at..at + 4].try_into().expect("4 bytes"));
            let computed = crc32c::crc32c(&file.map[start..end]);
            if computed != stored {
                return Err(Error::CorruptShard {
                    file: file.path.clone(),
                    block: Some(block),
                    reason: format!(
                        "rows {first}..{last} fail their checksum (stored {stored:#010x}, computed {computed:#010x})"
                    ),
                });
            }
            file.verified[block as usize].store(true, Ordering::Release);
        }
        Ok(())
    }
}

/// The checksum blocks that overlap rows `rows`.
fn block_span(h: &Header, rows: &std::ops::Range<u64>) -> std::ops::Range<u64> {
    let block_rows = u64::from(h.block_rows);
    rows.start / block_rows..rows.end.div_ceil(block_rows)
}

/// The byte range of rows `rows`.
fn row_bytes(h: &Header, rows: &std::ops::Range<u64>) -> std::ops::Range<usize> {
    (h.rows_offset() + rows.start * h.row_stride()) as usize
        ..(h.rows_offset() + rows.end * h.row_stride()) as usize
}

/// Shards have fixed columns: the spec must be the default or agree with them.
fn check_spec(spec: &ColumnSpec, manifest: &Manifest, dir: &Path) -> Result<()> {
    let default = ColumnSpec::default();
    let label_ok = spec.label == manifest.label || spec.label == default.label;
    let features_ok = match &spec.features {
        FeatureSelection::AllNumeric => true,
        FeatureSelection::Columns(names) => *names == manifest.feature_names,
        FeatureSelection::ListColumn(_) => false,
    };
    if label_ok && features_ok {
        return Ok(());
    }
    Err(Error::config(
        "features/label",
        format!(
            "{} is a shard dataset with fixed columns (label `{}`, {} features); drop the column flags or convert again with the columns you want",
            dir.display(),
            manifest.label,
            manifest.feature_names.len()
        ),
    ))
}

impl Source for ShardSource {
    fn units(&self) -> &[Unit] {
        &self.units
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn files(&self) -> &[PathBuf] {
        &self.paths
    }

    fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    fn describe(&self) -> SourceInfo {
        let column = |name: &String, role| ColumnInfo {
            name: name.clone(),
            stored_type: "f32".to_string(),
            arrow_type: "Float32".to_string(),
            role,
            note: String::new(),
        };
        let mut columns: Vec<ColumnInfo> = self
            .schema
            .feature_names
            .iter()
            .map(|n| column(n, ColumnRole::Feature))
            .collect();
        columns.push(column(&self.schema.label, ColumnRole::Label));
        SourceInfo {
            format: "shards",
            unit_kind: "row range",
            columns,
            codecs: vec!["none".to_string()],
        }
    }

    fn read_rows(
        &self,
        unit: usize,
        offsets: &[u64],
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<u64> {
        let u = self.units[unit];
        let file = &self.files[u.file];
        let h = &file.header;
        let d = h.num_features as usize;
        let first = self.unit_offsets[unit];
        let mut features = Vec::with_capacity(d);
        for piece in offsets.chunks(max_block_rows.max(1)) {
            let mut block = sink.empty_block();
            block.reset(d);
            for &offset in piece {
                assert!(offset < u.num_rows, "row {offset} outside unit {unit}");
                let row = first + offset;
                if self.verify_checksums {
                    self.verify(file, row..row + 1)?;
                }
                let at = row_bytes(h, &(row..row + 1));
                let (values, _) = file.map[at].as_chunks::<4>();
                features.clear();
                features.extend(values[..d].iter().map(|v| f32::from_le_bytes(*v)));
                block.push_row(
                    &features,
                    f32::from_le_bytes(values[d]),
                    u.first_row_id + offset,
                );
            }
            if sink.send(block).is_break() {
                break;
            }
        }
        // Release every page this touched (rows and the blocks their checks read).
        let blocks = block_span(h, &(first..first + u.num_rows));
        let block_rows = u64::from(h.block_rows);
        let touched = row_bytes(
            h,
            &(blocks.start * block_rows..(blocks.end * block_rows).min(h.num_rows)),
        );
        // SAFETY: as in `read_unit`: DONTNEED on a read-only file map drops only this
        // process's copies of the pages.
        let _ = unsafe {
            file.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, touched.start, touched.len())
        };
        Ok(offsets.len() as u64)
    }

    fn read_unit(
        &self,
        unit: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        let u = self.units[unit];
        let file = &self.files[u.file];
        let h = &file.header;
        let first = self.unit_offsets[unit];
        let rows = first..first + u.num_rows;
        let stride = h.row_stride() as usize;
        let d = h.num_features as usize;
        let byte_range = row_bytes(h, &rows);
        let _ = file
            .map
            .advise_range(Advice::WillNeed, byte_range.start, byte_range.len());
        // Checking a block reads all of it, also rows of neighbouring units; those pages are
        // released with this unit's.
        let mut touched = byte_range.clone();
        if self.verify_checksums {
            self.verify(file, rows.clone())?;
            let blocks = block_span(h, &rows);
            let block_rows = u64::from(h.block_rows);
            touched = row_bytes(
                h,
                &(blocks.start * block_rows..(blocks.end * block_rows).min(h.num_rows)),
            );
        }
        let bytes = &file.map[byte_range.clone()];
        let mut done = 0usize;
        let total = u.num_rows as usize;
        let mut flow = std::ops::ControlFlow::Continue(());
        while done < total && flow.is_continue() {
            let n = (total - done).min(max_block_rows.max(1));
            let mut block = sink.empty_block();
            block.reset(d);
            let decode =
                tracing::trace_span!("decode", rows = n, bytes = n * 4 * (d + 1)).entered();
            let src = &bytes[done * stride..(done + n) * stride];
            block
                .append_with::<()>(n, u.first_row_id + done as u64, |x, y| {
                    for ((row, target), raw) in x
                        .chunks_exact_mut(d)
                        .zip(y.iter_mut())
                        .zip(src.chunks_exact(stride))
                    {
                        let (values, _) = raw.as_chunks::<4>();
                        for (dst, v) in row.iter_mut().zip(values) {
                            *dst = f32::from_le_bytes(*v);
                        }
                        *target = f32::from_le_bytes(values[d]);
                    }
                    Ok(())
                })
                .expect("the fill cannot fail");
            drop(decode);
            done += n;
            flow = sink.send(block);
        }
        // SAFETY: DONTNEED on a read-only file-backed map only drops this process's copies of
        // the pages (the page cache keeps them); later reads fault them back in unchanged.
        let _ = unsafe {
            file.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, touched.start, touched.len())
        };
        Ok(())
    }
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
