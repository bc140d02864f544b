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

use crate::data::categorical::{CategoricalColumns, Encoding, Vocabulary};
use crate::data::discover::{ListedFile, list_files};
use crate::data::partition::{Filter, PartitionType, PartitionValue, Partitions};
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
    /// One-hot feature `j` of the categorical partition keys.
    Encoded(usize),
}

/// A source whose rows gain partition-key features.
pub struct PartitionedSource {
    inner: Arc<dyn Source>,
    schema: Schema,
    slots: Vec<Slot>,
    partitions: Partitions,
    /// The used keys' values as features, `values[file][k]` for every file of `inner`.
    values: Vec<Vec<f32>>,
    /// The categorical keys (`«categorical»`, one-hot), in feature order.
    categorical_keys: Vec<usize>,
    /// Their one-hot features, `encoded[file][j]` (constant within a file).
    encoded: Vec<Vec<f32>>,
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
            encoded: vec![Vec::new(); values.len()],
            inner,
            schema,
            slots,
            partitions,
            values,
            categorical_keys: Vec::new(),
        })
    }
}

/// Widens each block of the wrapped source into the caller's sink.
struct Widen<'a> {
    sink: &'a mut dyn ChunkSink,
    slots: &'a [Slot],
    values: &'a [f32],
    encoded: &'a [f32],
    spare: Option<RowBlock>,
    row: Vec<f32>,
}

