//! Parquet files read through a memory map, one row group per unit.
//!
//! Each file is mapped once and its footer parsed once at open. A unit (row group) whose used
//! columns are all flat, PLAIN-encoded float32 columns is read page by page straight into rows
//! (`pages.rs`: one copy fewer than the arrow reader). Any other unit is decoded by the arrow
//! reader with a projection mask so only the feature and label columns are read, in record
//! batches of at most `max_block_rows` rows, so a huge row group is never materialised whole.
//! Each batch is checked (nulls, non-finite values, list lengths) and transposed into a
//! row-major [`RowBlock`]. Float64, integer and boolean columns are cast to f32. After a unit is read its
//! byte range is released from this process's resident set (`MADV_DONTNEED`; the page cache
//! keeps it), so mapped files do not grow the resident memory with the dataset.
//!
//! This module is the only one that touches the arrow/parquet readers.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use memmap2::{Mmap, UncheckedAdvice};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::file::metadata::{ParquetMetaDataReader, ParquetStatisticsPolicy};

use crate::data::RowBlock;
use crate::data::schema::{ColumnSpec, FeatureSelection, Schema};
use crate::data::source::pages;
use crate::data::source::{ChunkSink, ColumnInfo, ColumnRole, Source, SourceInfo, Unit};
use crate::data::stats::StatsAccumulator;
use crate::data::transpose::transpose8;
use crate::error::{Error, Result};

/// Files left out of a dataset, each with the error that made it unreadable.
pub type SkippedFiles = Vec<(PathBuf, String)>;

/// A dataset of one or more Parquet files with one schema.
pub struct ParquetSource {
    paths: Vec<PathBuf>,
    files: Vec<ParquetFile>,
    schema: Schema,
    /// The used columns of the first file (every file agrees) with their Arrow types.
    used: UsedColumns,
    units: Vec<Unit>,
    file_bytes: u64,
}

/// One opened file: its map, parsed footer and where the used columns sit.
struct ParquetFile {
    map: Arc<Mmap>,
    bytes: Bytes,
    metadata: ArrowReaderMetadata,
    mask: ProjectionMask,
    layout: Layout,
    /// The used columns' leaves (features, then the label when read) when every one is a flat
    /// float32 column: row groups without dictionaries are then read page by page
    /// ([`pages`]).
    flat: Option<Vec<usize>>,
}

/// Where the used columns are in a projected record batch (positions, not names).
///
/// `label` is `None` only when the spec ignores the label (`predict`); the targets are then
/// zero.
#[derive(Debug, Clone)]
enum Layout {
    Scalars {
        features: Vec<usize>,
        label: Option<usize>,
    },
    List {
        column: usize,
        len: usize,
        label: Option<usize>,
    },
}

