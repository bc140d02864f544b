//! The manifest of a shard dataset: `manifest.json`, which marks a directory as a shard
//! dataset and lists its shard files with their row counts and sizes, where the data came
//! from, and (version 2) the preprocessing `convert` fitted and applied to the rows it wrote
//! ([`Preprocessing`]).
//!
//! It describes, and checks a column spec against what it describes (`check_spec`); checking
//! the listed files against their headers is `source.rs`'s job, writing a manifest
//! `convert`'s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::categorical::Categorical;
use crate::data::schema::{ColumnCentre, MissingValues, indicator_name};
use crate::data::{ColumnSpec, FeatureSelection};
use crate::error::{Error, Result};

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

/// Checks `spec` against the shards' fixed columns. Its features must be the default (every
/// feature), the shards' feature names, or the source's feature columns of encoded shards (as
/// `predict` and `eval` name them from a model file), and its label the default or the
/// converted one. Its preprocessing must be none (`train`: the stored rows are used as they
/// are) or the one the rows were encoded with (a model trained on them, or on the source
/// with the same options); any other is refused, so rows are never encoded twice, or read as
/// if encoded otherwise. Fill values alone are let through on rows stored without any (the
/// stored values are all finite: a fill changes none of them).
pub(super) fn check_spec(spec: &ColumnSpec, manifest: &Manifest, dir: &Path) -> Result<()> {
    let default = ColumnSpec::default();
    let stored = &manifest.preprocessing;
    let encoded = stored.encoded_features();
    let source_columns: Vec<&String> = manifest
        .feature_names
        .iter()
        .filter(|name| !encoded.contains(name))
        .collect();
    let label_ok = spec.label == manifest.label || spec.label == default.label;
    let features_ok = match &spec.features {
        FeatureSelection::AllNumeric => true,
        FeatureSelection::Columns(names) => {
            *names == manifest.feature_names || names.iter().eq(source_columns.iter().copied())
        }
        FeatureSelection::ListColumn(_) => false,
    };
    if !(label_ok && features_ok) {
        return Err(Error::config(
            "features/label",
            format!(
                "{} is a shard dataset with fixed columns (label `{}`, {} features); drop the column flags or convert again with the columns you want",
                dir.display(),
                manifest.label,
                manifest.feature_names.len()
            ),
        ));
    }
    let asked = Preprocessing {
        missing: spec.missing.clone(),
        positive_label: spec.positive_label.clone(),
        drop_null_labels: stored.drop_null_labels,
        categorical: spec.categorical.clone(),
        centre: spec.centre.clone(),
        scales_mixed: stored.scales_mixed,
    };
    // What the stored rows' own settings are, with nothing asked.
    let nothing = Preprocessing {
        drop_null_labels: stored.drop_null_labels,
        scales_mixed: stored.scales_mixed,
        ..Preprocessing::default()
    };
    let fills_only = stored.missing.is_empty()
        && Preprocessing {
            missing: Default::default(),
            ..asked.clone()
        } == nothing
        && asked.missing.indicators.is_empty();
    if asked == nothing || asked == *stored || fills_only {
        return Ok(());
    }
    Err(Error::config(
        "data",
        format!(
            "{} holds rows `convert` encoded {}, but they are asked to be read {}; stored rows are never encoded again (use a model trained on these shards or on their source with the same options, or convert again)",
            dir.display(),
            preprocessing_words(stored),
            preprocessing_words(&asked)
        ),
    ))
}

/// The preprocessing `p` in a few words: `with fill values, categorical columns city, centred
/// columns ts` or `without preprocessing`.
fn preprocessing_words(p: &Preprocessing) -> String {
    let mut parts = Vec::new();
    if !p.missing.fill.is_empty() {
        parts.push("fill values".to_string());
    }
    if !p.missing.indicators.is_empty() {
        parts.push(format!("indicators of {}", p.missing.indicators.join(", ")));
    }
    if let Some(positive) = &p.positive_label {
        parts.push(format!("positive label `{positive}`"));
    }
    if !p.categorical.is_empty() {
        parts.push("categorical columns".to_string());
    }
    if !p.centre.is_empty() {
        let names: Vec<&str> = p.centre.iter().map(|c| c.column.as_str()).collect();
        parts.push(format!("centred columns {}", names.join(", ")));
    }
    if parts.is_empty() {
        "without preprocessing".to_string()
    } else {
        format!("with {}", parts.join(", "))
    }
}
