//! Categorical columns of a Parquet file: which columns they are (`auto` or named; the
//! types that can be categorical), their encoders in a [`Layout`], how they are read (string
//! columns as Arrow dictionaries, [`dictionary_metadata`]) and counted by the vocabulary pass
//! (`ParquetSource::count_unit`, only their own pages decoded, and the label's when
//! «drop_null_labels» leaves rows out: those rows are not counted), and how `inspect`
//! describes them. Writing and counting a batch's values is `encode.rs`'s job; the feature names and
//! the saved encoding are [`crate::data::categorical`]'s.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::{DataType, FieldRef, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use crate::data::categorical::{CategoricalColumns, Encoding, hash_name};
use crate::data::schema::{ColumnSpec, FeatureSelection};
use crate::data::sketch::CategoryCounts;
use crate::data::source::parquet::columns::{Layout, pandas_index_columns};
use crate::data::source::parquet::encode::{CategoricalLayout, Encoder, OneHot, count_categorical};
use crate::data::source::parquet::source::ParquetSource;
use crate::error::{Error, Result};

/// True for string columns and dictionaries of strings: the columns «categorical» `auto`
/// takes.
pub(super) fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => {
            matches!(**values, DataType::Utf8 | DataType::LargeUtf8)
        }
        _ => false,
    }
}

/// True for the column types that can be categorical: strings, dictionaries of strings,
/// booleans and integers.
pub(super) fn is_categorical(data_type: &DataType) -> bool {
    is_text(data_type)
        || matches!(
            data_type,
            DataType::Boolean
                | DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
        )
}

/// The root indices of the categorical columns of `spec` (with `auto`: every string and
/// dictionary column but the label, the excluded ones and pandas index columns, and with
/// named «features» only those among them); a named
/// column that is missing, the label, or of a type that cannot be categorical is an error.
pub(super) fn categorical_roots(
    path: &Path,
    schema: &SchemaRef,
    spec: &ColumnSpec,
    label: Option<usize>,
) -> Result<Vec<usize>> {
    match &spec.categorical.columns {
        CategoricalColumns::None => Ok(Vec::new()),
        CategoricalColumns::Auto => {
            let index_columns = pandas_index_columns(schema);
            let named = |name: &String| match &spec.features {
                FeatureSelection::Columns(features) => features.contains(name),
                _ => true,
            };
            Ok((0..schema.fields().len())
                .filter(|&i| {
                    let name = schema.field(i).name();
                    named(name)
                        && Some(i) != label
                        && *name != spec.label
                        && is_text(schema.field(i).data_type())
                        && !spec.exclude.contains(name)
                        && !index_columns.contains(name)
                })
                .collect())
        }
        CategoricalColumns::Named(names) => {
            let mut roots = Vec::with_capacity(names.len());
            for name in names {
                let Ok(index) = schema.index_of(name) else {
                    let columns: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    return Err(Error::config(
                        "categorical",
                        format!(
                            "column `{name}` is not in {} (columns: {})",
                            path.display(),
                            columns.join(", ")
                        ),
                    ));
                };
                if *name == spec.label {
                    return Err(Error::config(
                        "categorical",
                        format!("the label column `{name}` cannot also be a feature"),
                    ));
                }
                let data_type = schema.field(index).data_type();
                if !is_categorical(data_type) {
                    return Err(Error::config(
                        "categorical",
                        format!(
                            "column `{name}` is {data_type}: only string, dictionary, boolean \
                             and integer columns can be categorical"
                        ),
                    ));
                }
                if !roots.contains(&index) {
                    roots.push(index);
                }
            }
            Ok(roots)
        }
    }
}

/// The layouts of the categorical columns at `roots`, by `spec`'s encoding; appends their
/// features' names to `names` (one-hot: each column's own, in column order; hashing: the
/// shared buckets once). A one-hot column without a vocabulary is an error.
pub(super) fn categorical_layouts(
    spec: &ColumnSpec,
    schema: &SchemaRef,
    roots: &[usize],
    position: &impl Fn(usize) -> usize,
    names: &mut Vec<String>,
) -> Result<Vec<CategoricalLayout>> {
    let hash_offset = names.len();
    if let Encoding::Hash { buckets } = spec.categorical.encoding
        && !roots.is_empty()
    {
        names.extend((0..buckets).map(hash_name));
    }
    let mut layouts = Vec::with_capacity(roots.len());
    for &root in roots {
        let name = schema.field(root).name().clone();
        let encoder = match &spec.categorical.encoding {
            Encoding::Unfitted => Encoder::Count,
            Encoding::Hash { buckets } => Encoder::Hash {
                offset: hash_offset,
                buckets: *buckets,
            },
            Encoding::OneHot(vocabularies) => {
                let vocabulary =
                    vocabularies
                        .iter()
                        .find(|v| v.column == name)
                        .ok_or_else(|| {
                            Error::config(
                                "categorical",
                                format!("column `{name}` has no fitted vocabulary"),
                            )
                        })?;
                let one_hot = OneHot::new(vocabulary, names.len());
                names.extend(vocabulary.feature_names());
                Encoder::OneHot(one_hot)
            }
        };
        layouts.push(CategoricalLayout {
            name,
            position: position(root),
            encoder,
        });
    }
    Ok(layouts)
}