/// Owner that lets `Bytes` borrow a shared memory map.
struct MapOwner(Arc<Mmap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl ParquetSource {
    /// Opens files and/or directories of `.parquet` files (sorted by name) with one schema,
    /// resolving the feature and label columns of `spec`.
    ///
    /// Every footer is parsed here, once; a file that is not Parquet, a schema that differs
    /// between files, a missing or unsupported column, or a dataset without rows is an error.
    pub fn open(paths: &[PathBuf], spec: &ColumnSpec) -> Result<Self> {
        Ok(Self::open_skipping(paths, spec, false)?.0)
    }

    /// Like [`ParquetSource::open`], but with `skip_unreadable` a file that cannot be opened
    /// (missing, not Parquet, a corrupt footer, encrypted) is left out instead of failing the
    /// whole dataset; the skipped files come back with their errors. A file whose footer
    /// reads but whose pages are damaged is found only while reading, and still fails the run.
    pub fn open_skipping(
        paths: &[PathBuf],
        spec: &ColumnSpec,
        skip_unreadable: bool,
    ) -> Result<(Self, SkippedFiles)> {
        let mut skipped = Vec::new();
        let mut paths = expand_paths(paths)?;
        let mut opened = Vec::with_capacity(paths.len());
        for path in &paths {
            match open_file(path) {
                Ok(file) => opened.push(file),
                Err(e) if skip_unreadable => skipped.push((path.clone(), e.to_string())),
                Err(e) => return Err(e),
            }
        }
        paths.retain(|p| !skipped.iter().any(|(s, _)| s == p));
        let mut files = Vec::with_capacity(paths.len());
        let mut units = Vec::new();
        // The first file's resolved schema and used columns; every other file must match them.
        let mut schema: Option<(Schema, UsedColumns)> = None;
        let mut next_row_id = 0u64;
        let mut file_bytes = 0u64;
        for (file_index, (path, (map, bytes, metadata))) in paths.iter().zip(opened).enumerate() {
            file_bytes += map.len() as u64;
            let arrow_schema = metadata.schema().clone();
            let (resolved, roots) = resolve_columns(path, &arrow_schema, spec)?;
            let mask = ProjectionMask::roots(metadata.parquet_schema(), roots.iter().copied());
            let flat = match resolved.layout {
                Layout::Scalars { .. } => pages::flat_leaves(metadata.parquet_schema(), &roots),
                Layout::List { .. } => None,
            };
            let mut file = ParquetFile {
                map,
                bytes,
                metadata,
                mask,
                layout: resolved.layout,
                flat,
            };
            if let Layout::List { len: 0, .. } = file.layout {
                file.layout = probe_list_length(path, &file)?;
            }
            let names = match (&file.layout, &resolved.feature_names) {
                (Layout::List { len, .. }, FeatureNames::List(column)) => {
                    (0..*len).map(|i| format!("{column}[{i}]")).collect()
                }
                (_, FeatureNames::Scalars(names)) => names.clone(),
                (_, FeatureNames::List(_)) => unreachable!("list layout pairs with list names"),
            };
            let file_schema = Schema {
                feature_names: names,
                label: spec.label.clone(),
            };
            let used = UsedColumns::new(&arrow_schema, &roots, file_schema.num_features());
            match &schema {
                None => schema = Some((file_schema, used)),
                Some((first, first_used)) if *first != file_schema || *first_used != used => {
                    return Err(Error::SchemaMismatch {
                        first: paths[0].clone(),
                        first_schema: first_used.to_string(),
                        other: path.clone(),
                        other_schema: used.to_string(),
                    });
                }
                Some(_) => {}
            }
            for (rg, meta) in file.metadata.metadata().row_groups().iter().enumerate() {
                let num_rows = u64::try_from(meta.num_rows()).map_err(|_| Error::Corrupt {
                    file: path.clone(),
                    row_group: Some(rg),
                    reason: format!("negative row count {}", meta.num_rows()),
                })?;
                if num_rows == 0 {
                    continue;
                }
                units.push(Unit {
                    file: file_index,
                    index_in_file: rg,
                    num_rows,
                    first_row_id: next_row_id,
                });
                next_row_id += num_rows;
            }
            files.push(file);
        }
        let Some((schema, used)) = schema else {
            return Err(Error::EmptyDataset {
                what: "no input files".to_string(),
            });
        };
        if next_row_id == 0 {
            return Err(Error::EmptyDataset {
                what: format!("{} file(s) hold no rows", paths.len()),
            });
        }
        let source = ParquetSource {
            paths,
            files,
            schema,
            used,
            units,
            file_bytes,
        };
        Ok((source, skipped))
    }

    /// The used columns and their Arrow types, e.g. `columns [f0: Float32, label: Float32]
    /// (1 features)`.
    pub fn describe_columns(&self) -> String {
        self.used.to_string()
    }

    /// Statistics of one unit's used columns that count nulls and non-finite values instead
    /// of stopping at them (for `inspect --stats`). Returns the accumulators and the first
    /// null or non-finite value found, as the error training would stop with. A list feature
    /// column is read strictly: a null, NaN or wrong length in it is returned as `Err`.
    pub fn unit_stats(
        &self,
        unit_index: usize,
        max_block_rows: usize,
    ) -> Result<(StatsAccumulator, Option<Error>)> {
        let unit = self.units[unit_index];
        let file = &self.files[unit.file];
        let d = self.schema.num_features();
        let mut acc = StatsAccumulator::new(d);
        let mut problem: Option<Error> = None;
        if let Layout::List { .. } = file.layout {
            let mut sink = StatsSink {
                acc: &mut acc,
                scratch: RowBlock::default(),
            };
            self.read_unit(unit_index, max_block_rows, &mut sink)?;
            return Ok((acc, None));
        }
        let Layout::Scalars {
            features: cols,
            label,
        } = &file.layout
        else {
            unreachable!("list layouts returned above")
        };
        let reader = self.unit_reader(&unit, 0, max_block_rows)?;
        let ctx = DecodeContext {
            path: &self.paths[unit.file],
            row_group: unit.index_in_file,
            schema: &self.schema,
        };
        let mut rows_read = 0u64;
        let mut values = Vec::with_capacity(max_block_rows);
        for batch in reader {
            let batch = batch.map_err(|e| self.corrupt(&unit, e))?;
            let columns = cols
                .iter()
                .zip(&self.schema.feature_names)
                .zip(acc.features.iter_mut())
                .chain(
                    label
                        .as_ref()
                        .map(|label| ((label, &self.schema.label), &mut acc.label)),
                );
            for ((&c, name), moments) in columns {
                let array = batch.column(c);
                let typed =
                    Values::of(array.as_ref()).ok_or_else(|| ctx.unsupported(array, name))?;
                values.clear();
                for i in 0..array.len() {
                    if array.is_valid(i) {
                        let v = typed.get(i);
                        if !v.is_finite() && problem.is_none() {
                            problem = Some(Error::NonFinite {
                                file: ctx.path.to_path_buf(),
                                row_group: ctx.row_group,
                                row: rows_read + i as u64,
                                column: name.clone(),
                                value: f64::from(v),
                            });
                        }
                        values.push(f64::from(v));
                    } else if problem.is_none() {
                        problem = Some(Error::Null {
                            file: ctx.path.to_path_buf(),
                            row_group: ctx.row_group,
                            row: rows_read + i as u64,
                            column: name.clone(),
                        });
                    }
                }
                moments.add(values.iter().copied());
                moments.add_nulls(array.null_count() as u64);
            }
            rows_read += batch.num_rows() as u64;
            acc.rows += batch.num_rows() as u64;
        }
        if rows_read != unit.num_rows {
            return Err(self.row_count_mismatch(&unit, rows_read));
        }
        self.release(&unit);
        Ok((acc, problem))
    }

    /// A reader over one unit's used columns from row `from_row` of the unit on, in batches of
    /// at most `max_block_rows` rows.
    fn unit_reader(
        &self,
        unit: &Unit,
        from_row: u64,
        max_block_rows: usize,
    ) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
        let file = &self.files[unit.file];
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            file.bytes.clone(),
            file.metadata.clone(),
        )
        .with_projection(file.mask.clone())
        .with_row_groups(vec![unit.index_in_file])
        .with_batch_size(max_block_rows.max(1));
        if from_row > 0 {
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(from_row as usize),
                RowSelector::select((unit.num_rows - from_row) as usize),
            ]));
        }
        builder.build().map_err(|e| self.corrupt(unit, e))
    }

    /// Reads a unit of flat float32 columns page by page (see [`pages`]). Returns `None` when
    /// the unit was read (or the sink stopped), or the row to continue from with the arrow
    /// reader when a page is one this path does not decode.
    fn read_unit_pages(
        &self,
        unit: &Unit,
        leaves: &[usize],
        ctx: &DecodeContext<'_>,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<Option<u64>> {
        let file = &self.files[unit.file];
        let row_group = file.metadata.metadata().row_group(unit.index_in_file);
        let d = self.schema.num_features();
        let has_label = leaves.len() > d;
        let column_name = |column: usize| match self.schema.feature_names.get(column) {
            Some(name) => name.clone(),
            None => self.schema.label.clone(),
        };
        let stop = |stop: pages::Stop| match stop {
            pages::Stop::Corrupt { column, reason } => match column {
                Some(c) => self.corrupt(unit, format!("column `{}`: {reason}", column_name(c))),
                None => self.corrupt(unit, reason),
            },
            pages::Stop::Null { column, row, .. } => Error::Null {
                file: self.paths[unit.file].clone(),
                row_group: unit.index_in_file,
                row,
                column: column_name(column),
            },
            pages::Stop::RowCount { found } => self.row_count_mismatch(unit, found),
            pages::Stop::Unsupported => Error::internal("unsupported page"),
        };
        let mut reader = pages::FlatReader::new(&file.bytes, row_group, leaves).map_err(stop)?;
        while reader.rows_done() < unit.num_rows {
            let first = reader.rows_done();
            let n = (unit.num_rows - first).min(max_block_rows.max(1) as u64) as usize;
            let mut block = sink.empty_block();
            block.reset(d);
            let mut bad = false;
            let filled = {
                let _span =
                    tracing::trace_span!("decode", rows = n, bytes = n * 4 * (d + 1)).entered();
                block.append_with(n, unit.first_row_id + first, |x, y| {
                    if !has_label {
                        y.fill(0.0);
                    }
                    bad = reader.fill(n, x, y, has_label)?;
                    Ok(())
                })
            };
            // A NaN before a null is reported first (both are in the rows filled).
            let rows_ok = match &filled {
                Ok(()) if !bad => 0,
                Ok(()) => n,
                Err(pages::Stop::Null { filled, .. }) => *filled,
                Err(pages::Stop::Unsupported) => return Ok(Some(first)),
                Err(_) => 0,
            };
            if rows_ok > 0 {
                ctx.check_finite(&block.targets()[..rows_ok], 1, first, |_| {
                    self.schema.label.clone()
                })?;
                ctx.check_finite(&block.features()[..rows_ok * d], d, first, |j| {
                    self.schema.feature_names[j].clone()
                })?;
            }
            filled.map_err(stop)?;
            if sink.send(block).is_break() {
                return Ok(None);
            }
        }
        reader.finish().map_err(stop)?;
        self.release(unit);
        Ok(None)
    }

    /// Reads a unit from row `from_row` on with the arrow reader (the whole unit, or the rest
    /// of one the page path could not finish).
    fn read_unit_arrow(
        &self,
        unit: &Unit,
        from_row: u64,
        ctx: &DecodeContext<'_>,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        let unit = *unit;
        let file = &self.files[unit.file];
        let mut rows_read = from_row;
        let reader = self.unit_reader(&unit, rows_read, max_block_rows)?;
        let d = self.schema.num_features();
        for batch in reader {
            let batch = batch.map_err(|e| self.corrupt(&unit, e))?;
            let n = batch.num_rows();
            if rows_read + n as u64 > unit.num_rows {
                return Err(self.row_count_mismatch(&unit, rows_read + n as u64));
            }
            let mut block = sink.empty_block();
            block.reset(d);
            {
                let _span =
                    tracing::trace_span!("decode", rows = n, bytes = n * 4 * (d + 1)).entered();
                block.append_with(n, unit.first_row_id + rows_read, |x, y| {
                    ctx.decode(&file.layout, &batch, rows_read, x, y)
                })?;
            }
            rows_read += n as u64;
            if sink.send(block).is_break() {
                return Ok(());
            }
        }
        if rows_read != unit.num_rows {
            return Err(self.row_count_mismatch(&unit, rows_read));
        }
        self.release(&unit);
        Ok(())
    }

    /// The error for a unit whose pages held `found` rows instead of its footer's count.
    fn row_count_mismatch(&self, unit: &Unit, found: u64) -> Error {
        Error::RowCountMismatch {
            file: self.paths[unit.file].clone(),
            row_group: unit.index_in_file,
            expected: unit.num_rows,
            found,
        }
    }

    fn corrupt(&self, unit: &Unit, reason: impl ToString) -> Error {
        Error::Corrupt {
            file: self.paths[unit.file].clone(),
            row_group: Some(unit.index_in_file),
            reason: reason.to_string(),
        }
    }

    /// Releases a row group's pages from this process's resident set.
    fn release(&self, unit: &Unit) {
        let file = &self.files[unit.file];
        let row_group = file.metadata.metadata().row_group(unit.index_in_file);
        let (mut start, mut end) = (u64::MAX, 0u64);
        for column in row_group.columns() {
            let (offset, len) = column.byte_range();
            start = start.min(offset);
            end = end.max(offset.saturating_add(len));
        }
        let map_len = file.map.len() as u64;
        let end = end.min(map_len);
        if start < end {
            // SAFETY: the map is a read-only, shared file mapping; MADV_DONTNEED only drops
            // this process's page-table entries and later reads fault the same bytes back in
            // from the page cache, so no memory that Rust can observe changes.
            let _ = unsafe {
                file.map.unchecked_advise_range(
                    UncheckedAdvice::DontNeed,
                    start as usize,
                    (end - start) as usize,
                )
            };
        }
    }
}

