//! `generate`: synthetic Parquet datasets with a known true model.
//!
//! Features `f0..f{D-1}` are float32 draws from N(0, 1); the true weights are w ~ N(0, 1)/√D
//! and the bias b ~ N(0, 0.25), so the score x·w + b has a standard deviation near 1. The label
//! is Bernoulli(σ(x·w + b)) for `logistic` and x·w + b + N(0, noise²) for `linear`. For
//! `multiclass`, K score vectors W ~ N(0, 9)/√D and b ~ N(0, 0.25) give the class id
//! ~ Categorical(softmax(W·x + b)). Two tasks no linear model can learn: `circles` labels a row
//! 1 when f0² + f1² < 2·ln 2 (inside the circle holding half the mass), `xor` when f0 and f1
//! have different signs; the other features are noise. The truth
//! goes to `DIR/truth.json`. Rows are produced one row group at a time (never the whole
//! dataset in memory), shards are written in parallel, and every row group draws from its own
//! RNG seeded from (seed, shard, row group), so the files do not depend on the thread count.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngExt;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomically;
use crate::data::source::shard::MANIFEST;
use crate::data::source::write::{Compression, ParquetWriter};
use crate::error::{Error, Result};
use crate::pipeline::{RngStream, rng_for};

/// The kind of target to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Real-valued label: x·w + b + noise.
    Linear,
    /// Binary label: Bernoulli(σ(x·w + b)).
    Logistic,
    /// Class id 0..K−1 drawn from softmax(W·x + b).
    Multiclass,
    /// Binary label: 1 inside the circle f0² + f1² < 2·ln 2.
    Circles,
    /// Binary label: 1 when f0 and f1 have different signs.
    Xor,
}

/// Settings of `generate`. Checked by [`GenerateConfig::check`].
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Target kind. By default logistic.
    pub task: Task,
    /// Total rows. By default 1,000,000.
    pub rows: u64,
    /// Feature columns. By default 64.
    pub features: usize,
    /// Files to split the rows into. By default 4.
    pub shards: usize,
    /// Rows per row group. By default 65,536.
    pub row_group_rows: usize,
    /// Page compression. By default snappy.
    pub compression: Compression,
    /// Seed of every random draw. By default 0.
    pub seed: u64,
    /// Standard deviation of the linear task's noise. By default 0.1.
    pub noise_std: f32,
    /// Classes of the multiclass task. By default 10.
    pub classes: usize,
    /// Output directory: created, or an empty one. By default `data`.
    pub out: PathBuf,
    /// Replace the dataset already in a non-empty `out`: the files of the kinds `generate`
    /// and `convert` write there are removed first (see [`generate`]). By default off: a
    /// non-empty `out` is refused.
    pub force: bool,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            task: Task::Logistic,
            rows: 1_000_000,
            features: 64,
            shards: 4,
            row_group_rows: 65_536,
            compression: Compression::Snappy,
            seed: 0,
            noise_std: 0.1,
            classes: 10,
            out: PathBuf::from("data"),
            force: false,
        }
    }
}

impl GenerateConfig {
    /// Validates the settings.
    pub fn check(&self) -> Result<()> {
        if self.rows == 0 {
            return Err(Error::config("rows", "must be at least 1"));
        }
        if self.features == 0 {
            return Err(Error::config("features", "must be at least 1"));
        }
        if self.shards == 0 || self.shards as u64 > self.rows {
            return Err(Error::config(
                "shards",
                "must be between 1 and the number of rows",
            ));
        }
        if self.task == Task::Multiclass && !(2..=65_536).contains(&self.classes) {
            return Err(Error::config("classes", "must be between 2 and 65536"));
        }
        if matches!(self.task, Task::Circles | Task::Xor) && self.features < 2 {
            return Err(Error::config(
                "features",
                "circles and xor need at least 2 features",
            ));
        }
        if self.row_group_rows == 0 {
            return Err(Error::config("row_group_rows", "must be at least 1"));
        }
        if !(self.noise_std >= 0.0 && self.noise_std.is_finite()) {
            return Err(Error::config(
                "noise",
                "must be a finite non-negative number",
            ));
        }
        Ok(())
    }
}

