//! [`ParquetSource`]: a dataset of Parquet files with one schema, and its [`Source`] impl.
//!
//! Opening lists the files, maps each and parses its footer once (`files.rs`), resolves the
//! used columns against the [`ColumnSpec`] (`columns.rs`), checks that every file agrees, and
//! lays out the units (one per non-empty row group) with their global row ids. Reading a unit
//! is `read.rs`'s job, `inspect`'s lenient statistics `stats.rs`'s. [`ParquetFormat`] registers
//! this source as the fallback of [`data::source::open`](crate::data::source::open).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::ProjectionMask;

use crate::data::schema::{ColumnSpec, Schema};
use crate::data::source::parquet::absent::AbsentColumns;
use crate::data::source::parquet::categories::dictionary_metadata;
use crate::data::source::parquet::columns::{
    FeatureNames, Layout, UsedColumns, codec_name, column_infos, resolve_columns,
};
use crate::data::source::parquet::files::{
    ParquetFile, count_null_labels, expand_paths, open_all, probe_list_length,
};
use crate::data::source::parquet::pages;
use crate::data::source::{
    ChunkSink, FileIdentity, OnBadFile, OpenOptions, SkippedFiles, Source, SourceFormat,
    SourceInfo, Unit,
};
use crate::error::{Error, Result};

/// A dataset of one or more Parquet files with one schema.
pub struct ParquetSource {
    pub(super) paths: Vec<PathBuf>,
    pub(super) files: Vec<ParquetFile>,
    pub(super) schema: Schema,
    /// The used columns of the first file (every file agrees) with their Arrow types.
    pub(super) used: UsedColumns,
    pub(super) units: Vec<Unit>,
    pub(super) file_bytes: u64,
    /// Read-ahead of the remote files' units (when there are any).
    #[cfg(feature = "remote")]
    pub(super) prefetch: Option<std::sync::Arc<crate::data::source::parquet::prefetch::Prefetch>>,
    /// The label value mapped to 1 (every other to 0), when the spec names one.
    pub(super) positive_label: Option<String>,
    /// Rows with a null label are left out (each unit's `num_rows` counts the rows kept).
    pub(super) drop_null_labels: bool,
    /// «weight_column»: each row's weight follows its features in the blocks read.
    pub(super) weight: Option<String>,
    /// Feature columns some files lack (read as null there), for `inspect`.
    pub(super) absent: AbsentColumns,
    /// Local units read through the map or explicitly ([`Source::read_explicitly`]).
    pub(super) access: crate::data::source::Access,
}

impl ParquetSource {
    /// Opens files and/or directories of `.parquet` files (sorted by name) with one schema,
    /// resolving the feature and label columns of `spec`.
    ///
    /// Every footer is parsed here, once; a file that is not Parquet, a schema that differs
    /// between files, a missing or unsupported column, or a dataset without rows is an error.
    pub fn open(paths: &[PathBuf], spec: &ColumnSpec) -> Result<Self> {
        Ok(Self::open_files(paths, spec, OnBadFile::Error)?.0)
    }

