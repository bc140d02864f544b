//! Which columns are features and which is the label.
//!
//! [`ColumnSpec`] is what the user asked for (options); [`Schema`] is what a source resolved it
//! to against the files: the feature names in order and the label. Sources own the resolution
//! because only they know the file's types.

use serde::{Deserialize, Serialize};

/// How the feature columns are chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum FeatureSelection {
    /// Every numeric or boolean top-level column except the label, in file order.
    #[default]
    AllNumeric,
    /// These scalar columns, in this order.
    Columns(Vec<String>),
    /// One FixedSizeList / List column of floats holding all features of a row.
    ListColumn(String),
}

/// The user's choice of feature and label columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Feature columns. By default every numeric column except the label.
    pub features: FeatureSelection,
    /// Name of the label column. By default `label`.
    pub label: String,
    /// Never read the label (targets are then 0), so it may be missing, null or of any type:
    /// for `predict`. By default off (the label is read, and a missing one is an error).
    #[serde(default)]
    pub ignore_label: bool,
    /// Keep only the files whose hive partition values pass this filter (`year>=2023 and
    /// month<4`; see [`Filter`](crate::data::partition::Filter)), before any file is opened.
    /// By default every file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Columns left out of the default features ([`FeatureSelection::AllNumeric`]); each must
    /// exist. By default none (pandas index columns are always left out of the default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl Default for ColumnSpec {
    fn default() -> Self {
        ColumnSpec {
            features: FeatureSelection::AllNumeric,
            label: "label".to_string(),
            ignore_label: false,
            filter: None,
            exclude: Vec::new(),
        }
    }
}

/// The resolved columns of a dataset: feature names in order, and the label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// One name per feature, in parameter order. For a list column, `name[i]`.
    pub feature_names: Vec<String>,
    /// The label column.
    pub label: String,
}

impl Schema {
    /// Number of features per row.
    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }
}