impl Source for ParquetSource {
    fn units(&self) -> &[Unit] {
        &self.units
    }

    fn describe(&self) -> SourceInfo {
        let file = &self.files[0];
        let arrow = file.metadata.schema();
        let parquet_fields = file.metadata.parquet_schema().root_schema().get_fields();
        let list_column = match &file.layout {
            Layout::List { .. } => self
                .schema
                .feature_names
                .first()
                .map(|first| first.strip_suffix("[0]").unwrap_or(first).to_string()),
            Layout::Scalars { .. } => None,
        };
        let columns = arrow
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let name = field.name();
                let data_type = field.data_type();
                let role = if *name == self.schema.label {
                    ColumnRole::Label
                } else if list_column.as_ref() == Some(name)
                    || (list_column.is_none() && self.schema.feature_names.contains(name))
                {
                    ColumnRole::Feature
                } else {
                    ColumnRole::Unused
                };
                let note = match role {
                    _ if role != ColumnRole::Unused => match data_type {
                        DataType::Float32 => String::new(),
                        DataType::FixedSizeList(..)
                        | DataType::List(_)
                        | DataType::LargeList(_) => {
                            format!("{} features", self.schema.num_features())
                        }
                        other => format!("cast {other} → f32"),
                    },
                    _ if is_scalar_number(data_type) => "not selected".to_string(),
                    _ => "not a numeric column".to_string(),
                };
                let stored_type = parquet_fields
                    .get(i)
                    .map(|t| {
                        if !t.is_primitive() {
                            return "group".to_string();
                        }
                        let info = t.get_basic_info();
                        match info.logical_type_ref() {
                            Some(logical) => format!("{} ({logical:?})", t.get_physical_type()),
                            None => t.get_physical_type().to_string(),
                        }
                    })
                    .unwrap_or_default();
                ColumnInfo {
                    name: name.clone(),
                    stored_type,
                    arrow_type: data_type.to_string(),
                    role,
                    note,
                }
            })
            .collect();
        let mut codecs: Vec<String> = Vec::new();
        for f in &self.files {
            for rg in f.metadata.metadata().row_groups() {
                for column in rg.columns() {
                    let codec = format!("{:?}", column.compression()).to_lowercase();
                    if !codecs.contains(&codec) {
                        codecs.push(codec);
                    }
                }
            }
        }
        SourceInfo {
            format: "parquet",
            unit_kind: "row group",
            columns,
            codecs,
        }
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

    fn read_unit(
        &self,
        unit_index: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        let unit = self.units[unit_index];
        let file = &self.files[unit.file];
        let ctx = DecodeContext {
            path: &self.paths[unit.file],
            row_group: unit.index_in_file,
            schema: &self.schema,
        };
        let mut from_row = 0u64;
        if let Some(leaves) = &file.flat {
            let row_group = file.metadata.metadata().row_group(unit.index_in_file);
            if pages::plain_row_group(row_group, leaves) {
                match self.read_unit_pages(&unit, leaves, &ctx, max_block_rows, sink)? {
                    None => return Ok(()),
                    Some(row) => from_row = row,
                }
            }
        }
        self.read_unit_arrow(&unit, from_row, &ctx, max_block_rows, sink)
    }
}

