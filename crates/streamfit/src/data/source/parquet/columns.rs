//! Column resolution: which columns of a Parquet file are the features and the label, where
//! they sit in a projected record batch ([`Layout`]), what two files of one dataset must agree
//! on ([`UsedColumns`]), and how `inspect` describes each column.
//!
//! It reads only schemas, never data: decoding the resolved columns is `decode.rs`'s job, and
//! learning a variable list's length (which needs a row) is `files.rs`'s.

use std::path::Path;

use arrow_schema::{DataType, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::basic::{Compression, LogicalType};

use crate::data::schema::{ColumnSpec, FeatureSelection, Schema, indicator_name};
use crate::data::source::parquet::absent::AbsentColumns;
use crate::data::source::parquet::categories::{
    categorical_layouts, categorical_note, categorical_roots, is_text,
};
use crate::data::source::parquet::encode::CategoricalLayout;
use crate::data::source::parquet::preprocess::{
    resolve_centre, resolve_missing, resolve_weight, weight_is_a_feature,
};
use crate::data::source::{ColumnInfo, ColumnRole};
use crate::error::{Error, Result};

/// Where the used columns are in a projected record batch (positions, not names).
///
/// `label` is `None` only when the spec ignores the label (`predict`); the targets are then
/// zero.
///
/// A scalar layout's `fill` holds, per feature column, the value its nulls and NaN become
/// (`None`: a null is an error); `indicators` the feature columns (indices into `features`)
/// whose missing-value indicators follow the columns' features, in order; `categorical` the
/// categorical columns, whose features follow the indicators; `centre`, per feature column,
/// what is subtracted from its values in f64 before the f32 cast (0: nothing; its fill value
/// is centred already). A feature position past the
/// projected batch's columns is a column this file lacks (see `absent.rs`): it reads as null,
/// so its fill value is written.
#[derive(Debug, Clone)]
pub(super) enum Layout {
    Scalars {
        features: Vec<usize>,
        label: Option<usize>,
        fill: Vec<Option<f32>>,
        indicators: Vec<usize>,
        categorical: Vec<CategoricalLayout>,
        centre: Vec<f64>,
        weight: Option<usize>,
    },
    List {
        column: usize,
        len: usize,
        label: Option<usize>,
    },
}

/// The columns training reads from a file, with their types, and the feature count: what two
/// files of one dataset must agree on (other columns may differ). `absent` are the used
/// columns the file lacks (read as null), compared with nothing.
#[derive(Debug, PartialEq)]
pub(super) struct UsedColumns {
    columns: Vec<(String, DataType)>,
    num_features: usize,
    absent: Vec<String>,
}

impl UsedColumns {
    pub(super) fn new(schema: &SchemaRef, roots: &[usize], num_features: usize) -> Self {
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
            absent: Vec::new(),
        }
    }

    /// These columns, of a file that lacks the used columns `absent`.
    pub(super) fn with_absent(mut self, absent: Vec<String>) -> Self {
        self.absent = absent;
        self
    }

    /// True when a file with `other`'s used columns can be read as part of a dataset with
    /// these: the same columns in the same order, each of the same type or of one
    /// [`CastKind`]: numbers of any width, float, integer or decimal, or timestamps of any unit
    /// (schema drift across files: each file's values are cast to f32 from its own type).
    /// Columns one of the two files lacks are left out of the comparison.
    pub(super) fn agrees_with(&self, other: &UsedColumns) -> bool {
        let shared = |a: &UsedColumns, b: &UsedColumns| -> Vec<(String, DataType)> {
            a.columns
                .iter()
                .filter(|(name, _)| !b.absent.contains(name))
                .cloned()
                .collect()
        };
        let (mine, theirs) = (shared(self, other), shared(other, self));
        self.num_features == other.num_features
            && mine.len() == theirs.len()
            && mine.iter().zip(&theirs).all(|(a, b)| {
                a.0 == b.0
                    && (a.1 == b.1
                        || cast_of(&a.1).is_some_and(|cast| {
                            cast_of(&b.1).is_some_and(|other| other.kind == cast.kind)
                        }))
            })
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
        )?;
        if !self.absent.is_empty() {
            write!(f, " (missing here: {})", self.absent.join(", "))?;
        }
        Ok(())
    }
}

