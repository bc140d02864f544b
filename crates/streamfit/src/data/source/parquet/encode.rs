//! Categorical columns of a record batch: written as one-hot or hashed features straight into
//! the row-major block ([`encode_categorical`]), or counted for the vocabulary pass
//! ([`count_categorical`], a unit at a time by `categories.rs`).
//!
//! A one-hot feature is one store per row: the row's span of the column is zeroed, then 1 is
//! stored at the value's feature. String columns are read as Arrow dictionaries
//! (`categories.rs`), so a dictionary entry is looked up once per batch, when a row
//! first uses it, and each row then indexes that map by its key; integer and boolean columns
//! look each row's value up by value.
//! Which columns, and their encoders, `columns.rs` resolves; the names and layout of the
//! features are [`crate::data::categorical`]'s.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::data::categorical::{NULL, Vocabulary, hash_bucket};
use crate::data::sketch::CategoryCounts;

/// One categorical column of a layout: where it is in a projected batch and how it becomes
/// features.
#[derive(Debug, Clone)]
pub(super) struct CategoricalLayout {
    pub(super) name: String,
    /// Position in the projected record batch.
    pub(super) position: usize,
    pub(super) encoder: Encoder,
}

/// How a categorical column's values become features.
#[derive(Debug, Clone)]
pub(super) enum Encoder {
    /// Read to be counted only (no feature).
    Count,
    /// One-hot: features `offset..offset + width`.
    OneHot(OneHot),
    /// Hashed into the shared features `offset..offset + buckets`.
    Hash { offset: usize, buckets: u32 },
}

/// A one-hot column's lookup: each vocabulary value's feature (relative to `offset`).
#[derive(Debug, Clone)]
pub(super) struct OneHot {
    offset: usize,
    width: usize,
    text: HashMap<String, usize>,
    integers: HashMap<i128, usize>,
    other: usize,
    null: usize,
}

impl OneHot {
    /// The lookup of `vocabulary`, whose features start at `offset`.
    pub(super) fn new(vocabulary: &Vocabulary, offset: usize) -> Self {
        let text: HashMap<String, usize> = vocabulary
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i))
            .collect();
        let integers = vocabulary
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.parse::<i128>().ok().map(|n| (n, i)))
            .collect();
        let other = vocabulary.values.len();
        OneHot {
            offset,
            width: vocabulary.feature_names().len(),
            text,
            integers,
            other,
            null: if vocabulary.null { other + 1 } else { other },
        }
    }

    /// Its features.
    pub(super) fn width(&self) -> usize {
        self.width
    }

    fn of_text(&self, value: &str) -> usize {
        self.text.get(value).copied().unwrap_or(self.other)
    }
}

/// A column's value as the encoders see it.
enum Value<'a> {
    Null,
    Text(&'a str),
    Integer(i128),
}

