//! Hive partition keys as features: [`PartitionedSource`] wraps a source of the files' own
//! columns and adds, to every row of a file, the numeric values of the partition keys named
//! in `features`, at the places they were named.
//!
//! The wrapped source reads and checks its columns as always; each block it hands on is
//! widened here by one copy (only datasets that use partition keys as features pay for it).
//! Which keys exist, their types and each file's values come from
//! [`Partitions`](crate::data::partition::Partitions); which files are read from discovery and
//! the filter, before anything is opened.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::data::discover::{ListedFile, list_files};
use crate::data::partition::{Filter, PartitionType, Partitions};
use crate::data::source::{
    ChunkSink, ColumnInfo, ColumnRole, FileIdentity, OpenOptions, SkippedFiles, Source, SourceInfo,
    Unit,
};
use crate::data::{ColumnSpec, FeatureSelection, RowBlock, Schema};
use crate::error::{Error, Result};

/// The stored type `inspect` shows for a partition key.
pub const PARTITION_STORED_TYPE: &str = "directory name";

/// Where one output feature comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Feature `i` of the wrapped source.
    Column(usize),
    /// Partition key `k`.
    Key(usize),
}

/// A source whose rows gain partition-key features.
pub struct PartitionedSource {
    inner: Arc<dyn Source>,
    schema: Schema,
    slots: Vec<Slot>,
    partitions: Partitions,
    /// The used keys' values as features, `values[file][k]` for every file of `inner`.
    values: Vec<Vec<f32>>,
}

impl PartitionedSource {
    /// Wraps `inner` (opened with `features` minus the partition keys), giving features in the
    /// order of `features`. `partitions.values` must be in `inner`'s file order. A key that
    /// holds strings, or a null in a file, is an error naming the key (and the file).
    pub fn new(
        inner: Arc<dyn Source>,
        features: &[String],
        partitions: Partitions,
    ) -> Result<PartitionedSource> {
        let inner_names = &inner.schema().feature_names;
        let mut slots = Vec::with_capacity(features.len());
        let mut next_column = 0;
        for name in features {
            match partitions.index(name) {
                Some(k) => {
                    if partitions.keys[k].1 == PartitionType::String {
                        return Err(Error::config(
                            "features",
                            format!(
                                "partition key '{name}' holds strings, which are not a \
                                 numeric feature"
                            ),
                        ));
                    }
                    slots.push(Slot::Key(k));
                }
                None => {
                    debug_assert_eq!(inner_names.get(next_column), Some(name));
                    slots.push(Slot::Column(next_column));
                    next_column += 1;
                }
            }
        }
        // Features the inner source adds after the named columns (missing-value indicators,
        // `COL_is_null`) follow the named features.
        let mut feature_names = features.to_vec();
        for (column, name) in inner_names.iter().enumerate().skip(next_column) {
            slots.push(Slot::Column(column));
            feature_names.push(name.clone());
        }
        let mut values = Vec::with_capacity(inner.files().len());
        for (file, path) in inner.files().iter().enumerate() {
            let mut row = vec![0.0f32; partitions.keys.len()];
            for slot in &slots {
                let Slot::Key(k) = *slot else { continue };
                let Some(v) = partitions.values[file][k].as_f64() else {
                    return Err(Error::config(
                        "features",
                        format!(
                            "partition key '{}' is null (__HIVE_DEFAULT_PARTITION__) for {}",
                            partitions.keys[k].0,
                            path.display()
                        ),
                    ));
                };
                row[k] = v as f32;
            }
            values.push(row);
        }
        let schema = Schema {
            feature_names,
            label: inner.schema().label.clone(),
        };
        Ok(PartitionedSource {
            inner,
            schema,
            slots,
            partitions,
            values,
        })
    }
}

/// Widens each block of the wrapped source into the caller's sink.
struct Widen<'a> {
    sink: &'a mut dyn ChunkSink,
    slots: &'a [Slot],
    values: &'a [f32],
    spare: Option<RowBlock>,
    row: Vec<f32>,
}

