//! [`ShardSource`]: a shard dataset opened for reading through memory maps, with no decoding,
//! and [`ShardFormat`], its registration in [`FORMATS`](crate::data::source::FORMATS).
//!
//! Opening reads the manifest and validates each shard's header and metadata against it
//! (`header.rs`) before mapping the file (regular files only, watched for shrinking: see
//! [`MappedFile`]). A unit is a row range (one Parquet row group of the converted source), read
//! by copying its rows from the map into a [`RowBlock`](crate::data::RowBlock). Each block of
//! rows is checked against its checksum the first time any reader touches it (once per
//! process), and checked to hold only finite values (a NaN under a valid checksum is named by
//! shard, unit, row and column, as Parquet's are). The reader asks the kernel to read
//! a unit's pages ahead (`WILLNEED`) and drops them from this process's resident set after the
//! unit (`DONTNEED`), so resident memory stays bounded. A shard that shrinks while it is read
//! fails the unit with [`Error::Changed`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{Advice, UncheckedAdvice};

use crate::data::source::mapped_file::{MappedFile, open_regular};
use crate::data::source::shard::header::{Header, read_header};
use crate::data::source::shard::manifest::{
    MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, Preprocessing, check_spec,
    is_shard_dataset,
};
use crate::data::source::{
    ChunkSink, ColumnInfo, ColumnRole, OpenOptions, SkippedFiles, Source, SourceFormat, SourceInfo,
    Unit,
};
use crate::data::{ColumnSpec, Schema};
use crate::error::{Error, Result};

/// One opened shard file.
struct ShardFile {
    path: PathBuf,
    header: Header,
    map: MappedFile,
    /// Per checksum block: checked already (by any reader)?
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
    /// Units read through the maps or explicitly ([`Source::read_explicitly`]).
    access: crate::data::source::Access,
}

