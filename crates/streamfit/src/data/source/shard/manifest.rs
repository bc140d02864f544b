//! The manifest of a shard dataset: `manifest.json`, which marks a directory as a shard
//! dataset and lists its shard files with their row counts and sizes, and where the data came
//! from.
//!
//! It only describes; checking the listed files against their headers is `source.rs`'s job,
//! writing a manifest `convert`'s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the manifest that marks a directory as a shard dataset.
pub const MANIFEST: &str = "manifest.json";
/// The `format` field of a manifest.
pub const MANIFEST_FORMAT: &str = "streamfit-shards";

/// `manifest.json`: what a shard dataset holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Always [`VERSION`](super::VERSION) for this build.
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