/// Lists the Parquet files named by `paths`: files as given, directories expanded to their
/// `.parquet`/`.parq` files sorted by name (hidden and `_`-prefixed names skipped).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_dir() {
            out.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_parquet_name(p))
            .collect();
        if found.is_empty() {
            return Err(Error::EmptyDataset {
                what: format!("no .parquet files in {}", path.display()),
            });
        }
        found.sort();
        out.extend(found);
    }
    if out.is_empty() {
        return Err(Error::EmptyDataset {
            what: "no input files".to_string(),
        });
    }
    Ok(out)
}

fn is_parquet_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.')
        && !name.starts_with('_')
        && (name.ends_with(".parquet") || name.ends_with(".parq"))
}

/// Maps a file and parses its footer.
fn open_file(path: &Path) -> Result<(Arc<Mmap>, Bytes, ArrowReaderMetadata)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let corrupt = |reason: String| Error::Corrupt {
        file: path.to_path_buf(),
        row_group: None,
        reason,
    };
    if len < 12 {
        return Err(corrupt(format!(
            "file is {len} bytes, too small to be a parquet file"
        )));
    }
    // SAFETY: the map is read-only. streamfit never writes its input files; a file truncated
    // by another process while mapped is outside what any reader can defend against.
    let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?);
    let bytes = Bytes::from_owner(MapOwner(map.clone()));
    // Training never uses column statistics: do not decode them.
    let options = ArrowReaderOptions::new()
        .with_encoding_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_column_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_size_stats_policy(ParquetStatisticsPolicy::SkipAll);
    let encrypted = |detail: String| Error::Encrypted {
        file: path.to_path_buf(),
        detail,
    };
    if map.ends_with(b"PARE") {
        return Err(encrypted("its footer is encrypted".to_string()));
    }
    let metadata = match ArrowReaderMetadata::load(&bytes, options.clone()) {
        // Offset 0 is the magic, never a page: read such a footer without those offsets.
        Ok(metadata) if has_zero_dictionary_offset(&metadata) => {
            repaired_metadata(path, &map, options).unwrap_or(metadata)
        }
        Ok(metadata) => metadata,
        Err(e) => {
            let reason = e.to_string();
            if reason.contains("encrypted") {
                return Err(encrypted(reason));
            }
            repaired_metadata(path, &map, options).ok_or_else(|| corrupt(reason))?
        }
    };
    // A plaintext footer can still describe encrypted column chunks: never decode those.
    let encrypted_column = metadata
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .find(|c| c.crypto_metadata().is_some());
    if let Some(column) = encrypted_column {
        return Err(encrypted(format!(
            "column `{}` is encrypted; only the footer is plaintext",
            column.column_path().string()
        )));
    }
    Ok((map, bytes, metadata))
}

/// The columns training reads from a file, with their types, and the feature count: what two
/// files of one dataset must agree on (other columns may differ).
#[derive(Debug, PartialEq)]
struct UsedColumns {
    columns: Vec<(String, DataType)>,
    num_features: usize,
}

impl UsedColumns {
    fn new(schema: &SchemaRef, roots: &[usize], num_features: usize) -> Self {
        UsedColumns {
            columns: roots
                .iter()
                .map(|&r| {
                    (
                        schema.field(r).name().clone(),
                        schema.field(r).data_type().clone(),
                    )
                })
                .collect(),
            num_features,
        }
    }
}

impl std::fmt::Display for UsedColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|(name, data_type)| format!("{name}: {data_type}"))
            .collect();
        write!(
            f,
            "columns [{}] ({} features)",
            cols.join(", "),
            self.num_features
        )
    }
}

fn is_scalar_number(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Float32
            | DataType::Float64
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Boolean
    )
}

enum FeatureNames {
    Scalars(Vec<String>),
    List(String),
}

struct Resolved {
    feature_names: FeatureNames,
    layout: Layout,
}

