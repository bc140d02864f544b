//! Which columns are features and which is the label.
//!
//! [`ColumnSpec`] is what the user asked for (flags); [`Schema`] is what a source resolved it
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
    /// Read files that lack the label column (targets are then 0): for `predict` on
    /// unlabelled data. By default off (a missing label is an error).
    #[serde(default)]
    pub label_optional: bool,
}

impl Default for ColumnSpec {
    fn default() -> Self {
        ColumnSpec {
            features: FeatureSelection::AllNumeric,
            label: "label".to_string(),
            label_optional: false,
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