impl ChunkSink for Widen<'_> {
    fn empty_block(&mut self) -> RowBlock {
        self.spare.take().unwrap_or_default()
    }

    fn send(&mut self, block: RowBlock) -> ControlFlow<()> {
        let mut out = self.sink.empty_block();
        out.reset(self.slots.len());
        for i in 0..block.num_rows() {
            let narrow = block.row(i);
            for (value, slot) in self.row.iter_mut().zip(self.slots) {
                *value = match *slot {
                    Slot::Column(c) => narrow[c],
                    Slot::Key(k) => self.values[k],
                };
            }
            out.push_row(&self.row, block.targets()[i], block.row_ids()[i]);
        }
        self.spare = Some(block);
        self.sink.send(out)
    }
}

impl PartitionedSource {
    /// Wraps `inner` with no key as a feature: rows pass through untouched, and `describe`
    /// still lists the partition keys.
    pub fn described(inner: Arc<dyn Source>, partitions: Partitions) -> PartitionedSource {
        let d = inner.num_features();
        PartitionedSource {
            schema: inner.schema().clone(),
            slots: (0..d).map(Slot::Column).collect(),
            values: vec![Vec::new(); inner.files().len()],
            inner,
            partitions,
        }
    }

    /// True when some feature is a partition key, so rows must be widened.
    fn widens(&self) -> bool {
        self.slots.iter().any(|s| matches!(s, Slot::Key(_)))
    }

    fn widen<'a>(&'a self, unit: usize, sink: &'a mut dyn ChunkSink) -> Widen<'a> {
        let file = self.inner.units()[unit].file;
        Widen {
            sink,
            slots: &self.slots,
            values: &self.values[file],
            spare: None,
            row: vec![0.0; self.slots.len()],
        }
    }
}

