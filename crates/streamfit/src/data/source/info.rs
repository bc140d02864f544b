//! What a source is, as `inspect` shows it: its format, what one unit is, every column with
//! its stored and decoded types and its role, and the codecs.
//!
//! Plain data returned by [`Source::describe`](crate::data::source::Source::describe); the
//! formats fill it in, and nothing here reads a file.

use serde::Serialize;

/// What a column of a source is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnRole {
    /// A feature (or the list column holding all features).
    Feature,
    /// The label.
    Label,
    /// Not read.
    Unused,
}

/// One column of a source, as `inspect` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// How the file stores it (Parquet physical and logical type, or `f32` in shards).
    pub stored_type: String,
    /// Its Arrow type as decoded (before the cast to f32).
    pub arrow_type: String,
    /// Feature, label or unused.
    pub role: ColumnRole,
    /// The cast applied, or why an unused column is not a feature.
    pub note: String,
}

/// What a source is, for `inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    /// `parquet` or `shards`.
    pub format: &'static str,
    /// What one unit is (`row group`, `row range`).
    pub unit_kind: &'static str,
    /// Every top-level column of the (first) file.
    pub columns: Vec<ColumnInfo>,
    /// Compression codecs of the used column chunks.
    pub codecs: Vec<String>,
}