/// The model that generated a dataset (`truth.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub task: Task,
    pub rows: u64,
    pub features: Vec<String>,
    pub label: String,
    pub weights: Vec<f32>,
    pub bias: f32,
    pub noise_std: f32,
    pub seed: u64,
    pub files: Vec<String>,
    /// Multiclass: the number of classes K.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Multiclass: the score weights, row-major `[K × D]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_weights: Vec<f32>,
    /// Multiclass: the score biases, one per class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_biases: Vec<f32>,
}

impl Truth {
    /// Reads `DIR/truth.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("truth.json");
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::config("truth.json", format!("{}: {e}", path.display())))
    }
}

/// Writes the dataset of `config` and returns its truth. `on_rows` is called with the number
/// of rows written so far (from several threads).
///
/// `config.out` must be missing or empty: parts of an older dataset left beside the new ones
/// would be read with them. With `config.force` the files of the kinds `generate` and
/// `convert` write (`part-*.parquet`, `truth.json`, `shard-*.sfs`, `manifest.json` and their
/// temporary files) are removed first; other files stay, and one a reader would take as data
/// (another `.parquet` file) makes even `force` refuse the directory.
pub fn generate(config: &GenerateConfig, on_rows: &(dyn Fn(u64) + Sync)) -> Result<Truth> {
    config.check()?;
    clear_out_dir(&config.out, config.force)?;
    std::fs::create_dir_all(&config.out).map_err(|e| Error::output(&config.out, e))?;
    let d = config.features;
    let mut rng = rng_for(config.seed, u64::MAX, RngStream::Generate);
    let scale = 1.0 / (d as f32).sqrt();
    let weights: Vec<f32> = (0..d)
        .map(|_| rng.sample::<f32, _>(StandardNormal) * scale)
        .collect();
    let bias = rng.sample::<f32, _>(StandardNormal) * 0.5;
    let k = if config.task == Task::Multiclass {
        config.classes
    } else {
        0
    };
    let class_weights: Vec<f32> = (0..k * d)
        .map(|_| rng.sample::<f32, _>(StandardNormal) * 3.0 * scale)
        .collect();
    let class_biases: Vec<f32> = (0..k)
        .map(|_| rng.sample::<f32, _>(StandardNormal) * 0.5)
        .collect();
    let classes = ClassScores {
        weights: &class_weights,
        biases: &class_biases,
    };
    let names: Vec<String> = (0..d).map(|j| format!("f{j}")).collect();
    let files: Vec<String> = (0..config.shards)
        .map(|s| format!("part-{s:05}.parquet"))
        .collect();
    let written = AtomicU64::new(0);
    (0..config.shards).into_par_iter().try_for_each(|shard| {
        let first = config.rows * shard as u64 / config.shards as u64;
        let last = config.rows * (shard as u64 + 1) / config.shards as u64;
        let path = config.out.join(&files[shard]);
        let mut writer = ParquetWriter::create(
            &path,
            &names,
            "label",
            config.compression,
            config.row_group_rows,
        )?;
        let mut start = first;
        let mut group = 0u64;
        while start < last {
            let n = (last - start).min(config.row_group_rows as u64) as usize;
            let (columns, labels) =
                row_group(config, (&weights, bias), &classes, shard as u64, group, n);
            writer.write_columns(columns, labels)?;
            start += n as u64;
            group += 1;
            on_rows(written.fetch_add(n as u64, Ordering::Relaxed) + n as u64);
        }
        writer.finish()
    })?;
    let truth = Truth {
        task: config.task,
        rows: config.rows,
        features: names,
        label: "label".to_string(),
        weights,
        bias,
        noise_std: config.noise_std,
        seed: config.seed,
        files,
        classes: (k > 0).then_some(k),
        class_weights,
        class_biases,
    };
    let truth_path = config.out.join("truth.json");
    let json = serde_json::to_vec_pretty(&truth).map_err(|e| Error::output(&truth_path, e))?;
    write_atomically(&truth_path, &json)?;
    Ok(truth)
}