/// What a column's values mean once cast to a number: compared across the files of one
/// dataset (a timestamp column may change its unit from file to file, not become a count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CastKind {
    /// Floats, integers, booleans and decimals: the value itself.
    Number,
    /// Timestamps: seconds since the Unix epoch (any unit, any time zone: the stored instant).
    Timestamp,
    /// Dates: days since the Unix epoch.
    Date,
    /// Durations: seconds.
    Duration,
}

/// How one scalar column becomes a feature: its kind, and the divisor that turns a stored
/// integer into the value (`10^scale` for a decimal, `1e6` for microseconds, `86,400,000` for
/// a Date64's milliseconds; 1 for plain numbers). The division is done in f64, before the
/// value is rounded to f32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cast {
    pub(super) kind: CastKind,
    pub(super) divisor: f64,
}

/// The cast of a column type to one f32 feature; `None` for a type that is not one number
/// per row (strings, lists, structs, times of day, intervals).
pub(super) fn cast_of(data_type: &DataType) -> Option<Cast> {
    let seconds = |unit: &TimeUnit| match unit {
        TimeUnit::Second => 1.0,
        TimeUnit::Millisecond => 1e3,
        TimeUnit::Microsecond => 1e6,
        TimeUnit::Nanosecond => 1e9,
    };
    let cast = |kind, divisor| Some(Cast { kind, divisor });
    match data_type {
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Boolean => cast(CastKind::Number, 1.0),
        DataType::Decimal32(_, scale)
        | DataType::Decimal64(_, scale)
        | DataType::Decimal128(_, scale)
        | DataType::Decimal256(_, scale) => cast(CastKind::Number, 10f64.powi(i32::from(*scale))),
        DataType::Timestamp(unit, _) => cast(CastKind::Timestamp, seconds(unit)),
        DataType::Duration(unit) => cast(CastKind::Duration, seconds(unit)),
        DataType::Date32 => cast(CastKind::Date, 1.0),
        DataType::Date64 => cast(CastKind::Date, 86_400_000.0),
        _ => None,
    }
}

/// True for the column types cast to f32 as one feature (floats, integers, booleans,
/// decimals, timestamps, dates, durations).
pub(super) fn is_scalar_number(data_type: &DataType) -> bool {
    cast_of(data_type).is_some()
}

/// True for the label types «positive_label» can compare with: numbers, strings (any
/// offset width or view) and dictionaries of strings.
pub(super) fn is_label_value(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => {
            matches!(**values, DataType::Utf8 | DataType::LargeUtf8)
        }
        other => is_scalar_number(other),
    }
}

/// How `inspect` describes the cast of a feature or label column of `data_type` (empty for
/// float32, which is read as it is).
pub(super) fn cast_note(data_type: &DataType) -> String {
    let Some(cast) = cast_of(data_type) else {
        return String::new();
    };
    match (cast.kind, data_type) {
        (_, DataType::Float32) => String::new(),
        (CastKind::Number, DataType::Decimal32(_, scale))
        | (CastKind::Number, DataType::Decimal64(_, scale))
        | (CastKind::Number, DataType::Decimal128(_, scale))
        | (CastKind::Number, DataType::Decimal256(_, scale)) => {
            format!("cast {data_type} → value / 10^{scale} → f32")
        }
        (CastKind::Number, _) => format!("cast {data_type} → f32"),
        (CastKind::Timestamp, _) => {
            format!("cast {data_type} → seconds since the Unix epoch → f32")
        }
        (CastKind::Date, _) => format!("cast {data_type} → days since the Unix epoch → f32"),
        (CastKind::Duration, _) => format!("cast {data_type} → seconds → f32"),
    }
}