/// Finds the used columns in a file's schema; returns the resolution and the root indices to
/// project. A list layout's length is 0 when the schema does not fix it (a variable `List`).
fn resolve_columns(
    path: &Path,
    schema: &SchemaRef,
    spec: &ColumnSpec,
) -> Result<(Resolved, Vec<usize>)> {
    let available = || {
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |name: &str| {
        schema.index_of(name).map_err(|_| Error::MissingColumn {
            file: path.to_path_buf(),
            column: name.to_string(),
            available: available(),
        })
    };
    let unsupported = |index: usize, list_expected: bool| {
        let field = schema.field(index);
        Error::UnsupportedType {
            file: path.to_path_buf(),
            column: field.name().clone(),
            data_type: field.data_type().to_string(),
            list_expected,
        }
    };
    // An ignored label is never read, but still never a feature.
    let found_label = schema.index_of(&spec.label).ok();
    let label = if spec.ignore_label {
        None
    } else {
        let label = find(&spec.label)?;
        if !is_scalar_number(schema.field(label).data_type()) {
            return Err(unsupported(label, false));
        }
        Some(label)
    };
    let reject_label = |name: &str| {
        if name == spec.label {
            Err(Error::config(
                "features",
                format!("the label column `{name}` cannot also be a feature"),
            ))
        } else {
            Ok(())
        }
    };
    match &spec.features {
        FeatureSelection::AllNumeric | FeatureSelection::Columns(_) => {
            let feature_roots: Vec<usize> = match &spec.features {
                FeatureSelection::Columns(names) => {
                    let mut roots = Vec::with_capacity(names.len());
                    for name in names {
                        reject_label(name)?;
                        let index = find(name)?;
                        if !is_scalar_number(schema.field(index).data_type()) {
                            return Err(unsupported(index, false));
                        }
                        roots.push(index);
                    }
                    roots
                }
                _ => (0..schema.fields().len())
                    .filter(|&i| {
                        Some(i) != found_label && is_scalar_number(schema.field(i).data_type())
                    })
                    .collect(),
            };
            // No feature column is a valid source (inspect, a label-only file); training
            // rejects it (`TrainConfig::open_source`).
            let mut roots = feature_roots.clone();
            roots.extend(label);
            let position = projected_positions(&roots);
            let names = feature_roots
                .iter()
                .map(|&i| schema.field(i).name().clone())
                .collect();
            let layout = Layout::Scalars {
                features: feature_roots.iter().map(|r| position(*r)).collect(),
                label: label.map(&position),
            };
            Ok((
                Resolved {
                    feature_names: FeatureNames::Scalars(names),
                    layout,
                },
                roots,
            ))
        }
        FeatureSelection::ListColumn(name) => {
            reject_label(name)?;
            let index = find(name)?;
            let len = match schema.field(index).data_type() {
                DataType::FixedSizeList(item, len) if is_scalar_number(item.data_type()) => {
                    usize::try_from(*len).unwrap_or(0)
                }
                DataType::List(item) | DataType::LargeList(item)
                    if is_scalar_number(item.data_type()) =>
                {
                    0
                }
                _ => return Err(unsupported(index, true)),
            };
            let roots: Vec<usize> = std::iter::once(index).chain(label).collect();
            let position = projected_positions(&roots);
            Ok((
                Resolved {
                    feature_names: FeatureNames::List(name.clone()),
                    layout: Layout::List {
                        column: position(index),
                        len,
                        label: label.map(&position),
                    },
                },
                roots,
            ))
        }
    }
}

/// Columns passed through unchanged (`predict --keep`), read in file order alongside a
/// source's rows: each file's row groups in order, in record batches of at most 8,192 rows.
pub struct Passthrough {
    files: std::vec::IntoIter<(PathBuf, ArrowReaderMetadata, Bytes, ProjectionMask)>,
    reader: Option<(PathBuf, ParquetRecordBatchReader)>,
    pending: Option<RecordBatch>,
    schema: SchemaRef,
}

/// Rows of passed-through columns (opaque outside the data layer).
pub struct KeptRows(pub(crate) Vec<RecordBatch>);

/// The schema of passed-through columns (opaque outside the data layer).
pub struct KeptSchema(pub(crate) SchemaRef);

impl Passthrough {
    /// Reads `columns` (top-level, any type) of `files`, which must all have them with the
    /// same types.
    pub fn open(files: &[PathBuf], columns: &[String]) -> Result<Self> {
        let mut opened = Vec::with_capacity(files.len());
        let mut schema: Option<SchemaRef> = None;
        for path in files {
            let (_map, bytes, metadata) = open_file(path)?;
            let arrow = metadata.schema().clone();
            let mut roots = Vec::with_capacity(columns.len());
            for name in columns {
                let index = arrow.index_of(name).map_err(|_| Error::MissingColumn {
                    file: path.clone(),
                    column: name.clone(),
                    available: arrow
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
                roots.push(index);
            }
            let fields: Vec<_> = roots.iter().map(|&i| arrow.field(i).clone()).collect();
            let projected = Arc::new(arrow_schema::Schema::new(fields));
            match &schema {
                None => schema = Some(projected),
                Some(first) if first.fields() != projected.fields() => {
                    return Err(Error::SchemaMismatch {
                        first: files[0].clone(),
                        first_schema: format!("{:?}", first.fields()),
                        other: path.clone(),
                        other_schema: format!("{:?}", projected.fields()),
                    });
                }
                Some(_) => {}
            }
            let mask = ProjectionMask::roots(metadata.parquet_schema(), roots);
            opened.push((path.clone(), metadata, bytes, mask));
        }
        // Columns come back in schema order; the writer puts them in the order asked for.
        Ok(Passthrough {
            files: opened.into_iter(),
            reader: None,
            pending: None,
            schema: schema.unwrap_or_else(|| Arc::new(arrow_schema::Schema::empty())),
        })
    }

    /// The passed-through columns' names and types.
    pub fn schema(&self) -> KeptSchema {
        KeptSchema(self.schema.clone())
    }

    /// The next `n` rows, in file order. Fewer rows left than `n` is an error (the files
    /// changed, or a footer disagrees with its pages).
    pub fn take(&mut self, n: usize) -> Result<KeptRows> {
        let mut out = Vec::new();
        let mut need = n;
        while need > 0 {
            let batch = match self.pending.take() {
                Some(b) => b,
                None => self.next_batch()?,
            };
            if batch.num_rows() > need {
                out.push(batch.slice(0, need));
                self.pending = Some(batch.slice(need, batch.num_rows() - need));
                need = 0;
            } else {
                need -= batch.num_rows();
                out.push(batch);
            }
        }
        Ok(KeptRows(out))
    }

    fn next_batch(&mut self) -> Result<RecordBatch> {
        loop {
            if let Some((path, reader)) = &mut self.reader {
                match reader.next() {
                    Some(Ok(batch)) => {
                        // Keep the asked-for order (projection returns schema order).
                        let columns = self
                            .schema
                            .fields()
                            .iter()
                            .map(|f| {
                                batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                                    Error::internal(format!("kept column {} lost", f.name()))
                                })
                            })
                            .collect::<Result<Vec<_>>>()?;
                        return RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| {
                            Error::Corrupt {
                                file: path.clone(),
                                row_group: None,
                                reason: e.to_string(),
                            }
                        });
                    }
                    Some(Err(e)) => {
                        return Err(Error::Corrupt {
                            file: path.clone(),
                            row_group: None,
                            reason: e.to_string(),
                        });
                    }
                    None => self.reader = None,
                }
            }
            let Some((path, metadata, bytes, mask)) = self.files.next() else {
                return Err(Error::internal(
                    "the kept columns ran out before the rows did".to_string(),
                ));
            };
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata)
                .with_projection(mask)
                .with_batch_size(8192)
                .build()
                .map_err(|e| Error::Corrupt {
                    file: path.clone(),
                    row_group: None,
                    reason: e.to_string(),
                })?;
            self.reader = Some((path, reader));
        }
    }
}

