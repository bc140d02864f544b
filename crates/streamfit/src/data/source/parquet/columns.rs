//! Column resolution: which columns of a Parquet file are the features and the label, where
//! they sit in a projected record batch ([`Layout`]), what two files of one dataset must agree
//! on ([`UsedColumns`]), and how `inspect` describes each column.
//!
//! It reads only schemas, never data: decoding the resolved columns is `decode.rs`'s job, and
//! learning a variable list's length (which needs a row) is `files.rs`'s.

use std::path::Path;

use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::basic::{Compression, LogicalType};

use crate::data::schema::{ColumnSpec, FeatureSelection, Schema};
use crate::data::source::{ColumnInfo, ColumnRole};
use crate::error::{Error, Result};

/// Where the used columns are in a projected record batch (positions, not names).
///
/// `label` is `None` only when the spec ignores the label (`predict`); the targets are then
/// zero.
#[derive(Debug, Clone)]
pub(super) enum Layout {
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

/// The columns training reads from a file, with their types, and the feature count: what two
/// files of one dataset must agree on (other columns may differ).
#[derive(Debug, PartialEq)]
pub(super) struct UsedColumns {
    columns: Vec<(String, DataType)>,
    num_features: usize,
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
        }
    }

    /// True when a file with `other`'s used columns can be read as part of a dataset with
    /// these: the same columns in the same order, each of the same type or both numbers of
    /// any width, float or integer (schema drift across files: each file's values are cast to
    /// f32 from its own type).
    pub(super) fn agrees_with(&self, other: &UsedColumns) -> bool {
        self.num_features == other.num_features
            && self.columns.len() == other.columns.len()
            && self.columns.iter().zip(&other.columns).all(|(a, b)| {
                a.0 == b.0 && (a.1 == b.1 || (is_scalar_number(&a.1) && is_scalar_number(&b.1)))
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
        )
    }
}

/// True for the column types cast to f32 as one feature (floats, integers, booleans).
pub(super) fn is_scalar_number(data_type: &DataType) -> bool {
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
}

/// Finds the used columns in a file's schema; returns the resolution and the root indices to
/// project. A list layout's length is 0 when the schema does not fix it (a variable `List`).
pub(super) fn resolve_columns(
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
                                && is_scalar_number(schema.field(i).data_type())
                                && !spec.exclude.contains(name)
                                && !index_columns.contains(name)
                        })
                        .collect()
                }
            };
            // No feature column is a valid source (inspect, a label-only file); training
            // rejects it (`data::source::open`).
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
    arrow
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let name = field.name();
            let data_type = field.data_type();
            let role = if *name == schema.label {
                ColumnRole::Label
            } else if list_column.as_ref() == Some(name)
                || (list_column.is_none() && schema.feature_names.contains(name))
            {
                ColumnRole::Feature
            } else {
                ColumnRole::Unused
            };
            let note = match role {
                _ if role != ColumnRole::Unused => match data_type {
                    DataType::Float32 => String::new(),
                    DataType::FixedSizeList(..) | DataType::List(_) | DataType::LargeList(_) => {
                        format!("{} features", schema.num_features())
                    }
                    other => format!("cast {other} → f32"),
                },
                _ if index_columns.contains(name) => "pandas index".to_string(),
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