impl ShardSource {
    /// Opens the shard dataset in `dir`. `spec` must be the default (every feature, the
    /// converted label) or name exactly the shards' columns: shards have fixed columns (see
    /// `check_spec` for a spec with preprocessing).
    pub fn open(dir: &Path, spec: &ColumnSpec, verify_checksums: bool) -> Result<Self> {
        let manifest_path = dir.join(MANIFEST);
        let bad_manifest = |reason: String| Error::CorruptShard {
            file: manifest_path.clone(),
            block: None,
            reason,
        };
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut open_regular(&manifest_path)?, &mut text)
            .map_err(|e| Error::io(&manifest_path, e))?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| bad_manifest(format!("{e}")))?;
        if manifest.format != MANIFEST_FORMAT || !(1..=MANIFEST_VERSION).contains(&manifest.version)
        {
            return Err(bad_manifest(format!(
                "format {} version {}, this build reads {MANIFEST_FORMAT} versions 1 to {MANIFEST_VERSION}",
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
            let map = MappedFile::from_file(&path, file)?;
            if map.len() as u64 != header.file_len() {
                return Err(bad("the file changed size while it was opened".into()));
            }
            let _ = map.map().advise(Advice::Sequential);
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
            access: Default::default(),
        })
    }

    /// The dataset's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Checks every not yet checked block overlapping rows `rows` of file `file_index`: its
    /// checksum (when verifying) and that every value in it is finite. Once per block and
    /// process, so that warm epochs copy rows without looking at them. The blocks' bytes are
    /// read from `bytes`, which hold the file from offset `base` on (the map, or a unit's
    /// explicit read).
    fn check_blocks(
        &self,
        file_index: usize,
        rows: std::ops::Range<u64>,
        bytes: &[u8],
        base: usize,
    ) -> Result<()> {
        let file = &self.files[file_index];
        let h = &file.header;
        let block_rows = u64::from(h.block_rows);
        for block in block_span(h, &rows) {
            if file.verified[block as usize].load(Ordering::Acquire) {
                continue;
            }
            let first = block * block_rows;
            let last = (first + block_rows).min(h.num_rows);
            let start = (h.rows_offset() + first * h.row_stride()) as usize - base;
            let end = (h.rows_offset() + last * h.row_stride()) as usize - base;
            // One pass in cache-sized pieces: each piece is checksummed, then scanned while
            // it is still in cache.
            let (mut computed, mut exponents) = (0u32, 0u32);
            for piece in bytes[start..end].chunks(CHECK_PIECE_BYTES) {
                if self.verify_checksums {
                    computed = crc32c::crc32c_append(computed, piece);
                }
                exponents |= exponent_carries(piece);
            }
            if self.verify_checksums {
                let at = (h.checksums_offset() + 4 * block) as usize;
                let stored = u32::from_le_bytes(file.map[at..at + 4].try_into().expect("4 bytes"));
                if computed != stored {
                    return Err(Error::CorruptShard {
                        file: file.path.clone(),
                        block: Some(block),
                        reason: format!(
                            "rows {first}..{last} fail their checksum (stored {stored:#010x}, computed {computed:#010x})"
                        ),
                    });
                }
            }
            if exponents & (1 << 31) != 0 {
                let (words, _) = bytes[start..end].as_chunks::<4>();
                let found = words
                    .iter()
                    .position(|w| u32::from_le_bytes(*w) & EXPONENT == EXPONENT);
                // Gone only if the file changed since the scan, which the caller then reports.
                let Some(k) = found else {
                    return Err(Error::internal("a non-finite value went missing"));
                };
                let stride = h.num_features as usize + 1;
                return Err(self.non_finite(file_index, first + (k / stride) as u64, k % stride));
            }
            file.verified[block as usize].store(true, Ordering::Release);
        }
        Ok(())
    }

    /// The error for the NaN or infinity in row `row` of shard `file_index`, column `column`
    /// (the target after the features): named by the unit (the source's row group) holding
    /// the row, and the row inside it, as Parquet names it.
    fn non_finite(&self, file_index: usize, row: u64, column: usize) -> Error {
        let file = &self.files[file_index];
        let h = &file.header;
        let at = (h.rows_offset() + row * h.row_stride()) as usize + 4 * column;
        let value = f32::from_le_bytes(file.map[at..at + 4].try_into().expect("4 bytes"));
        let (row_group, row) = self
            .units
            .iter()
            .zip(&self.unit_offsets)
            .find(|&(u, &first)| u.file == file_index && (first..first + u.num_rows).contains(&row))
            .map_or((0, row), |(u, &first)| (u.index_in_file, row - first));
        Error::NonFinite {
            file: file.path.clone(),
            row_group,
            row,
            column: match self.schema.feature_names.get(column) {
                Some(name) => name.clone(),
                None => self.schema.label.clone(),
            },
            value: f64::from(value),
        }
    }
}

/// The exponent bits of an f32: all ones in a NaN or an infinity, and only there.
const EXPONENT: u32 = 0x7f80_0000;

/// Bytes checksummed and scanned at a time (in L1/L2 between the two).
const CHECK_PIECE_BYTES: usize = 32 << 10;

/// The exponent bits of the little-endian f32s in `bytes` plus 2^23 each, OR-ed: the top bit
/// is set when some exponent is all ones (a NaN or an infinity; a carry out of the exponent
/// happens only then). A branch-free pass, in AVX2 registers where the CPU has them.
fn exponent_carries(bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { exponent_carries_avx2(bytes) };
        }
    }
    exponent_carries_portable(bytes)
}

#[inline(always)]
fn exponent_carries_portable(bytes: &[u8]) -> u32 {
    let (words, _) = bytes.as_chunks::<4>();
    words.iter().fold(0u32, |any, w| {
        any | (u32::from_le_bytes(*w) & EXPONENT).wrapping_add(1 << 23)
    })
}