/// True when a column chunk claims its dictionary page at offset 0.
fn has_zero_dictionary_offset(metadata: &ArrowReaderMetadata) -> bool {
    metadata
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .any(|c| c.dictionary_page_offset() == Some(0))
}

/// The metadata of a file whose footer a writer got wrong in optional column-metadata fields
/// (a field of the wrong type, a zero dictionary page offset; see `footer_repair`): decoded
/// from the footer without those fields. `None` when that does not help.
fn repaired_metadata(
    path: &Path,
    map: &Mmap,
    options: ArrowReaderOptions,
) -> Option<ArrowReaderMetadata> {
    let n = map.len();
    if n < 12 || &map[n - 4..] != b"PAR1" {
        return None;
    }
    let footer_len = u32::from_le_bytes(map[n - 8..n - 4].try_into().ok()?) as usize;
    let start = n.checked_sub(8)?.checked_sub(footer_len)?;
    let (fixed, dropped) = super::footer_repair::repair_footer(&map[start..n - 8])?;
    let metadata = ParquetMetaDataReader::decode_metadata(&fixed).ok()?;
    let metadata = ArrowReaderMetadata::try_new(Arc::new(metadata), options).ok()?;
    tracing::warn!(
        file = %path.display(),
        "the footer's column metadata has fields {dropped:?} of the wrong type or a zero dictionary page offset; read without them"
    );
    Some(metadata)
}

/// Position of each root column inside a batch projected to `roots` (schema order).
fn projected_positions(roots: &[usize]) -> impl Fn(usize) -> usize + use<> {
    let mut sorted = roots.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    move |root| sorted.binary_search(&root).expect("root is projected")
}

/// Reads the first row of a variable-length list column to learn the feature count.
fn probe_list_length(path: &Path, file: &ParquetFile) -> Result<Layout> {
    let Layout::List { column, label, .. } = file.layout else {
        unreachable!("probe only for list layouts")
    };
    let corrupt = |reason: String| Error::Corrupt {
        file: path.to_path_buf(),
        row_group: None,
        reason,
    };
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
        file.bytes.clone(),
        file.metadata.clone(),
    )
    .with_projection(file.mask.clone())
    .with_batch_size(1)
    .build()
    .map_err(|e| corrupt(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(e.to_string()))?;
        if batch.num_rows() == 0 {
            continue;
        }
        let array = batch.column(column);
        let len = match array.data_type() {
            DataType::List(_) => array.as_list::<i32>().value_length(0) as usize,
            DataType::LargeList(_) => array.as_list::<i64>().value_length(0) as usize,
            _ => 0,
        };
        if len == 0 {
            return Err(corrupt(
                "the first row of the feature list is empty".to_string(),
            ));
        }
        return Ok(Layout::List { column, len, label });
    }
    Err(corrupt(
        "no rows to learn the feature list length from".to_string(),
    ))
}

/// A column's values as a typed slice (offset already applied).
enum Values<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    Bool(&'a BooleanArray),
}

impl<'a> Values<'a> {
    fn of(array: &'a dyn Array) -> Option<Self> {
        Some(match array.data_type() {
            DataType::Float32 => Values::F32(array.as_primitive::<Float32Type>().values()),
            DataType::Float64 => Values::F64(array.as_primitive::<Float64Type>().values()),
            DataType::Int8 => Values::I8(array.as_primitive::<Int8Type>().values()),
            DataType::Int16 => Values::I16(array.as_primitive::<Int16Type>().values()),
            DataType::Int32 => Values::I32(array.as_primitive::<Int32Type>().values()),
            DataType::Int64 => Values::I64(array.as_primitive::<Int64Type>().values()),
            DataType::UInt8 => Values::U8(array.as_primitive::<UInt8Type>().values()),
            DataType::UInt16 => Values::U16(array.as_primitive::<UInt16Type>().values()),
            DataType::UInt32 => Values::U32(array.as_primitive::<UInt32Type>().values()),
            DataType::UInt64 => Values::U64(array.as_primitive::<UInt64Type>().values()),
            DataType::Boolean => Values::Bool(array.as_boolean()),
            _ => return None,
        })
    }

    /// Value `i` cast to f32, as training sees it.
    fn get(&self, i: usize) -> f32 {
        match self {
            Values::F32(s) => s[i],
            Values::F64(s) => s[i] as f32,
            Values::I8(s) => f32::from(s[i]),
            Values::I16(s) => f32::from(s[i]),
            Values::I32(s) => s[i] as f32,
            Values::I64(s) => s[i] as f32,
            Values::U8(s) => f32::from(s[i]),
            Values::U16(s) => f32::from(s[i]),
            Values::U32(s) => s[i] as f32,
            Values::U64(s) => s[i] as f32,
            Values::Bool(b) => f32::from(u8::from(b.value(i))),
        }
    }

