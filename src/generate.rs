//! `generate`: synthetic Parquet datasets with a known true model.
//!
//! Features `f0..f{D-1}` are float32 draws from N(0, 1); the true weights are w ~ N(0, 1)/√D
//! and the bias b ~ N(0, 0.25), so the score x·w + b has a standard deviation near 1. The label
//! is Bernoulli(σ(x·w + b)) for `logistic` and x·w + b + N(0, noise²) for `linear`. The truth
//! goes to `DIR/truth.json`. Rows are produced one row group at a time (never the whole
//! dataset in memory), shards are written in parallel, and every row group draws from its own
//! RNG seeded from (seed, shard, row group), so the files do not depend on the thread count.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngExt;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::source::write::{Compression, ParquetWriter};
use crate::error::{Error, Result};
use crate::pipeline::{RngStream, rng_for};
use crate::train::output::write_atomically;

/// The kind of target to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Real-valued label: x·w + b + noise.
    Linear,
    /// Binary label: Bernoulli(σ(x·w + b)).
    Logistic,
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
    /// Output directory (created).
    pub out: PathBuf,
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
            out: PathBuf::from("data"),
        }
    }
}

impl GenerateConfig {
    /// Validates the settings.
    pub fn check(&self) -> Result<()> {
        if self.rows == 0 {
            return Err(Error::config("--rows", "must be at least 1"));
        }
        if self.features == 0 {
            return Err(Error::config("--features", "must be at least 1"));
        }
        if self.shards == 0 || self.shards as u64 > self.rows {
            return Err(Error::config(
                "--shards",
                "must be between 1 and the number of rows",
            ));
        }
        if self.row_group_rows == 0 {
            return Err(Error::config("--row-group-rows", "must be at least 1"));
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
pub fn generate(config: &GenerateConfig, on_rows: &(dyn Fn(u64) + Sync)) -> Result<Truth> {
    config.check()?;
    std::fs::create_dir_all(&config.out).map_err(|e| Error::output(&config.out, e))?;
    let d = config.features;
    let mut rng = rng_for(config.seed, u64::MAX, RngStream::Generate);
    let scale = 1.0 / (d as f32).sqrt();
    let weights: Vec<f32> = (0..d)
        .map(|_| rng.sample::<f32, _>(StandardNormal) * scale)
        .collect();
    let bias = rng.sample::<f32, _>(StandardNormal) * 0.5;
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
            let (columns, labels) = row_group(config, &weights, bias, shard as u64, group, n);
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
    };
    let truth_path = config.out.join("truth.json");
    let json = serde_json::to_vec_pretty(&truth).map_err(|e| Error::output(&truth_path, e))?;
    write_atomically(&truth_path, &json)?;
    Ok(truth)
}

/// One row group: `d` feature columns of `n` rows and the labels.
fn row_group(
    config: &GenerateConfig,
    weights: &[f32],
    bias: f32,
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
    let labels = match config.task {
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
