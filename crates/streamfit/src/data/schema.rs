//! Which columns are features and which is the label.
//!
//! [`ColumnSpec`] is what the user asked for (options); [`Schema`] is what a source resolved it
//! to against the files: the feature names in order and the label. Sources own the resolution
//! because only they know the file's types.

use serde::{Deserialize, Serialize};

use crate::data::categorical::Categorical;

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

/// What a missing value (a null, or NaN) in a scalar feature column becomes, as decided
/// before training (`run::prepare` resolves «fill_nulls» and «null_indicators» into this from
/// the statistics pass; a model file carries it to `predict`). By default nothing is filled:
/// a null is an error, and NaN a non-finite value. Infinity is always an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MissingValues {
    /// The value each listed feature column's nulls and NaN become (written in place of the
    /// missing value, in the row-major batch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fill: Vec<ColumnFill>,
    /// Feature columns that each get one more feature, `COL_is_null`: 1 where the column's
    /// value was missing (null or NaN), else 0. These features follow the columns' own, in
    /// this order. Each must also be in `fill`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<String>,
}

impl MissingValues {
    /// True when nothing is filled and no indicator added.
    pub fn is_empty(&self) -> bool {
        self.fill.is_empty() && self.indicators.is_empty()
    }

    /// The fill value of feature column `name`, if it has one.
    pub fn fill_of(&self, name: &str) -> Option<f64> {
        self.fill.iter().find(|f| f.column == name).map(|f| f.value)
    }
}

/// What the user asked missing values (nulls and NaN) in feature columns to become
/// («fill_nulls»), before the statistics pass turns it into [`MissingValues`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum FillNulls {
    /// 0.
    Zero,
    /// The column's mean over its present, finite values (from the statistics pass).
    Mean,
    /// This number, for every feature column.
    Value(f64),
}

impl std::str::FromStr for FillNulls {
    type Err = crate::error::Error;

    /// `zero`, `mean` or a finite number.
    fn from_str(text: &str) -> crate::error::Result<Self> {
        match text.trim() {
            "zero" => Ok(FillNulls::Zero),
            "mean" => Ok(FillNulls::Mean),
            other => match other.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(FillNulls::Value(v)),
                _ => Err(crate::error::Error::config(
                    "fill_nulls",
                    format!("`{other}` is not `zero`, `mean` or a finite number"),
                )),
            },
        }
    }
}

/// One column's fill value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnFill {
    /// The feature column.
    pub column: String,
    /// What its nulls and NaN become (rounded to f32 as it is written).
    pub value: f64,
}

/// A large-magnitude feature column centred as it is decoded: `value` is subtracted from each
/// value in f64, before the value is rounded to f32, so that no information is lost to the
/// cast (a timestamp near 1.7e9 s has a resolution of 128 s in f32; its offset from a centre
/// keeps the seconds). Set by standardisation for the columns the scale check finds far off
/// centre; a model file carries it to `predict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnCentre {
    /// The feature column.
    pub column: String,
    /// What is subtracted from its values.
    pub value: f64,
}

/// The name of the indicator feature of column `column`: `COL_is_null`.
pub fn indicator_name(column: &str) -> String {
    format!("{column}_is_null")
}

/// The user's choice of feature and label columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Fill values and indicator features for missing values in scalar feature columns. By
    /// default none (a null is an error).
    #[serde(default, skip_serializing_if = "MissingValues::is_empty")]
    pub missing: MissingValues,
    /// The label value that is class 1; every other value is 0 (the label column may then be
    /// of any scalar type: a string, a dictionary of strings, a boolean or a number). By
    /// default none: the label's value is the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_label: Option<String>,
    /// Leave out the rows whose label is null (counted when the data is opened, so every
    /// unit's row count is exact before training). By default off: a null label is an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_null_labels: bool,
    /// Categorical columns and their encoding (their features follow every other feature;
    /// see [`crate::data::categorical`]). By default none.
    #[serde(default, skip_serializing_if = "Categorical::is_empty")]
    pub categorical: Categorical,
    /// Scalar feature columns centred in f64 as they are decoded (their fill values are
    /// centred too). By default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub centre: Vec<ColumnCentre>,
    /// A numeric column holding each row's weight (its loss is multiplied by it): never a
    /// feature, read like one (the same casts), and delivered as one more value after each
    /// row's features ([`Source::row_width`](crate::data::source::Source::row_width)). A null,
    /// NaN, infinite or negative weight is an error. By default none (every row weighs 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
}

impl Default for ColumnSpec {
    fn default() -> Self {
        ColumnSpec {
            features: FeatureSelection::AllNumeric,
            label: "label".to_string(),
            ignore_label: false,
            filter: None,
            exclude: Vec::new(),
            missing: MissingValues::default(),
            positive_label: None,
            drop_null_labels: false,
            categorical: Categorical::default(),
            centre: Vec::new(),
            weight: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_nulls_parses_zero_mean_and_finite_numbers_only() {
        assert_eq!("zero".parse::<FillNulls>().unwrap(), FillNulls::Zero);
        assert_eq!(" mean ".parse::<FillNulls>().unwrap(), FillNulls::Mean);
        assert_eq!("-1.5".parse::<FillNulls>().unwrap(), FillNulls::Value(-1.5));
        for bad in ["median", "", "nan", "inf", "1e400"] {
            let err = bad.parse::<FillNulls>().unwrap_err().to_string();
            assert!(err.contains("fill_nulls"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_older_column_spec_without_the_new_fields_still_reads() {
        let json = r#"{"features":"AllNumeric","label":"y"}"#;
        let spec: ColumnSpec = serde_json::from_str(json).unwrap();
        assert!(spec.missing.is_empty());
        assert_eq!(spec.positive_label, None);
        assert!(!spec.drop_null_labels);
    }
}
