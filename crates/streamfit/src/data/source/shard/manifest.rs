//! The manifest of a shard dataset: `manifest.json`, which marks a directory as a shard
//! dataset and lists its shard files with their row counts and sizes, where the data came
//! from, and (version 2) the preprocessing `convert` fitted and applied to the rows it wrote
//! ([`Preprocessing`]).
//!
//! It only describes; checking the listed files against their headers is `source.rs`'s job,
//! writing a manifest `convert`'s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::categorical::Categorical;
use crate::data::schema::{ColumnCentre, MissingValues, indicator_name};

/// Name of the manifest that marks a directory as a shard dataset.
pub const MANIFEST: &str = "manifest.json";
/// The `format` field of a manifest.
pub const MANIFEST_FORMAT: &str = "streamfit-shards";
/// The newest manifest version, which this build writes for a dataset with preprocessing: 2
/// added [`Manifest::preprocessing`]. A dataset without any is written as version 1, which
/// every build reads; a build that reads version 1 only refuses version 2 by its version
/// check.
pub const MANIFEST_VERSION: u32 = 2;

/// `manifest.json`: what a shard dataset holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// [`MANIFEST_VERSION`] when the dataset stores preprocessing, else 1 (as every dataset
    /// written before the preprocessing was stored).
    pub version: u32,
    /// Rows in all shards.
    pub num_rows: u64,
    /// Feature names in row order.
    pub feature_names: Vec<String>,
    /// The label column of the source.
    pub label: String,
    /// The source the shards were converted from (files, and its used columns' types).
    pub source: ManifestSource,
    /// The shard files in order.
    pub shards: Vec<ManifestShard>,
    /// Version 2: the preprocessing fitted on the source and applied to the stored rows;
    /// absent when none (and in version 1).
    #[serde(default, skip_serializing_if = "Preprocessing::is_empty")]
    pub preprocessing: Preprocessing,
}

/// The fitted preprocessing of a shard dataset's rows: what `convert` applied to the source
/// as it decoded it, in the form a model file carries it, so that training on the shards
/// saves a model that `predict` and `eval` apply to raw Parquet files of the source's kind.
/// The rows are stored encoded: a reader of the shards applies none of it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Preprocessing {
    /// Fill values and indicator features of missing values («fill_nulls»,
    /// «null_indicators»).
    #[serde(default, skip_serializing_if = "MissingValues::is_empty")]
    pub missing: MissingValues,
    /// The label value stored as 1 («positive_label»); every other value was stored as 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_label: Option<String>,
    /// Rows with a null label were left out («drop_null_labels»).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_null_labels: bool,
    /// The categorical columns and their fitted encoding (vocabularies or hash buckets).
    #[serde(default, skip_serializing_if = "Categorical::is_empty")]
    pub categorical: Categorical,
    /// Large-magnitude columns centred in f64 before the f32 cast (the centre is
    /// subtracted from every stored value of the column).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub centre: Vec<ColumnCentre>,
    /// The scale check of the source (as `train` judges it, before any encoding) found its
    /// features on mixed scales: a run on the shards standardises by default, as one on
    /// the source would (the stored rows, centred, may no longer look mixed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scales_mixed: bool,
}

impl Preprocessing {
    /// True when nothing was fitted or applied.
    pub fn is_empty(&self) -> bool {
        *self == Preprocessing::default()
    }

    /// The features the encoding made (one-hot or hashed features, missing-value
    /// indicators): 0/1 by construction.
    pub fn encoded_features(&self) -> Vec<String> {
        let mut names = self.categorical.feature_names();
        names.extend(self.missing.indicators.iter().map(|c| indicator_name(c)));
        names
    }
}

/// Where a shard dataset came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestSource {
    /// The source files, as given to `convert`.
    pub files: Vec<PathBuf>,
    /// The source's used columns and their types, e.g. `f0: Float32, …, label: Float32`.
    pub schema: String,
}

/// One shard in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestShard {
    /// File name inside the dataset directory.
    pub file: String,
    /// Rows in the shard.
    pub rows: u64,
    /// Bytes of the shard file.
    pub bytes: u64,
}

/// True when `dir` is a directory holding a shard manifest.
pub fn is_shard_dataset(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}
