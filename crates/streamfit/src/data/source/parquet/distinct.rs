//! Distinct values of columns training does not read, estimated from the first unit.
//!
//! `train` names every unused column with the reason; for a string column the number of its
//! distinct values says whether one-hot encoding or hashing suits it. No pass over the data
//! is made for that: only the first unit's chunks of those columns are read, each value goes
//! into a HyperLogLog sketch ([`DistinctEstimate`]), and the figure is a lower bound of the
//! dataset's distinct count. Nothing here decodes features.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::data::sketch::DistinctEstimate;
use crate::data::source::parquet::source::ParquetSource;
use crate::error::Result;

/// Rows per record batch of the count.
const BATCH_ROWS: usize = 8_192;

impl ParquetSource {
    /// The estimated distinct values of each of `columns` (string or dictionary columns of the
    /// first file) in the dataset's first unit; `None` for a column that is neither, or is
    /// absent ([`Source::first_unit_distinct`](crate::data::source::Source::first_unit_distinct)).
    pub(super) fn distinct_in_first_unit(&self, columns: &[String]) -> Result<Vec<Option<u64>>> {
        let mut out = vec![None; columns.len()];
        let Some(unit) = self.units.first().copied() else {
            return Ok(out);
        };
        let file = &self.files[unit.file];
        let arrow = file.metadata.schema();
        let countable: Vec<(usize, usize)> = columns
            .iter()
            .enumerate()
            .filter_map(|(k, name)| {
                let root = arrow.index_of(name).ok()?;
                is_countable(arrow.field(root).data_type()).then_some((k, root))
            })
            .collect();
        if countable.is_empty() {
            return Ok(out);
        }
        let parquet_schema = file.metadata.parquet_schema();
        let mask = ProjectionMask::roots(parquet_schema, countable.iter().map(|&(_, r)| r));
        let row_group = file.metadata.metadata().row_group(unit.index_in_file);
        let bytes = file
            .data
            .chunks([row_group], &mask, self.access.explicit())?;
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, file.metadata.clone())
                .with_projection(mask)
                .with_row_groups(vec![unit.index_in_file])
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| self.corrupt(&unit, e))?;
        let mut sketches = vec![DistinctEstimate::default(); countable.len()];
        for batch in reader {
            let batch = batch.map_err(|e| self.corrupt(&unit, e))?;
            // The projected columns come in schema order.
            let mut order: Vec<usize> = (0..countable.len()).collect();
            order.sort_by_key(|&i| countable[i].1);
            for (position, &i) in order.iter().enumerate() {
                add_values(batch.column(position), &mut sketches[i]);
            }
        }
        self.release(&unit);
        for ((k, _), sketch) in countable.iter().zip(&sketches) {
            out[*k] = Some(sketch.estimate());
        }
        Ok(out)
    }
}

/// Strings (any offset width or view) and dictionaries of strings.
fn is_countable(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(key, values) => {
            matches!(**values, DataType::Utf8 | DataType::LargeUtf8)
                && matches!(
                    **key,
                    DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
                )
        }
        _ => false,
    }
}

/// Adds every non-null value of a string or dictionary array to `sketch`.
fn add_values(array: &ArrayRef, sketch: &mut DistinctEstimate) {
    let add_strings = |values: &dyn Array, sketch: &mut DistinctEstimate, rows: &[usize]| {
        match values.data_type() {
            DataType::Utf8 => rows
                .iter()
                .for_each(|&i| sketch.add(values.as_string::<i32>().value(i))),
            DataType::LargeUtf8 => rows
                .iter()
                .for_each(|&i| sketch.add(values.as_string::<i64>().value(i))),
            DataType::Utf8View => rows
                .iter()
                .for_each(|&i| sketch.add(values.as_string_view().value(i))),
            _ => {}
        }
    };
    let present: Vec<usize> = (0..array.len()).filter(|&i| array.is_valid(i)).collect();
    if !matches!(array.data_type(), DataType::Dictionary(..)) {
        return add_strings(array.as_ref(), sketch, &present);
    }
    let dictionary = array.as_any_dictionary();
    let all_keys = dictionary.normalized_keys();
    let keys: Vec<usize> = present.iter().map(|&i| all_keys[i]).collect();
    let values = dictionary.values();
    add_strings(values.as_ref(), sketch, &keys);
}
