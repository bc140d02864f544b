//! Decoding arrow record batches into row-major rows: the typed views of a column
//! ([`Values`]: numbers, and the stored integers of decimals, timestamps, dates and durations,
//! divided in f64 as [`cast_of`] says before the f32 cast, and centred in f64 where the spec
//! says), the eight-column float32 transpose, list columns, the categorical
//! columns' features (`encode.rs`), and the checks that turn a
//! null, a NaN or infinity, a wrong list length or an unsupported type into an error naming
//! the file, row group, row and column ([`DecodeContext`]).
//!
//! It is handed batches already read; how a unit is read (the page path or the arrow reader)
//! is `read.rs`'s job, which units to read the pipeline's.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType,
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, BooleanArray, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use crate::data::schema::Schema;
use crate::data::source::parquet::absent::with_absent_columns;
use crate::data::source::parquet::columns::{Layout, cast_of};
use crate::data::source::parquet::encode::encode_categorical;
use crate::data::transpose::transpose8;
use crate::error::{Error, Result};

/// A 256-bit decimal's stored integer.
type I256 = <Decimal256Type as ArrowPrimitiveType>::Native;

/// A float16 value.
type F16 = <Float16Type as ArrowPrimitiveType>::Native;

/// A column's values as a typed slice (offset already applied). The `Scaled*` views hold
/// stored integers that become values when divided in f64 (decimals, timestamps, dates and
/// durations: see [`cast_of`]).
pub(super) enum Values<'a> {
    F16(&'a [F16]),
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
    Scaled32(&'a [i32], f64),
    Scaled64(&'a [i64], f64),
    Scaled128(&'a [i128], f64),
    Scaled256(&'a [I256], f64),
}

/// A 256-bit integer as the nearest f64 (exact below 2^53; rounded twice above 2^127).
fn i256_to_f64(v: I256) -> f64 {
    match v.to_i128() {
        Some(small) => small as f64,
        None => {
            let (low, high) = v.to_parts();
            high as f64 * 2f64.powi(128) + low as f64
        }
    }
}

impl<'a> Values<'a> {
    /// The typed view of `array`; `None` for a type streamfit does not cast to f32.
    pub(super) fn of(array: &'a dyn Array) -> Option<Self> {
        let divisor = cast_of(array.data_type())?.divisor;
        macro_rules! view {
            ($variant:ident, $type:ty) => {
                Values::$variant(array.as_primitive::<$type>().values(), divisor)
            };
        }
        Some(match array.data_type() {
            DataType::Float16 => Values::F16(array.as_primitive::<Float16Type>().values()),
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
            DataType::Decimal32(..) => view!(Scaled32, Decimal32Type),
            DataType::Decimal64(..) => view!(Scaled64, Decimal64Type),
            DataType::Decimal128(..) => view!(Scaled128, Decimal128Type),
            DataType::Decimal256(..) => view!(Scaled256, Decimal256Type),
            DataType::Date32 => view!(Scaled32, Date32Type),
            DataType::Date64 => view!(Scaled64, Date64Type),
            DataType::Timestamp(TimeUnit::Second, _) => view!(Scaled64, TimestampSecondType),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                view!(Scaled64, TimestampMillisecondType)
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                view!(Scaled64, TimestampMicrosecondType)
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                view!(Scaled64, TimestampNanosecondType)
            }
            DataType::Duration(TimeUnit::Second) => view!(Scaled64, DurationSecondType),
            DataType::Duration(TimeUnit::Millisecond) => view!(Scaled64, DurationMillisecondType),
            DataType::Duration(TimeUnit::Microsecond) => view!(Scaled64, DurationMicrosecondType),
            DataType::Duration(TimeUnit::Nanosecond) => view!(Scaled64, DurationNanosecondType),
            _ => return None,
        })
    }

    /// Value `i` cast to f32, as training sees it.
    pub(super) fn get(&self, i: usize) -> f32 {
        match self {
            Values::F16(s) => s[i].to_f32(),
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
            Values::Scaled32(s, divisor) => (f64::from(s[i]) / divisor) as f32,
            Values::Scaled64(s, divisor) => (s[i] as f64 / divisor) as f32,
            Values::Scaled128(s, divisor) => (s[i] as f64 / divisor) as f32,
            Values::Scaled256(s, divisor) => (i256_to_f64(s[i]) / divisor) as f32,
        }
    }

    /// Value `i` in f64, before any rounding to f32 (the scale check's footer ranges).
    pub(super) fn value(&self, i: usize) -> f64 {
        match self {
            Values::F16(s) => f64::from(s[i].to_f32()),
            Values::F32(s) => f64::from(s[i]),
            Values::F64(s) => s[i],
            Values::I8(s) => f64::from(s[i]),
            Values::I16(s) => f64::from(s[i]),
            Values::I32(s) => f64::from(s[i]),
            Values::I64(s) => s[i] as f64,
            Values::U8(s) => f64::from(s[i]),
            Values::U16(s) => f64::from(s[i]),
            Values::U32(s) => f64::from(s[i]),
            Values::U64(s) => s[i] as f64,
            Values::Bool(b) => f64::from(u8::from(b.value(i))),
            Values::Scaled32(s, divisor) => f64::from(s[i]) / divisor,
            Values::Scaled64(s, divisor) => s[i] as f64 / divisor,
            Values::Scaled128(s, divisor) => s[i] as f64 / divisor,
            Values::Scaled256(s, divisor) => i256_to_f64(s[i]) / divisor,
        }
    }

    /// Writes values `rows` less `centre`, subtracted in f64 before the f32 cast, like
    /// [`Values::scatter`] (a large-magnitude column keeps its resolution).
    fn scatter_centred(
        &self,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
        stride: usize,
        offset: usize,
        centre: f64,
    ) -> bool {
        let mut bad = false;
        for (dst, i) in out.chunks_exact_mut(stride).zip(rows) {
            let value = (self.value(i) - centre) as f32;
            bad |= !value.is_finite();
            dst[offset] = value;
        }
        bad
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
            Values::F16(s) => copy!(s, |v: F16| v.to_f32()),
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
            Values::Scaled32(s, divisor) => copy!(s, |v: i32| (f64::from(v) / divisor) as f32),
            Values::Scaled64(s, divisor) => copy!(s, |v: i64| (v as f64 / divisor) as f32),
            Values::Scaled128(s, divisor) => copy!(s, |v: i128| (v as f64 / divisor) as f32),
            Values::Scaled256(s, divisor) => copy!(s, |v: I256| (i256_to_f64(v) / divisor) as f32),
        }
        bad
    }
}

/// Rows per tile of the column-to-row transpose: a tile of 64 features (64 KiB) stays in L2.
const TILE_ROWS: usize = 256;

/// The next eight columns, when all eight are float32 and none is centred.
fn f32_block<'a>(columns: &[Values<'a>], centre: &[f64]) -> Option<[&'a [f32]; 8]> {
    if columns.len() < 8 || centre.iter().take(8).any(|&c| c != 0.0) {
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

/// Writes 1 into `targets` where the label equals `positive` and 0 elsewhere: a string
/// compared as text, a boolean with `true`/`false` (or `1`/`0`), any other number by value
/// (as f32). Returns false for a type that cannot be compared. Nulls are checked before.
fn positive_labels(array: &dyn Array, positive: &str, targets: &mut [f32]) -> bool {
    let mut set = |is_positive: &dyn Fn(usize) -> bool| {
        for (i, t) in targets.iter_mut().enumerate() {
            *t = f32::from(u8::from(is_positive(i)));
        }
    };
    match array.data_type() {
        DataType::Utf8 => set(&|i| array.as_string::<i32>().value(i) == positive),
        DataType::LargeUtf8 => set(&|i| array.as_string::<i64>().value(i) == positive),
        DataType::Utf8View => set(&|i| array.as_string_view().value(i) == positive),
        DataType::Dictionary(..) => {
            let Some(dictionary) = array.as_any_dictionary_opt() else {
                return false;
            };
            let values = dictionary.values();
            let matches: Vec<bool> = match values.data_type() {
                DataType::Utf8 => {
                    let s = values.as_string::<i32>();
                    (0..s.len())
                        .map(|k| s.is_valid(k) && s.value(k) == positive)
                        .collect()
                }
                DataType::LargeUtf8 => {
                    let s = values.as_string::<i64>();
                    (0..s.len())
                        .map(|k| s.is_valid(k) && s.value(k) == positive)
                        .collect()
                }
                _ => return false,
            };
            let keys = dictionary.normalized_keys();
            set(&|i| matches.get(keys[i]).copied().unwrap_or(false));
        }
        DataType::Boolean => {
            let want = matches!(positive.trim(), "true" | "1");
            set(&|i| array.as_boolean().value(i) == want);
        }
        _ => {
            let (Some(values), Ok(want)) = (Values::of(array), positive.trim().parse::<f64>())
            else {
                return false;
            };
            let want = want as f32;
            set(&|i| values.get(i) == want);
        }
    }
    true
}

/// Writes each filled column's fill value over its nulls and NaN in the row-major `features`
/// (`d` per row), and the columns' indicator features (1 where the value was missing, else 0)
/// after the columns' own. Infinity is left for the finiteness check.
fn fill_missing(
    batch: &RecordBatch,
    cols: &[usize],
    fill: &[Option<f32>],
    indicators: &[usize],
    features: &mut [f32],
    d: usize,
) {
    let n = batch.num_rows();
    for (j, value) in fill.iter().enumerate() {
        let Some(value) = *value else { continue };
        let array = batch.column(cols[j]);
        let indicator = indicators
            .iter()
            .position(|&c| c == j)
            .map(|k| cols.len() + k);
        for (i, row) in features.chunks_exact_mut(d).take(n).enumerate() {
            let missing = array.is_null(i) || row[j].is_nan();
            if missing {
                row[j] = value;
            }
            if let Some(p) = indicator {
                row[p] = f32::from(u8::from(missing));
            }
        }
    }
}

/// What a decode error needs to name its place.
pub(super) struct DecodeContext<'a> {
    pub(super) path: &'a Path,
    pub(super) row_group: usize,
    pub(super) schema: &'a Schema,
    /// The label value that is 1 (every other is 0), when «positive_label» is set.
    pub(super) positive_label: Option<&'a str>,
    /// Rows with a null label are left out ([`DecodeContext::decode_dropping`]).
    pub(super) drop_null_labels: bool,
    /// «weight_column», whose value follows each row's features (a row is then one value
    /// wider than the schema's features).
    pub(super) weight_column: Option<&'a str>,
}

impl DecodeContext<'_> {
    /// Decodes one record batch into row-major `features` and `targets` (already sized).
    /// `first_row` is the batch's first row within the row group, for error messages.
    pub(super) fn decode(
        &self,
        layout: &Layout,
        batch: &RecordBatch,
        first_row: u64,
        features: &mut [f32],
        targets: &mut [f32],
    ) -> Result<()> {
        let n = batch.num_rows();
        let label_index = match layout {
            Layout::Scalars { label, .. } | Layout::List { label, .. } => *label,
        };
        match label_index {
            Some(index) => {
                let label = batch.column(index);
                if !self.drop_null_labels {
                    self.check_nulls(label, &self.schema.label, first_row)?;
                }
                if let Some(positive) = self.positive_label {
                    if !positive_labels(label.as_ref(), positive, &mut targets[..n]) {
                        return Err(self.unsupported(label, &self.schema.label));
                    }
                    return self.decode_features(layout, batch, first_row, features);
                }
                let label_values = Values::of(label.as_ref())
                    .ok_or_else(|| self.unsupported(label, &self.schema.label))?;
                let mut bad = label_values.scatter(0..n, targets, 1, 0);
                if label.null_count() > 0 {
                    // Rows left out by `decode_dropping`: whatever a null slot held is not a label.
                    for (i, t) in targets[..n].iter_mut().enumerate() {
                        if label.is_null(i) {
                            *t = 0.0;
                        }
                    }
                    bad = targets[..n].iter().any(|t| !t.is_finite());
                }
                if bad {
                    self.check_finite(targets, 1, first_row, |_| self.schema.label.clone())?;
                }
            }
            None => targets[..n].fill(0.0),
        }
        self.decode_features(layout, batch, first_row, features)
    }

    /// Decodes one record batch like [`DecodeContext::decode`], then moves the rows whose
    /// label is null out (the kept rows close up, in order); returns the rows kept.
    pub(super) fn decode_dropping(
        &self,
        layout: &Layout,
        batch: &RecordBatch,
        first_row: u64,
        features: &mut [f32],
        targets: &mut [f32],
    ) -> Result<usize> {
        self.decode(layout, batch, first_row, features, targets)?;
        let n = batch.num_rows();
        let label = match layout {
            Layout::Scalars { label, .. } | Layout::List { label, .. } => *label,
        };
        let Some(label) = label.map(|index| batch.column(index)) else {
            return Ok(n);
        };
        if label.null_count() == 0 {
            return Ok(n);
        }
        let d = self.row_width();
        let mut kept = 0;
        for i in 0..n {
            if label.is_valid(i) {
                if kept != i {
                    features.copy_within(i * d..(i + 1) * d, kept * d);
                    targets[kept] = targets[i];
                }
                kept += 1;
            }
        }
        Ok(kept)
    }

    /// Decodes the feature columns of one record batch into row-major `features`.
    fn decode_features(
        &self,
        layout: &Layout,
        batch: &RecordBatch,
        first_row: u64,
        features: &mut [f32],
    ) -> Result<()> {
        let n = batch.num_rows();
        let d = self.row_width();
        // Every conversion reports NaN/inf as it writes; only then is the slow search run.
        let mut any_bad = false;
        match layout {
            Layout::Scalars {
                features: cols,
                fill,
                indicators,
                categorical,
                centre,
                weight,
                ..
            } => {
                // A column this file lacks reads as null (its fill value).
                let batch = with_absent_columns(batch, cols);
                let batch: &RecordBatch = &batch;
                let mut columns = Vec::with_capacity(cols.len());
                for (j, &c) in cols.iter().enumerate() {
                    let array = batch.column(c);
                    let name = &self.schema.feature_names[j];
                    if fill[j].is_none() {
                        self.check_nulls(array, name, first_row)?;
                    }
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
                        if let Some(block) = f32_block(&columns[j..], &centre[j..]) {
                            any_bad |= transpose8(block, start..end, tile, d, j);
                            j += 8;
                        } else if centre[j] != 0.0 {
                            any_bad |=
                                columns[j].scatter_centred(start..end, tile, d, j, centre[j]);
                            j += 1;
                        } else {
                            any_bad |= columns[j].scatter(start..end, tile, d, j);
                            j += 1;
                        }
                    }
                }
                fill_missing(batch, cols, fill, indicators, features, d);
                encode_categorical(categorical, batch, features, d);
                if let Some(w) = weight {
                    self.decode_weight(batch.column(*w), first_row, features, d)?;
                }
            }
            Layout::List { column, len, .. } => {
                any_bad = self.decode_list(batch.column(*column), *len, first_row, features)?;
            }
        }
        if any_bad {
            self.check_finite(features, d, first_row, |j| self.value_name(j))?;
        }
        Ok(())
    }

    /// Values per decoded row: the features, then the weight when one is read.
    fn row_width(&self) -> usize {
        self.schema.num_features() + usize::from(self.weight_column.is_some())
    }

    /// The column of value `j` of a decoded row: a feature, or (past them) the weight.
    fn value_name(&self, j: usize) -> String {
        match self.schema.feature_names.get(j) {
            Some(name) => name.clone(),
            None => self.weight_column.unwrap_or_default().to_string(),
        }
    }

    /// Writes each row's weight after its features (the last of `d` values per row), cast
    /// like a feature; a null, NaN, infinite or negative weight is an error naming its row.
    fn decode_weight(
        &self,
        array: &ArrayRef,
        first_row: u64,
        features: &mut [f32],
        d: usize,
    ) -> Result<()> {
        let name = self.weight_column.unwrap_or_default();
        let n = array.len();
        let bad = |i: usize, value: String| Error::BadWeight {
            file: self.path.to_path_buf(),
            row_group: self.row_group,
            row: first_row + i as u64,
            column: name.to_string(),
            value,
        };
        if array.null_count() > 0 {
            let i = (0..n).find(|&i| array.is_null(i)).unwrap_or(0);
            return Err(bad(i, "null".to_string()));
        }
        let values = Values::of(array.as_ref()).ok_or_else(|| self.unsupported(array, name))?;
        values.scatter(0..n, features, d, d - 1);
        let weights = features.chunks_exact(d).take(n).map(|row| row[d - 1]);
        for (i, w) in weights.enumerate() {
            // Also false for NaN.
            if !(w >= 0.0 && w.is_finite()) {
                return Err(bad(i, w.to_string()));
            }
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
    pub(super) fn check_finite(
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

    pub(super) fn unsupported(&self, array: &dyn Array, column: &str) -> Error {
        Error::UnsupportedType {
            file: self.path.to_path_buf(),
            column: column.to_string(),
            data_type: array.data_type().to_string(),
            list_expected: false,
        }
    }
}