impl ChunkSink for Widen<'_> {
    fn empty_block(&mut self) -> RowBlock {
        self.spare.take().unwrap_or_default()
    }

    fn send(&mut self, block: RowBlock) -> ControlFlow<()> {
        let mut out = self.sink.empty_block();
        out.reset(self.row.len());
        for i in 0..block.num_rows() {
            let narrow = block.row(i);
            // A row's weight (when the wrapped source reads one) stays its last value.
            let (features, trailing) = self.row.split_at_mut(self.slots.len());
            for (value, slot) in features.iter_mut().zip(self.slots) {
                *value = match *slot {
                    Slot::Column(c) => narrow[c],
                    Slot::Key(k) => self.values[k],
                    Slot::Encoded(j) => self.encoded[j],
                };
            }
            trailing.copy_from_slice(&narrow[narrow.len() - trailing.len()..]);
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
            encoded: vec![Vec::new(); inner.files().len()],
            categorical_keys: Vec::new(),
            inner,
            partitions,
        }
    }

    /// Adds the categorical partition keys `keys`, each with its one-hot vocabulary (or
    /// `None` while the vocabulary pass counts them: no feature yet). Their features follow
    /// every other feature, in the order of `keys`, named and laid out as a categorical
    /// column's ([`crate::data::categorical`]); they are constants within a file.
    pub fn with_categorical_keys(mut self, keys: Vec<(usize, Option<Vocabulary>)>) -> Self {
        for (k, vocabulary) in keys {
            self.categorical_keys.push(k);
            let Some(vocabulary) = vocabulary else {
                continue;
            };
            let names = vocabulary.feature_names();
            for (file, encoded) in self.encoded.iter_mut().enumerate() {
                let value = key_text(&self.partitions.values[file][k]);
                let at = match value {
                    Some(v) => vocabulary.values.iter().position(|known| *known == v),
                    None if vocabulary.null => Some(names.len() - 1),
                    None => None,
                }
                .unwrap_or(vocabulary.values.len());
                encoded.extend((0..names.len()).map(|j| f32::from(u8::from(j == at))));
            }
            for name in names {
                let j = self
                    .slots
                    .iter()
                    .filter(|s| matches!(s, Slot::Encoded(_)))
                    .count();
                self.slots.push(Slot::Encoded(j));
                self.schema.feature_names.push(name);
            }
        }
        self
    }

    /// True when some feature is a partition key, so rows must be widened.
    fn widens(&self) -> bool {
        self.slots.iter().any(|s| !matches!(s, Slot::Column(_)))
    }

    fn widen<'a>(&'a self, unit: usize, sink: &'a mut dyn ChunkSink) -> Widen<'a> {
        let file = self.inner.units()[unit].file;
        Widen {
            sink,
            slots: &self.slots,
            values: &self.values[file],
            encoded: &self.encoded[file],
            spare: None,
            row: vec![0.0; self.row_width()],
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

    fn first_unit_distinct(&self, columns: &[String]) -> Result<Vec<Option<u64>>> {
        self.inner.first_unit_distinct(columns)
    }

    fn row_width(&self) -> usize {
        self.slots.len() + (self.inner.row_width() - self.inner.num_features())
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
        for &k in &self.categorical_keys {
            let key = &self.partitions.keys[k].0;
            if let Some(column) = info.columns.iter_mut().rev().find(|c| c.name == *key) {
                column.role = ColumnRole::Feature;
                column.note = "hive partition, categorical: one-hot".to_string();
            }
        }
        info
    }

    fn identity(&self) -> Result<Vec<FileIdentity>> {
        self.inner.identity()
    }

    fn fetch_budget_bytes(&self) -> u64 {
        self.inner.fetch_budget_bytes()
    }

    fn read_explicitly(&self, explicit: bool) {
        self.inner.read_explicitly(explicit);
    }

    fn unit_io_bytes(&self) -> u64 {
        self.inner.unit_io_bytes()
    }

    fn plan_hint(&self, units_in_read_order: &[usize]) {
        self.inner.plan_hint(units_in_read_order);
    }

    fn centrable_columns(&self) -> Vec<String> {
        // Partition keys are no stored values.
        self.inner.centrable_columns()
    }

    fn categorical_columns(&self) -> Vec<String> {
        let mut columns = self.inner.categorical_columns();
        columns.extend(
            self.categorical_keys
                .iter()
                .map(|&k| self.partitions.keys[k].0.clone()),
        );
        columns
    }

    /// The inner source's columns, then each categorical key's value, once per row.
    fn count_categories(
        &self,
        unit: usize,
        counts: &mut crate::data::sketch::CategoryCounts,
    ) -> Result<()> {
        self.inner.count_categories(unit, counts)?;
        let Unit { file, num_rows, .. } = self.inner.units()[unit];
        for &k in &self.categorical_keys {
            let counted = counts.column(&self.partitions.keys[k].0);
            match key_text(&self.partitions.values[file][k]) {
                Some(value) => counted.add(&value, num_rows),
                None => counted.nulls += num_rows,
            }
        }
        Ok(())
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
                "hive partition (string): pass «categorical» to use it".to_string(),
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
    let categorical_keys = split_categorical_keys(&mut spec, &partitions)?;
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
    let source = match named {
        Some(names) if names.iter().any(|n| partitions.index(n).is_some()) => {
            PartitionedSource::new(inner, &names, partitions)?
        }
        _ => PartitionedSource::described(inner, partitions),
    };
    let source: Arc<dyn Source> = Arc::new(source.with_categorical_keys(categorical_keys));
    Ok((source, skipped))
}

/// Takes the partition keys out of `spec`'s categorical columns (and their vocabularies out
/// of its one-hot encoding): the files do not hold them. Returns each key with its
/// vocabulary (`None` before fitting). A key of fractional numbers, or hashed keys, are
/// refused.
fn split_categorical_keys(
    spec: &mut ColumnSpec,
    partitions: &Partitions,
) -> Result<Vec<(usize, Option<Vocabulary>)>> {
    let CategoricalColumns::Named(names) = &spec.categorical.columns else {
        return Ok(Vec::new());
    };
    let keys: Vec<(String, usize)> = names
        .iter()
        .filter_map(|n| partitions.index(n).map(|k| (n.clone(), k)))
        .collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = Vec::with_capacity(keys.len());
    for (name, k) in &keys {
        if partitions.keys[*k].1 == PartitionType::Float {
            return Err(Error::config(
                "categorical",
                format!("partition key `{name}` holds fractional numbers, not categories"),
            ));
        }
        let vocabulary = match &mut spec.categorical.encoding {
            Encoding::Unfitted => None,
            Encoding::Hash { .. } => {
                return Err(Error::config(
                    "hash_buckets",
                    format!(
                        "partition key `{name}` cannot be hashed (name it in «categorical» \
                         without «hash_buckets» for one-hot features)"
                    ),
                ));
            }
            Encoding::OneHot(vocabularies) => {
                let at = vocabularies
                    .iter()
                    .position(|v| v.column == *name)
                    .ok_or_else(|| {
                        Error::config(
                            "categorical",
                            format!("column `{name}` has no fitted vocabulary"),
                        )
                    })?;
                Some(vocabularies.remove(at))
            }
        };
        found.push((*k, vocabulary));
    }
    let columns: Vec<String> = names
        .iter()
        .filter(|n| partitions.index(n).is_none())
        .cloned()
        .collect();
    spec.categorical.columns = CategoricalColumns::Named(columns);
    Ok(found)
}

/// A partition value as a category: its text (integers in decimal); `None` for a null.
fn key_text(value: &PartitionValue) -> Option<String> {
    match value {
        PartitionValue::Null => None,
        other => Some(other.to_string()),
    }
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
