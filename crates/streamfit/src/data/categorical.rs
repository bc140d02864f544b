//! Categorical columns: which columns «categorical» names ([`CategoricalColumns`]) and how
//! they become features once fitted ([`Encoding`]: one-hot vocabularies, or hashing).
//!
//! A one-hot column `COL` gives, in this order, one feature `COL=value` per value of its
//! vocabulary (the «max_categories» most frequent values of the training data, most frequent
//! first, ties by value in byte order), then `COL=<other>` (every other value, and any value
//! the training data never held), then `COL=<null>` when the column held a null in training
//! (without it a null goes to `<other>`). Hashing gives `hash_0..hash_{N-1}`, shared by the
//! hashed columns: a value adds 1 to bucket `crc32(b"COL=value") % N` (CRC-32 as zlib
//! computes it; a null is the value `<null>`). The features of the categorical columns follow
//! every other feature (the numeric columns, then the missing-value indicators).
//!
//! The vocabularies are fitted by `run::categories` (one streamed pass counting values with a
//! bounded sketch, [`crate::data::sketch`]); the Parquet decoder writes the features straight
//! into the row-major batch. Nothing here reads data.

use serde::{Deserialize, Serialize};

/// The name of the feature for values outside the vocabulary: `COL=<other>`.
pub const OTHER: &str = "<other>";
/// The name of the feature for nulls: `COL=<null>`.
pub const NULL: &str = "<null>";

/// Which columns are categorical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CategoricalColumns {
    /// None.
    #[default]
    None,
    /// Every string and dictionary column that is not the label, excluded, or a pandas index.
    Auto,
    /// These columns (strings, dictionaries, booleans or integers), in this order.
    Named(Vec<String>),
}

impl CategoricalColumns {
    /// «categorical» as a user gives it (the command line's comma list, Python's string or
    /// list): none, `auto` alone, or column names, each trimmed of spaces.
    pub fn from_names(names: Option<&[String]>) -> Self {
        match names {
            None => CategoricalColumns::None,
            Some([one]) if one.trim() == "auto" => CategoricalColumns::Auto,
            Some(names) => {
                CategoricalColumns::Named(names.iter().map(|n| n.trim().to_string()).collect())
            }
        }
    }
}

/// How the categorical columns become features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Not fitted: the columns are read (so their values can be counted) but give no feature.
    #[default]
    Unfitted,
    /// One-hot, with one vocabulary per column, in column order.
    OneHot(Vec<Vocabulary>),
    /// The hashing trick into this many shared buckets.
    Hash {
        /// Buckets (features `hash_0..hash_{buckets-1}`).
        buckets: u32,
    },
}

/// One column's one-hot vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocabulary {
    /// The column.
    pub column: String,
    /// Its values with a feature each, in feature order (integers as decimal text, booleans
    /// as `true`/`false`).
    pub values: Vec<String>,
    /// The column held nulls in training: it has a `COL=<null>` feature.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub null: bool,
}

impl Vocabulary {
    /// The features of this column, in order.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .values
            .iter()
            .map(|v| one_hot_name(&self.column, v))
            .collect();
        names.push(one_hot_name(&self.column, OTHER));
        if self.null {
            names.push(one_hot_name(&self.column, NULL));
        }
        names
    }
}

/// The categorical columns and their encoding (part of the column spec; saved with the model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Categorical {
    /// Which columns.
    #[serde(default)]
    pub columns: CategoricalColumns,
    /// How they are encoded.
    #[serde(default)]
    pub encoding: Encoding,
}

impl Categorical {
    /// True when no column is categorical.
    pub fn is_empty(&self) -> bool {
        self.columns == CategoricalColumns::None
    }

    /// The encoded features' names, in order (none before fitting).
    pub fn feature_names(&self) -> Vec<String> {
        match &self.encoding {
            Encoding::Unfitted => Vec::new(),
            Encoding::OneHot(vocabularies) => vocabularies
                .iter()
                .flat_map(Vocabulary::feature_names)
                .collect(),
            Encoding::Hash { buckets } => (0..*buckets).map(hash_name).collect(),
        }
    }
}

/// The feature of value `value` of column `column`: `COL=value`.
pub fn one_hot_name(column: &str, value: &str) -> String {
    format!("{column}={value}")
}

/// The name of hash bucket `i`: `hash_i`.
pub fn hash_name(i: u32) -> String {
    format!("hash_{i}")
}

/// The bucket of `value` of column `column` among `buckets`: CRC-32 (IEEE, as zlib's
/// `crc32`) of the bytes `column=value`, modulo `buckets`.
pub fn hash_bucket(column: &str, value: &str, buckets: u32) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(column.as_bytes());
    hasher.update(b"=");
    hasher.update(value.as_bytes());
    hasher.finalize() % buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_names_follow_the_vocabulary_then_other_then_null() {
        let v = Vocabulary {
            column: "city".into(),
            values: vec!["Paris".into(), "Lyon".into()],
            null: true,
        };
        assert_eq!(
            v.feature_names(),
            ["city=Paris", "city=Lyon", "city=<other>", "city=<null>"]
        );
    }

    #[test]
    fn the_hash_is_zlib_crc32_of_column_equals_value() {
        // Python 3.11: zlib.crc32(b"city=Paris") == 0x515bede0, and % 64 == 32.
        assert_eq!(crc32fast::hash(b"city=Paris"), 0x515b_ede0);
        assert_eq!(hash_bucket("city", "Paris", 64), 32);
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn the_saved_form_reads_back() {
        let spec = Categorical {
            columns: CategoricalColumns::Named(vec!["a".into()]),
            encoding: Encoding::Hash { buckets: 8 },
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            json,
            r#"{"columns":{"named":["a"]},"encoding":{"hash":{"buckets":8}}}"#
        );
        assert_eq!(serde_json::from_str::<Categorical>(&json).unwrap(), spec);
    }
}