/// The feature names a resolution gives: scalar columns by name, or one list column (named
/// `column[i]` once its length is known).
pub(super) enum FeatureNames {
    Scalars(Vec<String>),
    List(String),
}

/// A file's used columns, resolved against a [`ColumnSpec`].
pub(super) struct Resolved {
    pub(super) feature_names: FeatureNames,
    pub(super) layout: Layout,
    /// The feature columns this file lacks (each one `absent` allows).
    pub(super) absent: Vec<String>,
}

/// Finds the used columns in a file's schema; returns the resolution and the root indices to
/// project. A list layout's length is 0 when the schema does not fix it (a variable `List`).
/// A named feature column that `absent` allows may be missing from this file.
pub(super) fn resolve_columns(
    path: &Path,
    schema: &SchemaRef,
    spec: &ColumnSpec,
    absent: &AbsentColumns,
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
        let data_type = schema.field(label).data_type();
        let mapped = spec.positive_label.is_some() && is_label_value(data_type);
        if !is_scalar_number(data_type) && !mapped {
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
    let weight = resolve_weight(spec, schema, &find, found_label)?;
    match &spec.features {
        FeatureSelection::AllNumeric | FeatureSelection::Columns(_) => {
            let categorical_roots = categorical_roots(path, schema, spec, found_label)?;
            if let Some(w) = weight
                && categorical_roots.contains(&w)
            {
                return Err(weight_is_a_feature(schema.field(w).name(), "categorical"));
            }
            // `None`: a column this file lacks.
            let feature_roots: Vec<Option<usize>> = match &spec.features {
                FeatureSelection::Columns(names) => {
                    let mut roots = Vec::with_capacity(names.len());
                    for name in names {
                        reject_label(name)?;
                        if spec.weight.as_ref() == Some(name) {
                            return Err(weight_is_a_feature(name, "features"));
                        }
                        if absent.allows(name) && schema.index_of(name).is_err() {
                            roots.push(None);
                            continue;
                        }
                        let index = find(name)?;
                        if categorical_roots.contains(&index) {
                            continue;
                        }
                        if !is_scalar_number(schema.field(index).data_type()) {
                            return Err(unsupported(index, false));
                        }
                        roots.push(Some(index));
                    }
                    roots
                }
                _ => {
                    for name in &spec.exclude {
                        if schema.index_of(name).is_err() {
                            return Err(Error::config(
                                "exclude",
                                format!(
                                    "column `{name}` is not in {} (columns: {})",
                                    path.display(),
                                    available()
                                ),
                            ));
                        }
                    }
                    let index_columns = pandas_index_columns(schema);
                    (0..schema.fields().len())
                        .filter(|&i| {
                            let name = schema.field(i).name();
                            Some(i) != found_label
                                && Some(i) != weight
                                && !categorical_roots.contains(&i)
                                && is_scalar_number(schema.field(i).data_type())
                                && !spec.exclude.contains(name)
                                && !index_columns.contains(name)
                        })
                        .map(Some)
                        .collect()
                }
            };
            // No feature column is a valid source (inspect, a label-only file); training
            // rejects it (`data::source::open`).
            let mut roots: Vec<usize> = feature_roots.iter().flatten().copied().collect();
            roots.extend(&categorical_roots);
            // The weight before the label: the label's root is the last one.
            roots.extend(weight);
            roots.extend(label);
            let position = projected_positions(&roots);
            // Absent columns sit past the projected ones, in order.
            let mut next_absent = roots.len();
            let mut absent_position = || {
                next_absent += 1;
                next_absent - 1
            };
            let positions: Vec<usize> = feature_roots
                .iter()
                .map(|root| root.map_or_else(&mut absent_position, &position))
                .collect();
            let mut names: Vec<String> = match &spec.features {
                // As the roots: a named categorical column gives no numeric feature.
                FeatureSelection::Columns(named) => named
                    .iter()
                    .filter(|name| {
                        schema
                            .index_of(name)
                            .map_or(true, |i| !categorical_roots.contains(&i))
                    })
                    .cloned()
                    .collect(),
                _ => feature_roots
                    .iter()
                    .flatten()
                    .map(|&i| schema.field(i).name().clone())
                    .collect(),
            };
            let absent_names: Vec<String> = names
                .iter()
                .zip(&feature_roots)
                .filter(|(_, root)| root.is_none())
                .map(|(name, _)| name.clone())
                .collect();
            let (mut fill, indicators) = resolve_missing(&spec.missing, &names)?;
            let centre = resolve_centre(spec, &names, &mut fill)?;
            let indicator_names: Vec<String> = indicators
                .iter()
                .map(|&j| indicator_name(&names[j]))
                .collect();
            names.extend(indicator_names);
            let categorical =
                categorical_layouts(spec, schema, &categorical_roots, &position, &mut names)?;
            let layout = Layout::Scalars {
                features: positions,
                label: label.map(&position),
                fill,
                indicators,
                categorical,
                centre,
                weight: weight.map(&position),
            };
            Ok((
                Resolved {
                    feature_names: FeatureNames::Scalars(names),
                    layout,
                    absent: absent_names,
                },
                roots,
            ))
        }
        FeatureSelection::ListColumn(name) => {
            reject_label(name)?;
            if weight.is_some() {
                return Err(Error::config(
                    "weight_column",
                    "row weights go with scalar feature columns, not with «features_column»",
                ));
            }
            if !spec.categorical.is_empty() {
                return Err(Error::config(
                    "categorical",
                    "categorical columns are scalar columns, not «features_column»",
                ));
            }
            if !spec.centre.is_empty() {
                return Err(Error::config(
                    "standardize",
                    "columns are centred in f64 as scalar feature columns, not in «features_column»",
                ));
            }
            if !spec.missing.is_empty() {
                return Err(Error::config(
                    "fill_nulls",
                    "fills and missing-value indicators apply to scalar feature columns, not to «features_column»",
                ));
            }
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
                    absent: Vec::new(),
                },
                roots,
            ))
        }
    }
}