/// How `inspect` describes a categorical column.
pub(super) fn categorical_note(column: &CategoricalLayout) -> String {
    match &column.encoder {
        Encoder::Count => "categorical".to_string(),
        Encoder::OneHot(one_hot) => format!("categorical: one-hot, {} features", one_hot.width()),
        Encoder::Hash { buckets, .. } => format!("categorical: hashed into {buckets} buckets"),
    }
}

/// The reader metadata of a file whose categorical string columns are read as Arrow
/// dictionaries (`Dictionary(Int32, Utf8)`): a dictionary-encoded column chunk then keeps its
/// dictionary, so each entry is looked up once per batch instead of every row's string (a
/// plain-encoded chunk is turned into a dictionary by the reader). `None` when no
/// categorical column is a plain string column, or the reader refuses the hint.
pub(super) fn dictionary_metadata(
    metadata: &ArrowReaderMetadata,
    layout: &Layout,
) -> Option<ArrowReaderMetadata> {
    let Layout::Scalars { categorical, .. } = layout else {
        return None;
    };
    let schema = metadata.schema();
    let mut changed = false;
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|field| {
            let used = categorical.iter().any(|c| c.name == *field.name());
            match field.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 if used => {
                    changed = true;
                    let dictionary = DataType::Dictionary(
                        Box::new(DataType::Int32),
                        Box::new(field.data_type().clone()),
                    );
                    Arc::new(field.as_ref().clone().with_data_type(dictionary))
                }
                _ => field.clone(),
            }
        })
        .collect();
    if !changed {
        return None;
    }
    let hinted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    ArrowReaderMetadata::try_new(
        metadata.metadata().clone(),
        ArrowReaderOptions::new().with_schema(hinted),
    )
    .ok()
}

/// Rows per record batch of the vocabulary pass.
const COUNT_BATCH_ROWS: usize = 8_192;

impl ParquetSource {
    /// Counts the categorical columns of unit `unit_index` into `counts`, in row order
    /// ([`Source::count_categories`](crate::data::source::Source::count_categories)).
    pub(super) fn count_unit(&self, unit_index: usize, counts: &mut CategoryCounts) -> Result<()> {
        let unit = self.units[unit_index];
        let file = &self.files[unit.file];
        let Layout::Scalars { categorical, .. } = &file.layout else {
            return Ok(());
        };
        if categorical.is_empty() {
            return Ok(());
        }
        let bytes = self.unit_bytes(&unit)?;
        self.check_pages(&unit, &bytes)?;
        // Only the categorical columns are decoded (their pages alone are touched), and the
        // label when the rows with a null label are left out.
        let arrow = file.metadata.schema();
        let label = self
            .drop_null_labels
            .then(|| arrow.index_of(&self.schema.label).ok())
            .flatten();
        let roots = categorical
            .iter()
            .filter_map(|c| arrow.index_of(&c.name).ok())
            .chain(label);
        let mask = ProjectionMask::roots(file.metadata.parquet_schema(), roots);
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, file.metadata.clone())
                .with_projection(mask)
                .with_row_groups(vec![unit.index_in_file])
                .with_batch_size(COUNT_BATCH_ROWS)
                .build()
                .map_err(|e| self.corrupt(&unit, e))?;
        for batch in reader {
            let mut batch = batch.map_err(|e| self.corrupt(&unit, e))?;
            if label.is_some() {
                batch =
                    labelled_rows(batch, &self.schema.label).map_err(|e| self.corrupt(&unit, e))?;
            }
            count_categorical(categorical, &batch, counts);
        }
        self.release(&unit);
        Ok(())
    }
}

/// The rows of `batch` whose `label` is not null (all of them when it has no nulls).
fn labelled_rows(
    batch: RecordBatch,
    label: &str,
) -> std::result::Result<RecordBatch, arrow_schema::ArrowError> {
    let Some(nulls) = batch.column_by_name(label).and_then(|c| c.logical_nulls()) else {
        return Ok(batch);
    };
    let keep = BooleanArray::new(nulls.inner().clone(), None);
    arrow_select::filter::filter_record_batch(&batch, &keep)
}

#[cfg(test)]
mod tests {
    use arrow_array::{Float32Array, StringArray};
    use parquet::arrow::ArrowWriter;

    use super::*;
    use crate::data::categorical::Categorical;
    use crate::data::sketch::sketch_capacity;

    #[test]
    fn categorical_string_columns_are_read_as_dictionaries_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let batch = RecordBatch::try_from_iter(vec![
            (
                "city",
                Arc::new(StringArray::from(vec![
                    Some("b"),
                    None,
                    Some("a"),
                    Some("b"),
                ])) as arrow_array::ArrayRef,
            ),
            (
                "label",
                Arc::new(Float32Array::from(vec![0f32, 1., 0., 1.])),
            ),
        ])
        .unwrap();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None)
                .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let spec = ColumnSpec {
            categorical: Categorical {
                columns: CategoricalColumns::Auto,
                encoding: Encoding::Unfitted,
            },
            ..ColumnSpec::default()
        };
        let source = ParquetSource::open(&[path], &spec).unwrap();
        assert!(matches!(
            source.files[0].metadata.schema().field(0).data_type(),
            DataType::Dictionary(..)
        ));
        let mut counts = CategoryCounts::new(sketch_capacity(1));
        source.count_unit(0, &mut counts).unwrap();
        let city = counts.column("city");
        assert_eq!(
            city.values.top(5),
            [("b".to_string(), 2), ("a".to_string(), 1)]
        );
        assert_eq!(city.nulls, 1);
    }
}