/// Calls `each(row, value)` for every row of `array` (a string, dictionary of strings,
/// boolean or integer column: `columns.rs` admits no other). A dictionary's entries are
/// converted once, through `entry`, whose results `each` receives as `Ok`.
fn for_each_value<T: Clone>(
    array: &dyn Array,
    entry: &mut dyn FnMut(Value<'_>) -> T,
    each: &mut dyn FnMut(usize, Result<T, Value<'_>>),
) {
    let n = array.len();
    macro_rules! rows {
        ($get:expr) => {
            for i in 0..n {
                if array.is_null(i) {
                    each(i, Err(Value::Null));
                } else {
                    each(i, Err($get(i)));
                }
            }
        };
    }
    macro_rules! integers {
        ($type:ty) => {{
            let values = array.as_primitive::<$type>().values();
            rows!(|i: usize| Value::Integer(i128::from(values[i])))
        }};
    }
    match array.data_type() {
        DataType::Utf8 => {
            let s = array.as_string::<i32>();
            rows!(|i| Value::Text(s.value(i)))
        }
        DataType::LargeUtf8 => {
            let s = array.as_string::<i64>();
            rows!(|i| Value::Text(s.value(i)))
        }
        DataType::Utf8View => {
            let s = array.as_string_view();
            rows!(|i| Value::Text(s.value(i)))
        }
        DataType::Boolean => {
            let b = array.as_boolean();
            rows!(|i| Value::Text(if b.value(i) { "true" } else { "false" }))
        }
        DataType::Int8 => integers!(Int8Type),
        DataType::Int16 => integers!(Int16Type),
        DataType::Int32 => integers!(Int32Type),
        DataType::Int64 => integers!(Int64Type),
        DataType::UInt8 => integers!(UInt8Type),
        DataType::UInt16 => integers!(UInt16Type),
        DataType::UInt32 => integers!(UInt32Type),
        DataType::UInt64 => integers!(UInt64Type),
        DataType::Dictionary(..) => {
            let Some(dictionary) = array.as_any_dictionary_opt() else {
                return;
            };
            let values = dictionary.values();
            // Each entry is converted once, when a row first uses it.
            let mut memo: Vec<Option<T>> = vec![None; values.len()];
            let keys = dictionary.normalized_keys();
            for (i, &key) in keys.iter().enumerate().take(n) {
                let slot = match memo.get_mut(key) {
                    Some(slot) if array.is_valid(i) => slot,
                    _ => {
                        each(i, Err(Value::Null));
                        continue;
                    }
                };
                let converted = match slot {
                    Some(converted) => converted.clone(),
                    None => slot
                        .insert(entry(dictionary_entry(values.as_ref(), key)))
                        .clone(),
                };
                each(i, Ok(converted));
            }
        }
        _ => {}
    }
}

/// Entry `k` of a dictionary's values (strings; anything else reads as null).
fn dictionary_entry(values: &dyn Array, k: usize) -> Value<'_> {
    if values.is_null(k) {
        return Value::Null;
    }
    match values.data_type() {
        DataType::Utf8 => Value::Text(values.as_string::<i32>().value(k)),
        DataType::LargeUtf8 => Value::Text(values.as_string::<i64>().value(k)),
        DataType::Utf8View => Value::Text(values.as_string_view().value(k)),
        _ => Value::Null,
    }
}

/// Writes the features of `columns` for every row of `batch` into the row-major `features`
/// (`d` per row): zeroes each row's categorical spans, then stores 1 at each one-hot value's
/// feature and adds 1 to each hashed value's bucket.
pub(super) fn encode_categorical(
    columns: &[CategoricalLayout],
    batch: &RecordBatch,
    features: &mut [f32],
    d: usize,
) {
    let n = batch.num_rows();
    let rows = &mut features[..n * d];
    for column in columns {
        let span = match &column.encoder {
            Encoder::Count => continue,
            Encoder::OneHot(one_hot) => one_hot.offset..one_hot.offset + one_hot.width,
            Encoder::Hash { offset, buckets } => *offset..*offset + *buckets as usize,
        };
        for row in rows.chunks_exact_mut(d) {
            row[span.clone()].fill(0.0);
        }
    }
    for column in columns {
        let array = batch.column(column.position);
        match &column.encoder {
            Encoder::Count => {}
            Encoder::OneHot(one_hot) => {
                let slot = |value: Value<'_>| match value {
                    Value::Null => one_hot.null,
                    Value::Text(s) => one_hot.of_text(s),
                    Value::Integer(v) => one_hot.integers.get(&v).copied().unwrap_or(one_hot.other),
                };
                for_each_value(array.as_ref(), &mut |v| slot(v), &mut |i, value| {
                    let k = value.unwrap_or_else(slot);
                    rows[i * d + one_hot.offset + k] = 1.0;
                });
            }
            Encoder::Hash { offset, buckets } => {
                let bucket = |value: Value<'_>| {
                    let mut digits = [0u8; 40];
                    let text = match value {
                        Value::Null => NULL,
                        Value::Text(s) => s,
                        Value::Integer(v) => integer_text(v, &mut digits),
                    };
                    hash_bucket(&column.name, text, *buckets) as usize
                };
                for_each_value(array.as_ref(), &mut |v| bucket(v), &mut |i, value| {
                    let b = value.unwrap_or_else(bucket);
                    rows[i * d + offset + b] += 1.0;
                });
            }
        }
    }
}

/// `v` in decimal, written into `digits`.
fn integer_text(v: i128, digits: &mut [u8; 40]) -> &str {
    let mut magnitude = v.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    std::str::from_utf8(&digits[at..]).expect("ascii digits")
}

/// Counts the values of `columns` (found by name) in `batch` into `counts` (one-hot and hashed columns alike:
/// the pass that fits vocabularies reads columns that give no feature yet). A dictionary
/// column's rows are tallied per entry first, then added entry by entry.
pub(super) fn count_categorical(
    columns: &[CategoricalLayout],
    batch: &RecordBatch,
    counts: &mut CategoryCounts,
) {
    for column in columns {
        let Some(array) = batch.column_by_name(&column.name) else {
            continue;
        };
        let counted = counts.column(&column.name);
        if let Some(dictionary) = array.as_any_dictionary_opt() {
            // Rows are tallied per entry, then each entry used is added once.
            let values = dictionary.values();
            let mut tally = vec![0u64; values.len()];
            for (i, &key) in dictionary.normalized_keys().iter().enumerate() {
                match tally.get_mut(key) {
                    Some(t) if array.is_valid(i) => *t += 1,
                    _ => counted.nulls += 1,
                }
            }
            for (k, &n) in tally.iter().enumerate().filter(|(_, n)| **n > 0) {
                match dictionary_entry(values.as_ref(), k) {
                    Value::Text(text) => counted.add(text, n),
                    _ => counted.nulls += n,
                }
            }
            continue;
        }
        for_each_value(array.as_ref(), &mut |_| (), &mut |_, value| {
            let mut digits = [0u8; 40];
            match value {
                Ok(()) | Err(Value::Null) => counted.nulls += 1,
                Err(Value::Text(s)) => counted.add(s, 1),
                Err(Value::Integer(v)) => counted.add(integer_text(v, &mut digits), 1),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_in_decimal() {
        let mut digits = [0u8; 40];
        for v in [
            0,
            7,
            -3,
            1234567890,
            i128::from(i64::MIN),
            i128::from(u64::MAX),
        ] {
            assert_eq!(integer_text(v, &mut digits), v.to_string());
        }
    }
}