    /// Writes values `rows` into `out[(i - rows.start) * stride + offset]`; returns true when
    /// any converted value is NaN or infinite (a float64 beyond the f32 range becomes one).
    fn scatter(
        &self,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
        stride: usize,
        offset: usize,
    ) -> bool {
        let mut bad = false;
        macro_rules! copy {
            ($slice:expr, $conv:expr) => {
                for (dst, v) in out.chunks_exact_mut(stride).zip(&$slice[rows]) {
                    let value: f32 = $conv(*v);
                    bad |= !value.is_finite();
                    dst[offset] = value;
                }
            };
        }
        match self {
            Values::F32(s) => copy!(s, |v: f32| v),
            Values::F64(s) => copy!(s, |v: f64| v as f32),
            Values::I8(s) => copy!(s, |v: i8| v as f32),
            Values::I16(s) => copy!(s, |v: i16| v as f32),
            Values::I32(s) => copy!(s, |v: i32| v as f32),
            Values::I64(s) => copy!(s, |v: i64| v as f32),
            Values::U8(s) => copy!(s, |v: u8| v as f32),
            Values::U16(s) => copy!(s, |v: u16| v as f32),
            Values::U32(s) => copy!(s, |v: u32| v as f32),
            Values::U64(s) => copy!(s, |v: u64| v as f32),
            Values::Bool(b) => {
                for (dst, i) in out.chunks_exact_mut(stride).zip(rows) {
                    dst[offset] = if b.value(i) { 1.0 } else { 0.0 };
                }
            }
        }
        bad
    }
}

/// Rows per tile of the column-to-row transpose: a tile of 64 features (64 KiB) stays in L2.
const TILE_ROWS: usize = 256;

/// The next eight columns, when all eight are float32.
fn f32_block<'a>(columns: &[Values<'a>]) -> Option<[&'a [f32]; 8]> {
    if columns.len() < 8 {
        return None;
    }
    let mut block: [&[f32]; 8] = [&[]; 8];
    for (slot, values) in block.iter_mut().zip(columns) {
        match values {
            Values::F32(s) => *slot = s,
            _ => return None,
        }
    }
    Some(block)
}

/// A sink that adds every block to statistics and hands the block back for reuse.
struct StatsSink<'a> {
    acc: &'a mut StatsAccumulator,
    scratch: RowBlock,
}

impl ChunkSink for StatsSink<'_> {
    fn empty_block(&mut self) -> RowBlock {
        std::mem::take(&mut self.scratch)
    }

    fn send(&mut self, block: RowBlock) -> std::ops::ControlFlow<()> {
        self.acc.add_rows(block.features(), block.targets());
        self.scratch = block;
        std::ops::ControlFlow::Continue(())
    }
}

/// What a decode error needs to name its place.
struct DecodeContext<'a> {
    path: &'a Path,
    row_group: usize,
    schema: &'a Schema,
}