impl Source for PartitionedSource {
    fn units(&self) -> &[Unit] {
        self.inner.units()
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn files(&self) -> &[PathBuf] {
        self.inner.files()
    }

    fn read_unit(
        &self,
        unit: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        if !self.widens() {
            return self.inner.read_unit(unit, max_block_rows, sink);
        }
        self.inner
            .read_unit(unit, max_block_rows, &mut self.widen(unit, sink))
    }

    fn read_rows(
        &self,
        unit: usize,
        offsets: &[u64],
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<u64> {
        if !self.widens() {
            return self.inner.read_rows(unit, offsets, max_block_rows, sink);
        }
        self.inner
            .read_rows(unit, offsets, max_block_rows, &mut self.widen(unit, sink))
    }

    fn file_bytes(&self) -> u64 {
        self.inner.file_bytes()
    }

    fn describe(&self) -> SourceInfo {
        let mut info = self.inner.describe();
        append_partition_columns(&mut info, &self.partitions, &self.schema);
        info
    }

    fn identity(&self) -> Result<Vec<FileIdentity>> {
        self.inner.identity()
    }

    fn fetch_budget_bytes(&self) -> u64 {
        self.inner.fetch_budget_bytes()
    }

    fn plan_hint(&self, units_in_read_order: &[usize]) {
        self.inner.plan_hint(units_in_read_order);
    }

    fn categorical_columns(&self) -> Vec<String> {
        self.inner.categorical_columns()
    }

    fn count_categories(
        &self,
        unit: usize,
        counts: &mut crate::data::sketch::CategoryCounts,
    ) -> Result<()> {
        self.inner.count_categories(unit, counts)
    }
}

/// Adds the partition keys to `info`'s columns, as features when `schema` names them.
pub fn append_partition_columns(info: &mut SourceInfo, partitions: &Partitions, schema: &Schema) {
    for (key, ty) in &partitions.keys {
        let used = schema.feature_names.iter().any(|f| f == key);
        let (role, note) = match (used, ty) {
            (true, _) => (
                ColumnRole::Feature,
                "hive partition, cast to f32".to_string(),
            ),
            (false, PartitionType::String) => (
                ColumnRole::Unused,
                "hive partition (string): not a numeric feature".to_string(),
            ),
            (false, _) => (
                ColumnRole::Unused,
                "hive partition: a feature only when named".to_string(),
            ),
        };
        info.columns.push(ColumnInfo {
            name: key.clone(),
            stored_type: PARTITION_STORED_TYPE.to_string(),
            arrow_type: ty.to_string(),
            role,
            note,
        });
    }
}

/// Opens a tree of files: lists `paths` ([`list_files`]), types their partitions, applies
/// the columns' `filter`, and opens the kept files with `open` (given the file list and the
/// column spec without partition keys), wrapping the result when the data has partitions.
pub(crate) fn open_tree(
    paths: &[PathBuf],
    options: &OpenOptions,
    open: impl FnOnce(&[PathBuf], &ColumnSpec) -> Result<(Arc<dyn Source>, SkippedFiles)>,
) -> Result<(Arc<dyn Source>, SkippedFiles)> {
    let listed = list_files(paths)?;
    let partitions = Partitions::of(&listed)?;
    let (listed, partitions) = match &options.columns.filter {
        None => (listed, partitions),
        Some(text) => filtered(listed, partitions, &Filter::parse(text)?)?,
    };
    let files: Vec<PathBuf> = listed.iter().map(|f| f.path.clone()).collect();
    if partitions.is_empty() {
        return open(&files, &options.columns);
    }
    let named: Option<Vec<String>> = match &options.columns.features {
        FeatureSelection::Columns(names) => Some(names.clone()),
        _ => None,
    };
    let mut spec = options.columns.clone();
    // Partition keys are never null or NaN: only the files' own columns are filled.
    spec.missing
        .fill
        .retain(|f| partitions.index(&f.column).is_none());
    spec.missing
        .indicators
        .retain(|c| partitions.index(c).is_none());
    if let Some(names) = &named {
        spec.features = FeatureSelection::Columns(
            names
                .iter()
                .filter(|n| partitions.index(n).is_none())
                .cloned()
                .collect(),
        );
    }
    let (inner, skipped) = open(&files, &spec)?;
    // The opened files' values, in the opened order (files skipped as unreadable are gone).
    let values = inner
        .files()
        .iter()
        .map(|path| {
            let at = files
                .iter()
                .position(|f| f == path)
                .expect("opened a listed file");
            partitions.values[at].clone()
        })
        .collect();
    let partitions = Partitions {
        keys: partitions.keys,
        values,
    };
    let source: Arc<dyn Source> = match named {
        Some(names) if names.iter().any(|n| partitions.index(n).is_some()) => {
            Arc::new(PartitionedSource::new(inner, &names, partitions)?)
        }
        _ => Arc::new(PartitionedSource::described(inner, partitions)),
    };
    Ok((source, skipped))
}

/// The files (and their partition values) that pass `filter`; none is an error.
fn filtered(
    listed: Vec<ListedFile>,
    partitions: Partitions,
    filter: &Filter,
) -> Result<(Vec<ListedFile>, Partitions)> {
    filter.check(&partitions)?;
    let total = listed.len();
    let (files, values): (Vec<ListedFile>, Vec<_>) = listed
        .into_iter()
        .zip(partitions.values)
        .filter(|(_, v)| filter.keeps_values(&partitions.keys, v))
        .unzip();
    if files.is_empty() {
        return Err(Error::EmptyDataset {
            what: format!(
                "the filter '{}' keeps none of the {total} file(s)",
                filter.text()
            ),
        });
    }
    tracing::debug!(kept = files.len(), total, "filter '{}'", filter.text());
    Ok((
        files,
        Partitions {
            keys: partitions.keys,
            values,
        },
    ))
}