    /// Like [`ParquetSource::open`], but with [`OnBadFile::Skip`] a file that cannot be opened
    /// (missing, not Parquet, a corrupt footer, encrypted) is left out instead of failing the
    /// whole dataset; the skipped files come back with their errors. A file whose footer
    /// reads but whose pages are damaged is found only while reading, and still fails the run.
    pub fn open_files(
        paths: &[PathBuf],
        spec: &ColumnSpec,
        on_bad_file: OnBadFile,
    ) -> Result<(Self, SkippedFiles)> {
        let mut skipped = Vec::new();
        let mut paths = expand_paths(paths)?;
        let mut opened = Vec::with_capacity(paths.len());
        let stop_at_error = on_bad_file == OnBadFile::Error;
        for (path, result) in paths.iter().zip(open_all(&paths, stop_at_error)) {
            match result.expect("every file before a failure is opened") {
                Ok(file) => opened.push(file),
                Err(e) if on_bad_file == OnBadFile::Skip => {
                    skipped.push((path.clone(), e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        paths.retain(|p| !skipped.iter().any(|(s, _)| s == p));
        let schemas: Vec<_> = opened.iter().map(|(_, m)| m.schema().clone()).collect();
        let absent = AbsentColumns::find(&paths, &schemas, spec)?;
        let mut files = Vec::with_capacity(paths.len());
        let mut units = Vec::new();
        // The first file's resolved schema and used columns; every other file must match them.
        let mut schema: Option<(Schema, UsedColumns)> = None;
        let mut next_row_id = 0u64;
        let mut file_bytes = 0u64;
        for (file_index, (path, (data, metadata))) in paths.iter().zip(opened).enumerate() {
            file_bytes += data.len();
            let arrow_schema = metadata.schema().clone();
            let (resolved, roots) = resolve_columns(path, &arrow_schema, spec, &absent)?;
            let mask = ProjectionMask::roots(metadata.parquet_schema(), roots.iter().copied());
            let flat = match resolved.layout {
                // Filled columns are read by the arrow reader (which sees nulls per row), centred
                // ones by the decoder (which centres in f64).
                Layout::Scalars {
                    ref fill,
                    ref categorical,
                    ref centre,
                    ..
                } if fill.iter().all(Option::is_none)
                    && categorical.is_empty()
                    && centre.iter().all(|&c| c == 0.0)
                    && spec.positive_label.is_none()
                    && !spec.drop_null_labels
                    && spec.weight.is_none() =>
                {
                    pages::flat_leaves(metadata.parquet_schema(), &roots)
                }
                Layout::Scalars { .. } => None,
                Layout::List { .. } => None,
            };
            let mut file = ParquetFile {
                data,
                metadata,
                mask,
                layout: resolved.layout,
                flat,
            };
            // Categorical string columns are read as dictionaries (`encode.rs`).
            if let Some(hinted) = dictionary_metadata(&file.metadata, &file.layout) {
                file.metadata = hinted;
            }
            if let Layout::List { len: 0, .. } = file.layout {
                let probed = crate::guard::catch(|| probe_list_length(path, &file)).unwrap_or_else(
                    |reason| {
                        Err(Error::Corrupt {
                            file: path.clone(),
                            row_group: Some(0),
                            reason,
                        })
                    },
                );
                file.data.check()?;
                file.layout = probed?;
            }
            if let (Layout::List { len, .. }, FeatureNames::List(column)) =
                (&file.layout, &resolved.feature_names)
            {
                check_list_length(path, &file, column, *len)?;
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
            let used = UsedColumns::new(&arrow_schema, &roots, file_schema.num_features())
                .with_absent(resolved.absent);
            match &schema {
                None => schema = Some((file_schema, used)),
                Some((first, first_used))
                    if *first != file_schema || !first_used.agrees_with(&used) =>
                {
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
                let num_rows = match roots.last() {
                    Some(&label_root) if spec.drop_null_labels && !spec.ignore_label => {
                        let nulls = count_null_labels(path, &file, label_root, rg)?;
                        num_rows.saturating_sub(nulls)
                    }
                    _ => num_rows,
                };
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
        #[cfg(feature = "remote")]
        let prefetch = paths
            .iter()
            .any(|p| crate::data::source::remote::is_url(p))
            .then(|| {
                crate::data::source::parquet::prefetch::Prefetch::new(
                    crate::data::source::remote::options().fetch_ahead_bytes,
                )
            });
        let source = ParquetSource {
            paths,
            files,
            schema,
            used,
            units,
            file_bytes,
            #[cfg(feature = "remote")]
            prefetch,
            positive_label: spec.positive_label.clone(),
            drop_null_labels: spec.drop_null_labels && !spec.ignore_label,
            weight: spec.weight.clone(),
            absent,
            access: Default::default(),
        };
        Ok((source, skipped))
    }

    /// Notes each column some files lack as "missing in N files", adding it (from the first
    /// file that has it) when the first file lacks it.
    fn note_absent_columns(&self, columns: &mut Vec<crate::data::source::ColumnInfo>) {
        for (name, num_files) in &self.absent.columns {
            let note = format!(
                "missing in {num_files} of {} files (read as null there)",
                self.files.len()
            );
            if let Some(info) = columns.iter_mut().find(|c| c.name == *name) {
                info.note = if info.note.is_empty() {
                    note
                } else {
                    format!("{}; {note}", info.note)
                };
                continue;
            }
            let Some(file) = self
                .files
                .iter()
                .find(|f| f.metadata.schema().index_of(name).is_ok())
            else {
                continue;
            };
            let infos = column_infos(&file.metadata, &file.layout, &self.schema);
            if let Some(mut info) = infos.into_iter().find(|c| c.name == *name) {
                info.note = format!("{}; {note}", info.note)
                    .trim_start_matches("; ")
                    .to_string();
                columns.push(info);
            }
        }
    }

    /// The used columns and their Arrow types, e.g. `columns [f0: Float32, label: Float32]
    /// (1 features)`.
    pub fn describe_columns(&self) -> String {
        self.used.to_string()
    }
}

impl Source for ParquetSource {
    fn units(&self) -> &[Unit] {
        &self.units
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn row_width(&self) -> usize {
        self.schema.num_features() + usize::from(self.weight.is_some())
    }

    fn first_unit_distinct(&self, columns: &[String]) -> Result<Vec<Option<u64>>> {
        self.distinct_in_first_unit(columns)
    }

    fn files(&self) -> &[PathBuf] {
        &self.paths
    }

    fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    fn feature_ranges(&self) -> Option<Vec<(f64, f64)>> {
        self.footer_ranges()
    }

    fn describe(&self) -> SourceInfo {
        let file = &self.files[0];
        let mut columns = column_infos(&file.metadata, &file.layout, &self.schema);
        self.note_absent_columns(&mut columns);
        let mut codecs: Vec<String> = Vec::new();
        for f in &self.files {
            for rg in f.metadata.metadata().row_groups() {
                for column in rg.columns() {
                    let codec = codec_name(column.compression());
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

    fn fetch_budget_bytes(&self) -> u64 {
        let remote = self
            .paths
            .iter()
            .any(|p| crate::data::source::remote::is_url(p));
        if remote {
            crate::data::source::remote::options().fetch_ahead_bytes
        } else {
            0
        }
    }

    fn read_explicitly(&self, explicit: bool) {
        self.access.set(explicit);
    }

    fn unit_io_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| {
                crate::data::source::parquet::data::unit_io_bytes(
                    f.metadata.metadata().row_groups(),
                    &f.mask,
                    f.data.len(),
                )
            })
            .max()
            .unwrap_or(0)
    }

    #[cfg(feature = "remote")]
    fn plan_hint(&self, units_in_read_order: &[usize]) {
        let Some(prefetch) = &self.prefetch else {
            return;
        };
        let jobs = units_in_read_order
            .iter()
            .filter_map(|&unit| {
                let u = self.units.get(unit)?;
                let file = &self.files[u.file];
                let row_group = file.metadata.metadata().row_group(u.index_in_file);
                let (object, ranges) = file.data.remote_chunks(row_group, &file.mask)?;
                Some(crate::data::source::parquet::prefetch::Job {
                    unit,
                    object,
                    ranges,
                })
            })
            .collect();
        prefetch.plan(jobs);
    }

    fn identity(&self) -> Result<Vec<FileIdentity>> {
        self.paths
            .iter()
            .zip(&self.files)
            .map(|(path, file)| file.data.identity(path))
            .collect()
    }

    fn read_unit(
        &self,
        unit_index: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        // A decoder that panics on malformed pages fails this unit, like any corrupt data;
        // the file changing under the read explains any failure (and fails a read that
        // stopped handing rows on when it saw the change).
        let unit = &self.units[unit_index];
        self.files[unit.file].data.read_watched(sink, |sink| {
            crate::guard::catch(|| self.read(unit_index, max_block_rows, sink))
                .unwrap_or_else(|reason| Err(self.corrupt(unit, reason)))
        })
    }

    fn centrable_columns(&self) -> Vec<String> {
        match &self.files[0].layout {
            Layout::Scalars { features, .. } => {
                self.schema.feature_names[..features.len()].to_vec()
            }
            Layout::List { .. } => Vec::new(),
        }
    }

    fn categorical_columns(&self) -> Vec<String> {
        match &self.files[0].layout {
            Layout::Scalars { categorical, .. } => {
                categorical.iter().map(|c| c.name.clone()).collect()
            }
            Layout::List { .. } => Vec::new(),
        }
    }

    fn count_categories(
        &self,
        unit_index: usize,
        counts: &mut crate::data::sketch::CategoryCounts,
    ) -> Result<()> {
        let unit = &self.units[unit_index];
        crate::guard::catch(|| self.count_unit(unit_index, counts))
            .unwrap_or_else(|reason| Err(self.corrupt(unit, reason)))
    }
}

#[cfg(feature = "remote")]
impl Drop for ParquetSource {
    fn drop(&mut self) {
        if let Some(prefetch) = &self.prefetch {
            prefetch.stop();
        }
    }
}

/// The most features a list column may give (as many as a shard may hold).
const MAX_LIST_FEATURES: usize = 1 << 20;

/// Refuses a list length the file cannot hold: more than [`MAX_LIST_FEATURES`], or more values
/// per row than the footer counts in the list's column chunks (a damaged schema would
/// otherwise make streamfit name and allocate billions of features).
fn check_list_length(path: &Path, file: &ParquetFile, column: &str, len: usize) -> Result<()> {
    let metadata = file.metadata.metadata();
    let (rows, values) = metadata
        .row_groups()
        .iter()
        .fold((0u64, 0u64), |(rows, values), rg| {
            let leaf: u64 = rg
                .columns()
                .iter()
                .filter(|c| c.column_path().parts().first().map(String::as_str) == Some(column))
                .map(|c| u64::try_from(c.num_values()).unwrap_or(0))
                .sum();
            (
                rows + u64::try_from(rg.num_rows()).unwrap_or(0),
                values + leaf,
            )
        });
    if len > MAX_LIST_FEATURES || (len as u64).saturating_mul(rows) > values.max(rows) {
        return Err(Error::Corrupt {
            file: path.to_path_buf(),
            row_group: None,
            reason: format!(
                "column `{column}` claims lists of {len} values, but the file holds {values} values for {rows} rows (at most {MAX_LIST_FEATURES} features)"
            ),
        });
    }
    Ok(())
}

/// Parquet files and directories of them: the fallback format, which claims any paths.
pub struct ParquetFormat;

impl SourceFormat for ParquetFormat {
    fn name(&self) -> &'static str {
        "parquet"
    }

    fn claims(&self, _paths: &[PathBuf]) -> bool {
        true
    }

    fn open(
        &self,
        paths: &[PathBuf],
        options: &OpenOptions,
    ) -> Result<(Arc<dyn Source>, SkippedFiles)> {
        crate::data::source::partitioned::open_tree(paths, options, |files, spec| {
            let (source, skipped) = ParquetSource::open_files(files, spec, options.on_bad_file)?;
            Ok((Arc::new(source) as Arc<dyn Source>, skipped))
        })
    }
}