impl DecodeContext<'_> {
    /// Decodes one record batch into row-major `features` and `targets` (already sized).
    /// `first_row` is the batch's first row within the row group, for error messages.
    fn decode(
        &self,
        layout: &Layout,
        batch: &RecordBatch,
        first_row: u64,
        features: &mut [f32],
        targets: &mut [f32],
    ) -> Result<()> {
        let n = batch.num_rows();
        let d = self.schema.num_features();
        let label_index = match layout {
            Layout::Scalars { label, .. } | Layout::List { label, .. } => *label,
        };
        match label_index {
            Some(index) => {
                let label = batch.column(index);
                self.check_nulls(label, &self.schema.label, first_row)?;
                let label_values = Values::of(label.as_ref())
                    .ok_or_else(|| self.unsupported(label, &self.schema.label))?;
                if label_values.scatter(0..n, targets, 1, 0) {
                    self.check_finite(targets, 1, first_row, |_| self.schema.label.clone())?;
                }
            }
            None => targets[..n].fill(0.0),
        }
        // Every conversion reports NaN/inf as it writes; only then is the slow search run.
        let mut any_bad = false;
        match layout {
            Layout::Scalars { features: cols, .. } => {
                let mut columns = Vec::with_capacity(cols.len());
                for (j, &c) in cols.iter().enumerate() {
                    let array = batch.column(c);
                    let name = &self.schema.feature_names[j];
                    self.check_nulls(array, name, first_row)?;
                    columns.push(
                        Values::of(array.as_ref()).ok_or_else(|| self.unsupported(array, name))?,
                    );
                }
                for start in (0..n).step_by(TILE_ROWS) {
                    let end = (start + TILE_ROWS).min(n);
                    let tile = &mut features[start * d..end * d];
                    let mut j = 0;
                    while j < columns.len() {
                        // Eight float32 columns at a time: one contiguous 32-byte write per row.
                        if let Some(block) = f32_block(&columns[j..]) {
                            any_bad |= transpose8(block, start..end, tile, d, j);
                            j += 8;
                        } else {
                            any_bad |= columns[j].scatter(start..end, tile, d, j);
                            j += 1;
                        }
                    }
                }
            }
            Layout::List { column, len, .. } => {
                any_bad = self.decode_list(batch.column(*column), *len, first_row, features)?;
            }
        }
        if any_bad {
            self.check_finite(features, d, first_row, |j| {
                self.schema.feature_names[j].clone()
            })?;
        }
        Ok(())
    }

    fn decode_list(
        &self,
        array: &ArrayRef,
        len: usize,
        first_row: u64,
        features: &mut [f32],
    ) -> Result<bool> {
        let n = array.len();
        let name = self.list_name();
        self.check_nulls(array, &name, first_row)?;
        let (values, start) = match array.data_type() {
            DataType::FixedSizeList(_, _) => (array.as_fixed_size_list().values().clone(), 0),
            DataType::List(_) => {
                let list = array.as_list::<i32>();
                let offsets = list.value_offsets();
                self.check_list_lengths(
                    offsets.windows(2).map(|w| (w[1] - w[0]) as usize),
                    len,
                    first_row,
                )?;
                (list.values().clone(), offsets[0] as usize)
            }
            DataType::LargeList(_) => {
                let list = array.as_list::<i64>();
                let offsets = list.value_offsets();
                self.check_list_lengths(
                    offsets.windows(2).map(|w| (w[1] - w[0]) as usize),
                    len,
                    first_row,
                )?;
                (list.values().clone(), offsets[0] as usize)
            }
            _ => return Err(self.unsupported(array, &name)),
        };
        let values = values.slice(start, n * len);
        if values.null_count() > 0 {
            let k = values
                .nulls()
                .and_then(|b| b.iter().position(|valid| !valid))
                .unwrap_or(0);
            return Err(Error::Null {
                file: self.path.to_path_buf(),
                row_group: self.row_group,
                row: first_row + (k / len) as u64,
                column: format!("{name}[{}]", k % len),
            });
        }
        let typed = Values::of(values.as_ref()).ok_or_else(|| self.unsupported(&values, &name))?;
        Ok(typed.scatter(0..n * len, features, 1, 0))
    }

    fn list_name(&self) -> String {
        let first = &self.schema.feature_names[0];
        first.strip_suffix("[0]").unwrap_or(first).to_string()
    }

    fn check_list_lengths(
        &self,
        lengths: impl Iterator<Item = usize>,
        expected: usize,
        first_row: u64,
    ) -> Result<()> {
        for (i, found) in lengths.enumerate() {
            if found != expected {
                return Err(Error::ListLength {
                    file: self.path.to_path_buf(),
                    row_group: self.row_group,
                    row: first_row + i as u64,
                    column: self.list_name(),
                    expected,
                    found,
                });
            }
        }
        Ok(())
    }

    fn check_nulls(&self, array: &ArrayRef, column: &str, first_row: u64) -> Result<()> {
        if array.null_count() == 0 {
            return Ok(());
        }
        let i = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
        Err(Error::Null {
            file: self.path.to_path_buf(),
            row_group: self.row_group,
            row: first_row + i as u64,
            column: column.to_string(),
        })
    }

    /// Finds the first NaN or infinity in a row-major slice of `stride` columns (the slow
    /// search, run once a conversion has reported one).
    fn check_finite(
        &self,
        values: &[f32],
        stride: usize,
        first_row: u64,
        column_name: impl Fn(usize) -> String,
    ) -> Result<()> {
        let Some(k) = values.iter().position(|v| !v.is_finite()) else {
            return Ok(());
        };
        Err(Error::NonFinite {
            file: self.path.to_path_buf(),
            row_group: self.row_group,
            row: first_row + (k / stride) as u64,
            column: column_name(k % stride),
            value: f64::from(values[k]),
        })
    }

    fn unsupported(&self, array: &dyn Array, column: &str) -> Error {
        Error::UnsupportedType {
            file: self.path.to_path_buf(),
            column: column.to_string(),
            data_type: array.data_type().to_string(),
            list_expected: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Float32Array;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::{WriterProperties, WriterVersion};

    use super::*;

    /// Ten float32 columns `f0..f8` and `label` (odd ones nullable, none null), 2,000 rows
    /// in row groups of 700.
    fn write(path: &Path, dictionary: bool) {
        let columns: Vec<(String, ArrayRef, bool)> = (0..10)
            .map(|c| {
                let name = if c == 9 {
                    "label".to_string()
                } else {
                    format!("f{c}")
                };
                let values =
                    Float32Array::from_iter_values((0..2_000).map(|r| (r * 10 + c) as f32));
                (name, Arc::new(values) as ArrayRef, c % 2 == 1)
            })
            .collect();
        let batch = RecordBatch::try_from_iter_with_nullable(columns).unwrap();
        let props = WriterProperties::builder()
            .set_dictionary_enabled(dictionary)
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_max_row_group_row_count(Some(700))
            .set_data_page_row_count_limit(128)
            .set_write_batch_size(32)
            .build();
        let mut writer =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn rows(blocks: &[RowBlock]) -> (Vec<u64>, Vec<f32>, Vec<f32>) {
        let mut out = (Vec::new(), Vec::new(), Vec::new());
        for b in blocks {
            out.0.extend_from_slice(b.row_ids());
            out.1.extend_from_slice(b.features());
            out.2.extend_from_slice(b.targets());
        }
        out
    }

    #[test]
    fn flat_float_row_groups_take_the_page_path_and_dictionaries_do_not() {
        let dir = tempfile::tempdir().unwrap();
        for dictionary in [false, true] {
            let path = dir.path().join(format!("d{dictionary}.parquet"));
            write(&path, dictionary);
            let source = ParquetSource::open(&[path], &ColumnSpec::default()).unwrap();
            let file = &source.files[0];
            let leaves = file.flat.as_ref().expect("flat float columns");
            assert_eq!(leaves, &(0..10).collect::<Vec<_>>());
            for row_group in file.metadata.metadata().row_groups() {
                assert_eq!(pages::plain_row_group(row_group, leaves), !dictionary);
            }
        }
    }

    /// The arrow reader started mid-unit (the page path's fallback) delivers exactly the rest
    /// of the unit, with the right ids, as the page path would have.
    #[test]
    fn the_arrow_reader_resumes_a_unit_at_any_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flat.parquet");
        write(&path, false);
        let source = ParquetSource::open(&[path], &ColumnSpec::default()).unwrap();
        let unit = source.units[1];
        let ctx = DecodeContext {
            path: &source.paths[0],
            row_group: unit.index_in_file,
            schema: &source.schema,
        };
        let mut whole: Vec<RowBlock> = Vec::new();
        source.read_unit(1, 64, &mut whole).unwrap();
        let (ids, features, targets) = rows(&whole);
        assert_eq!(ids.len(), 700);
        for from in [0usize, 1, 64, 300, 699] {
            let mut rest: Vec<RowBlock> = Vec::new();
            source
                .read_unit_arrow(&unit, from as u64, &ctx, 64, &mut rest)
                .unwrap();
            let (rest_ids, rest_features, rest_targets) = rows(&rest);
            assert_eq!(rest_ids, ids[from..], "from {from}");
            assert_eq!(rest_features, features[from * 9..], "from {from}");
            assert_eq!(rest_targets, targets[from..], "from {from}");
        }
    }
}