/// The columns pandas wrote for a DataFrame's index (`__index_level_0__` after
/// `df.sample().to_parquet()`, or a named index), from the file's `pandas` metadata, plus any
/// column named like pandas' unnamed index levels: never a default feature.
pub(super) fn pandas_index_columns(schema: &SchemaRef) -> Vec<String> {
    let mut names: Vec<String> = schema
        .metadata()
        .get("pandas")
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .and_then(|meta| {
            meta.get("index_columns")?.as_array().map(|columns| {
                columns
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    for field in schema.fields() {
        let name = field.name();
        let unnamed_level = name
            .strip_prefix("__index_level_")
            .and_then(|rest| rest.strip_suffix("__"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if unnamed_level && !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Position of each root column inside a batch projected to `roots` (schema order).
fn projected_positions(roots: &[usize]) -> impl Fn(usize) -> usize + use<> {
    let mut sorted = roots.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    move |root| sorted.binary_search(&root).expect("root is projected")
}

/// Every top-level column of a file with its stored and Arrow types and its role, for
/// `inspect` ([`Source::describe`](crate::data::source::Source::describe)).
pub(super) fn column_infos(
    metadata: &ArrowReaderMetadata,
    layout: &Layout,
    schema: &Schema,
) -> Vec<ColumnInfo> {
    let arrow = metadata.schema();
    let parquet_fields = metadata.parquet_schema().root_schema().get_fields();
    let index_columns = pandas_index_columns(arrow);
    let list_column = match layout {
        Layout::List { .. } => schema
            .feature_names
            .first()
            .map(|first| first.strip_suffix("[0]").unwrap_or(first).to_string()),
        Layout::Scalars { .. } => None,
    };
    let categorical = match layout {
        Layout::Scalars { categorical, .. } => categorical.as_slice(),
        Layout::List { .. } => &[],
    };
    arrow
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let name = field.name();
            let data_type = field.data_type();
            let encoded = categorical.iter().find(|c| c.name == *name);
            let role = if *name == schema.label {
                ColumnRole::Label
            } else if encoded.is_some()
                || list_column.as_ref() == Some(name)
                || (list_column.is_none() && schema.feature_names.contains(name))
            {
                ColumnRole::Feature
            } else {
                ColumnRole::Unused
            };
            let note = match role {
                _ if encoded.is_some() => encoded.map(categorical_note).unwrap_or_default(),
                _ if role != ColumnRole::Unused => match data_type {
                    DataType::FixedSizeList(..) | DataType::List(_) | DataType::LargeList(_) => {
                        format!("{} features", schema.num_features())
                    }
                    other => cast_note(other),
                },
                _ if index_columns.contains(name) => "pandas index".to_string(),
                _ if is_scalar_number(data_type) => "not selected".to_string(),
                _ if is_text(data_type) => {
                    format!("pass «categorical» {name} or «hash_buckets» to use it")
                }
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
                        Some(logical) => {
                            format!("{} ({})", t.get_physical_type(), logical_type_name(logical))
                        }
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
        .collect()
}

/// A Parquet logical type as `inspect` prints it, in the spec's spelling: `TIMESTAMP(MICROS)`,
/// `TIMESTAMP(MILLIS, UTC)`, `INT(8, unsigned)`, `DECIMAL(10, 2)`, `STRING` (not the crate's
/// Debug form, whose nested structs break the table).
pub(super) fn logical_type_name(logical: &LogicalType) -> String {
    let utc = |adjusted: bool| if adjusted { ", UTC" } else { "" };
    match logical {
        LogicalType::Timestamp(t) => format!(
            "TIMESTAMP({}{})",
            variant_name(&t.unit),
            utc(t.is_adjusted_to_u_t_c)
        ),
        LogicalType::Time(t) => format!(
            "TIME({}{})",
            variant_name(&t.unit),
            utc(t.is_adjusted_to_u_t_c)
        ),
        LogicalType::Integer(t) => format!(
            "INT({}, {})",
            t.bit_width,
            if t.is_signed { "signed" } else { "unsigned" }
        ),
        LogicalType::Decimal(t) => format!("DECIMAL({}, {})", t.precision, t.scale),
        other => variant_name(other).to_uppercase(),
    }
}

/// A compression codec as `inspect` prints it: `snappy`, `zstd(1)`, `gzip(6)`, `brotli(1)`.
pub(super) fn codec_name(compression: Compression) -> String {
    match compression {
        Compression::ZSTD(level) => format!("zstd({})", level.compression_level()),
        Compression::GZIP(level) => format!("gzip({})", level.compression_level()),
        Compression::BROTLI(level) => format!("brotli({})", level.compression_level()),
        other => variant_name(&other).to_lowercase(),
    }
}

/// The variant name of an enum value: its Debug form up to the first character that cannot
/// be in a name (`MICROS` of `MICROS`, `Timestamp` of `Timestamp(TimestampType { .. })`).
fn variant_name(value: &impl std::fmt::Debug) -> String {
    format!("{value:?}")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_name_their_kind_and_divisor() {
        let cast = |t: DataType| cast_of(&t).map(|c| (c.kind, c.divisor));
        assert_eq!(
            cast(DataType::Decimal128(12, 2)),
            Some((CastKind::Number, 100.0))
        );
        assert_eq!(
            cast(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            )),
            Some((CastKind::Timestamp, 1e6))
        );
        assert_eq!(cast(DataType::Date64), Some((CastKind::Date, 86_400_000.0)));
        assert_eq!(
            cast(DataType::Duration(TimeUnit::Nanosecond)),
            Some((CastKind::Duration, 1e9))
        );
        assert_eq!(cast(DataType::Float16), Some((CastKind::Number, 1.0)));
        assert_eq!(cast(DataType::Utf8), None);
        assert_eq!(cast(DataType::Time64(TimeUnit::Microsecond)), None);
    }
}
