//! Schema drift by a missing column: a feature column named in «features» that some files of
//! a dataset lack (a column added later). Without a fill value for it that is an error naming
//! those files; with one («fill_nulls») the column reads as null in them, so its fill value
//! (and, with «null_indicators», a 1 in its `COL_is_null` feature) is what those rows get.
//!
//! [`AbsentColumns::find`] checks the opened footers before any column is resolved; the
//! resolution (`columns.rs`) places an absent column past the projected batch's columns, and
//! [`with_absent_columns`] gives the decoder those positions as all-null float32 columns. A
//! column no file has, and the label, stay the errors they are (a missing label is never
//! filled, «drop_null_labels» included: those rows would have no target at all).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions, new_null_array};
use arrow_schema::{DataType, Field, SchemaRef};

use crate::data::schema::{ColumnSpec, FeatureSelection};
use crate::error::{Error, Result};

/// The named feature columns that some (not all) files lack, with how many lack each.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct AbsentColumns {
    /// `(column, files without it)`, in «features» order.
    pub(super) columns: Vec<(String, usize)>,
}

impl AbsentColumns {
    /// Finds the named feature columns missing from some of the files (`schemas` in the
    /// order of `paths`). One that has no fill value in `spec` is an error naming the files
    /// without it; one that every file lacks is left to the resolution (the error naming the
    /// first file it always was).
    pub(super) fn find(
        paths: &[PathBuf],
        schemas: &[SchemaRef],
        spec: &ColumnSpec,
    ) -> Result<AbsentColumns> {
        let FeatureSelection::Columns(names) = &spec.features else {
            return Ok(AbsentColumns::default());
        };
        let mut columns = Vec::new();
        for name in names {
            let lacking: Vec<&PathBuf> = paths
                .iter()
                .zip(schemas)
                .filter(|(_, schema)| schema.index_of(name).is_err())
                .map(|(path, _)| path)
                .collect();
            if lacking.is_empty() || lacking.len() == paths.len() {
                continue;
            }
            if spec.missing.fill_of(name).is_none() {
                return Err(Error::AbsentColumn {
                    column: name.clone(),
                    files: lacking.into_iter().cloned().collect(),
                    num_files: paths.len(),
                });
            }
            columns.push((name.clone(), lacking.len()));
        }
        Ok(AbsentColumns { columns })
    }

    /// True when `name` may be missing from a file (it is in some other).
    pub(super) fn allows(&self, name: &str) -> bool {
        self.columns.iter().any(|(c, _)| c == name)
    }
}

/// `batch` with all-null float32 columns appended up to position `max(positions)`, when a
/// position is past its columns (a used column this file lacks); else `batch` itself.
pub(super) fn with_absent_columns<'a>(
    batch: &'a RecordBatch,
    positions: &[usize],
) -> Cow<'a, RecordBatch> {
    let width = positions.iter().map(|p| p + 1).max().unwrap_or(0);
    if width <= batch.num_columns() {
        return Cow::Borrowed(batch);
    }
    let n = batch.num_rows();
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    let mut columns = batch.columns().to_vec();
    for k in batch.num_columns()..width {
        fields.push(Arc::new(Field::new(
            format!("__absent_{k}"),
            DataType::Float32,
            true,
        )));
        columns.push(new_null_array(&DataType::Float32, n));
    }
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    let options = RecordBatchOptions::new().with_row_count(Some(n));
    Cow::Owned(
        RecordBatch::try_new_with_options(schema, columns, &options)
            .expect("null columns of the batch's length"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Float64Array};
    use arrow_schema::Schema as ArrowSchema;

    fn schema(names: &[&str]) -> SchemaRef {
        Arc::new(ArrowSchema::new(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Float64, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn spec(features: &[&str], fill: bool) -> ColumnSpec {
        let mut spec = ColumnSpec {
            features: FeatureSelection::Columns(features.iter().map(|s| s.to_string()).collect()),
            ..ColumnSpec::default()
        };
        if fill {
            spec.missing.fill = features
                .iter()
                .map(|c| crate::data::schema::ColumnFill {
                    column: c.to_string(),
                    value: 0.0,
                })
                .collect();
        }
        spec
    }

    #[test]
    fn a_column_some_files_lack_needs_a_fill_and_names_those_files() {
        let paths = [PathBuf::from("a"), PathBuf::from("b"), PathBuf::from("c")];
        let schemas = [
            schema(&["x", "y", "label"]),
            schema(&["x", "label"]),
            schema(&["x", "y", "label"]),
        ];
        let err = AbsentColumns::find(&paths, &schemas, &spec(&["x", "y"], false)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`y`") && text.contains("1 of 3"), "{text}");
        assert!(text.contains('b') && text.contains("fill_nulls"), "{text}");
        let found = AbsentColumns::find(&paths, &schemas, &spec(&["x", "y"], true)).unwrap();
        assert_eq!(found.columns, vec![("y".to_string(), 1)]);
        assert!(found.allows("y") && !found.allows("x"));
        // A column no file has is the resolution's error, fill or not.
        let none = AbsentColumns::find(&paths, &schemas, &spec(&["z"], true)).unwrap();
        assert!(none.columns.is_empty());
    }

    #[test]
    fn absent_positions_read_as_null_columns() {
        let batch = RecordBatch::try_new(
            schema(&["x"]),
            vec![Arc::new(Float64Array::from(vec![1.0, 2.0]))],
        )
        .unwrap();
        assert!(matches!(
            with_absent_columns(&batch, &[0]),
            Cow::Borrowed(_)
        ));
        let wide = with_absent_columns(&batch, &[0, 2]);
        assert_eq!(wide.num_columns(), 3);
        assert_eq!(wide.column(2).null_count(), 2);
        assert_eq!(wide.column(2).data_type(), &DataType::Float32);
    }
}