/// Makes sure `dir` holds no dataset before one is written into it; see [`generate`].
fn clear_out_dir(dir: &Path, force: bool) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::output(dir, e)),
    };
    let mut names: Vec<String> = entries
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::output(dir, e))?;
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    if !force {
        return Err(Error::config(
            "out",
            format!(
                "{} is not empty ({} entries: {}{}); choose an empty directory, or give «force» to replace the dataset in it",
                dir.display(),
                names.len(),
                names[..names.len().min(3)].join(", "),
                if names.len() > 3 { ", ..." } else { "" }
            ),
        ));
    }
    let (ours, theirs): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| is_dataset_file(n));
    if let Some(data) = theirs.iter().find(|n| is_read_as_data(n)) {
        return Err(Error::config(
            "out",
            format!(
                "{} holds {data}, which generate did not write and training would read with the new dataset («force» removes only generate's own files); remove it or choose another directory",
                dir.display()
            ),
        ));
    }
    for name in ours {
        let path = dir.join(&name);
        tracing::debug!("removing {} of an older dataset", path.display());
        std::fs::remove_file(&path).map_err(|e| Error::output(&path, e))?;
    }
    Ok(())
}

/// A file of the kinds `generate` and `convert` write (or their temporary files).
fn is_dataset_file(name: &str) -> bool {
    let name = match name.strip_prefix('.') {
        Some(temp) if temp.ends_with(".tmp") => temp,
        Some(_) => return false,
        None => name,
    };
    (name.starts_with("part-") && name.contains(".parquet"))
        || (name.starts_with("shard-") && name.contains(".sfs"))
        || name.starts_with("truth.json")
        || name.starts_with(MANIFEST)
}

/// A name the Parquet reader lists as a data file of a directory.
fn is_read_as_data(name: &str) -> bool {
    !name.starts_with('.')
        && !name.starts_with('_')
        && (name.ends_with(".parquet") || name.ends_with(".parq") || name.ends_with(".sfs"))
}

/// The multiclass truth: `[K × D]` weights and K biases.
struct ClassScores<'a> {
    weights: &'a [f32],
    biases: &'a [f32],
}

/// One row group: `d` feature columns of `n` rows and the labels.
fn row_group(
    config: &GenerateConfig,
    (weights, bias): (&[f32], f32),
    classes: &ClassScores<'_>,
    shard: u64,
    group: u64,
    n: usize,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let mut rng = rng_for(config.seed, (shard << 32) | group, RngStream::Generate);
    let mut score = vec![bias; n];
    let columns: Vec<Vec<f32>> = weights
        .iter()
        .map(|&w| {
            let column: Vec<f32> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            for (s, x) in score.iter_mut().zip(&column) {
                *s += w * x;
            }
            column
        })
        .collect();
    let d = weights.len();
    let labels = match config.task {
        Task::Multiclass => {
            let k = classes.biases.len();
            let mut z = vec![0.0f32; k];
            (0..n)
                .map(|i| {
                    for (c, zc) in z.iter_mut().enumerate() {
                        let w = &classes.weights[c * d..(c + 1) * d];
                        *zc = classes.biases[c]
                            + w.iter()
                                .zip(&columns)
                                .map(|(w, col)| w * col[i])
                                .sum::<f32>();
                    }
                    let max = z.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
                    let total: f32 = z.iter().map(|v| (v - max).exp()).sum();
                    let mut u = rng.random::<f32>() * total;
                    let mut label = k - 1;
                    for (c, v) in z.iter().enumerate() {
                        u -= (v - max).exp();
                        if u < 0.0 {
                            label = c;
                            break;
                        }
                    }
                    label as f32
                })
                .collect()
        }
        Task::Circles => (0..n)
            .map(|i| {
                let r2 = columns[0][i] * columns[0][i] + columns[1][i] * columns[1][i];
                f32::from(u8::from(r2 < 2.0 * std::f32::consts::LN_2))
            })
            .collect(),
        Task::Xor => (0..n)
            .map(|i| f32::from(u8::from((columns[0][i] > 0.0) != (columns[1][i] > 0.0))))
            .collect(),
        Task::Logistic => score
            .iter()
            .map(|&z| {
                let p = 1.0 / (1.0 + (-z).exp());
                if rng.random::<f32>() < p { 1.0 } else { 0.0 }
            })
            .collect(),
        Task::Linear => score
            .iter()
            .map(|&z| z + config.noise_std * rng.sample::<f32, _>(StandardNormal))
            .collect(),
    };
    (columns, labels)
}