/// [`exponent_carries_portable`] compiled for AVX2 (eight words per instruction).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn exponent_carries_avx2(bytes: &[u8]) -> u32 {
    exponent_carries_portable(bytes)
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

    fn read_explicitly(&self, explicit: bool) {
        self.access.set(explicit);
    }

    fn stored_preprocessing(&self) -> Option<&Preprocessing> {
        let stored = &self.manifest.preprocessing;
        (!stored.is_empty()).then_some(stored)
    }

    fn unit_io_bytes(&self) -> u64 {
        // A unit's blocks as stored: mapped pages, or the buffer of its explicit read.
        self.units
            .iter()
            .zip(&self.unit_offsets)
            .map(|(u, &first)| {
                let h = &self.files[u.file].header;
                let blocks = block_span(h, &(first..first + u.num_rows));
                let block_rows = u64::from(h.block_rows);
                let rows = (blocks.end * block_rows).min(h.num_rows) - blocks.start * block_rows;
                rows * h.row_stride()
            })
            .max()
            .unwrap_or(0)
    }

    fn read_rows(
        &self,
        unit: usize,
        offsets: &[u64],
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<u64> {
        let file = &self.files[self.units[unit].file];
        file.map.read_watched(sink, |sink| {
            self.read_rows_unwatched(unit, offsets, max_block_rows, sink)
        })
    }

    fn read_unit(
        &self,
        unit: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        let file = &self.files[self.units[unit].file];
        file.map.read_watched(sink, |sink| {
            self.read_unit_unwatched(unit, max_block_rows, sink)
        })
    }
}

impl ShardSource {
    /// [`Source::read_rows`] without the check that the file did not change.
    fn read_rows_unwatched(
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
                self.check_blocks(u.file, row..row + 1, &file.map, 0)?;
                let at = row_bytes(h, &(row..row + 1));
                let (values, _) = file.map[at].as_chunks::<4>();
                features.clear();
                features.extend(values[..d].iter().map(|v| f32::from_le_bytes(*v)));
                let target = f32::from_le_bytes(values[d]);
                block.push_row(&features, target, u.first_row_id + offset);
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
            file.map.map().unchecked_advise_range(
                UncheckedAdvice::DontNeed,
                touched.start,
                touched.len(),
            )
        };
        Ok(offsets.len() as u64)
    }

    /// [`Source::read_unit`] without the check that the file did not change.
    fn read_unit_unwatched(
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
        let blocks = block_span(h, &rows);
        let block_rows = u64::from(h.block_rows);
        let touched = row_bytes(
            h,
            &(blocks.start * block_rows..(blocks.end * block_rows).min(h.num_rows)),
        );
        // Explicitly: the unit's blocks in one read (its checks read whole blocks, also rows
        // of neighbouring units), dropped from the page cache at once.
        let read;
        let (view, base): (&[u8], usize) = if self.access.explicit() {
            read = file.map.read_at(touched.start as u64, touched.len())?;
            (&read, touched.start)
        } else {
            let _ =
                file.map
                    .map()
                    .advise_range(Advice::WillNeed, byte_range.start, byte_range.len());
            (&file.map, 0)
        };
        // Checking a block (on first touch) reads all of it, also rows of neighbouring units;
        // those pages are released with this unit's.
        self.check_blocks(u.file, rows.clone(), view, base)?;
        let bytes = &view[byte_range.start - base..byte_range.end - base];
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
            file.map.map().unchecked_advise_range(
                UncheckedAdvice::DontNeed,
                touched.start,
                touched.len(),
            )
        };
        Ok(())
    }
}

/// A shard dataset directory (one with a manifest), which must be given alone.
pub struct ShardFormat;

impl SourceFormat for ShardFormat {
    fn name(&self) -> &'static str {
        "shards"
    }

    fn claims(&self, paths: &[PathBuf]) -> bool {
        paths.iter().any(|p| is_shard_dataset(p))
    }

    fn open(
        &self,
        paths: &[PathBuf],
        options: &OpenOptions,
    ) -> Result<(Arc<dyn Source>, SkippedFiles)> {
        let [dir] = paths else {
            let reason = match paths.iter().find(|p| is_shard_dataset(p)) {
                Some(dir) => format!(
                    "{} is a shard dataset; give it alone, not with other paths",
                    dir.display()
                ),
                None => "give one shard dataset directory".to_string(),
            };
            return Err(Error::config("data", reason));
        };
        if options.columns.filter.is_some() {
            return Err(Error::config(
                "filter",
                format!(
                    "{} is a shard dataset, which has no partition directories to filter by",
                    dir.display()
                ),
            ));
        }
        let source = ShardSource::open(dir, &options.columns, options.verify_checksums)?;
        Ok((Arc::new(source), Vec::new()))
    }
}
