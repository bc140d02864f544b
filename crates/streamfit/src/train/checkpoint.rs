//! Crash-safe checkpoints and exact resume.
//!
//! A checkpoint is written at a step boundary (every `--checkpoint-every` steps, at every epoch
//! end, and when a run is interrupted). It holds the parameters, the optimizer state (step count
//! and moments), the best model so far under `--early-stop`, the epoch summaries so far, the iteration, the [`StreamCursor`] of the running
//! epoch (absent at an epoch boundary), the [`RunFingerprint`] of everything that shapes the
//! batch sequence and the parameter trajectory, and the identity of the data (each file's path,
//! size and a CRC32C of its last 64 KiB: the Parquet footer, or a shard's checksum table).
//!
//! The file is one header line, `streamfit-checkpoint 2 <length> <crc32c>`, then a JSON body of
//! that length with that checksum. It is written to a temporary name, synced, renamed and the
//! directory synced, so a crash (even `kill -9`) leaves the previous checkpoint or the new one,
//! never a torn file; a file whose length or checksum is wrong is never loaded.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::AtomicFile;
use crate::data::source::Source;
use crate::error::{Error, Result};
use crate::model::ModelSpec;
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::pipeline::StreamCursor;
use crate::train::{EpochSummary, Standardization};

const MAGIC: &str = "streamfit-checkpoint";
const VERSION: u32 = 2;
const EXTENSION: &str = "sfck";
/// Bytes at the end of each data file covered by its identity checksum.
const TAIL_BYTES: u64 = 64 << 10;

/// Where and how often checkpoints are written.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Directory of the checkpoint files (created when missing).
    pub dir: PathBuf,
    /// Also write one every this many iterations (besides every epoch end).
    pub every_steps: Option<u64>,
    /// Checkpoints kept; older ones are deleted. At least 1.
    pub keep: usize,
}

/// What must not change between a run and its resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFingerprint {
    /// Model kind and shape.
    pub model: ModelSpec,
    /// Optimizer, learning rate and schedule.
    pub optimizer: OptimizerConfig,
    /// Seed of the initial parameters.
    pub init_seed: u64,
    /// `--early-stop` patience.
    pub early_stop: Option<usize>,
    /// Iterations the cosine schedule spans (set by `--epochs`); absent for other schedules.
    pub schedule_steps: Option<u64>,
    /// Ranks of a data-parallel run (1 for one process).
    #[serde(default = "one")]
    pub world: usize,
    /// Rows per step.
    pub batch_rows: u64,
    /// The last partial step is dropped.
    pub drop_last: bool,
    /// Shuffle seed (absent with `--no-shuffle`).
    pub shuffle_seed: Option<u64>,
    /// Shuffle-buffer rows.
    pub shuffle_buffer_rows: usize,
    /// Feature names, in order.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// Standardisation statistics, when on.
    pub standardize: Option<Standardization>,
}

impl RunFingerprint {
    /// CRC32C of the JSON form.
    pub fn hash(&self) -> u32 {
        crc32c::crc32c(&serde_json::to_vec(self).expect("a fingerprint serialises"))
    }

    /// The first difference from `other` (this run's), as "field: checkpoint X, now Y".
    pub fn difference(&self, now: &RunFingerprint) -> Option<String> {
        let mut diffs = Vec::new();
        let mut check = |name: &str, a: String, b: String| {
            if a != b {
                diffs.push(format!("{name} was {a}, now {b}"));
            }
        };
        check("«model»", self.model.describe(), now.model.describe());
        check(
            "«lr»",
            self.optimizer.learning_rate.to_string(),
            now.optimizer.learning_rate.to_string(),
        );
        if self.optimizer.learning_rate == now.optimizer.learning_rate {
            let json = |c: &OptimizerConfig| serde_json::to_string(c).unwrap_or_default();
            check(
                "the optimizer settings",
                json(&self.optimizer),
                json(&now.optimizer),
            );
        }
        check(
            "«seed» (initial parameters)",
            self.init_seed.to_string(),
            now.init_seed.to_string(),
        );
        check(
            "the number of MPI ranks",
            self.world.to_string(),
            now.world.to_string(),
        );
        check(
            "«epochs» (the cosine schedule's length)",
            format!("{:?}", self.schedule_steps),
            format!("{:?}", now.schedule_steps),
        );
        check(
            "«early_stop»",
            format!("{:?}", self.early_stop),
            format!("{:?}", now.early_stop),
        );
        check(
            "«batch_size»",
            self.batch_rows.to_string(),
            now.batch_rows.to_string(),
        );
        check(
            "«drop_last»",
            self.drop_last.to_string(),
            now.drop_last.to_string(),
        );
        let seed = |s: Option<u64>| s.map_or("«no_shuffle»".to_string(), |s| format!("seed {s}"));
        check(
            "«seed»/«no_shuffle»",
            seed(self.shuffle_seed),
            seed(now.shuffle_seed),
        );
        check(
            "«shuffle_buffer»",
            self.shuffle_buffer_rows.to_string(),
            now.shuffle_buffer_rows.to_string(),
        );
        check(
            "the feature columns",
            self.features.join(","),
            now.features.join(","),
        );
        check("«label»", self.label.clone(), now.label.clone());
        check(
            "«standardize»",
            (self.standardize.is_some()).to_string(),
            (now.standardize.is_some()).to_string(),
        );
        if diffs.is_empty() && self.standardize != now.standardize {
            diffs.push("the standardisation statistics differ (the data changed?)".to_string());
        }
        (!diffs.is_empty()).then(|| diffs.join("; "))
    }
}

fn one() -> usize {
    1
}

/// One data file as a checkpoint remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path as opened.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC32C of the last 64 KiB (the footer of a Parquet file).
    pub tail_crc32c: u32,
}

/// The identity of a source's files.
pub fn data_identity(source: &dyn Source) -> Result<Vec<DataFile>> {
    source
        .files()
        .iter()
        .map(|path| {
            let io = |e| Error::io(path, e);
            let mut file = File::open(path).map_err(io)?;
            let bytes = file.metadata().map_err(io)?.len();
            let start = bytes.saturating_sub(TAIL_BYTES);
            let mut tail = Vec::with_capacity((bytes - start) as usize);
            file.seek(SeekFrom::Start(start)).map_err(io)?;
            file.read_to_end(&mut tail).map_err(io)?;
            Ok(DataFile {
                path: path.clone(),
                bytes,
                tail_crc32c: crc32c::crc32c(&tail),
            })
        })
        .collect()
}

/// A checkpoint: everything needed to continue a run exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// What the run was.
    pub fingerprint: RunFingerprint,
    /// CRC32C of the fingerprint's JSON: a quick identity of the run's configuration.
    pub fingerprint_hash: u32,
    /// The data it read.
    pub data: Vec<DataFile>,
    /// Iterations done over the whole run.
    pub iteration: u64,
    /// The epoch (from 0) to run or continue next.
    pub next_epoch: u64,
    /// Where that epoch's stream stands; absent when it starts from its beginning, and in a
    /// data-parallel run (see `rank_cursors`).
    pub cursor: Option<StreamCursor>,
    /// In a data-parallel run, where each rank's stream stands, by rank; empty at an epoch
    /// boundary. Rank 0 computes them all: a rank's stream is a pure function of the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rank_cursors: Vec<StreamCursor>,
    /// Parameters `[w.., b]` (in the standardised space when standardising).
    pub params: Vec<f32>,
    /// Optimizer state (the step count, and the moments of momentum and Adam).
    pub optimizer_state: OptimizerState,
    /// With `--early-stop`: the best model so far.
    #[serde(default)]
    pub best: Option<crate::train::BestModel>,
    /// Summaries of the finished epochs.
    pub epochs_done: Vec<EpochSummary>,
}

impl Checkpoint {
    /// Refuses a resume whose configuration or data differs from the checkpoint's, naming
    /// the difference.
    pub fn check_compatible(&self, now: &RunFingerprint, data: &[DataFile]) -> Result<()> {
        if let Some(diff) = self.fingerprint.difference(now) {
            return Err(Error::config(
                "resume",
                format!("the checkpoint belongs to a different run: {diff}"),
            ));
        }
        if self.data.len() != data.len() {
            return Err(Error::config(
                "resume",
                format!(
                    "the checkpoint was taken on {} file(s), the data now has {}",
                    self.data.len(),
                    data.len()
                ),
            ));
        }
        for (then, now) in self.data.iter().zip(data) {
            if then.bytes != now.bytes || then.tail_crc32c != now.tail_crc32c {
                return Err(Error::config(
                    "resume",
                    format!(
                        "the data changed since the checkpoint: {} was {} bytes (footer crc {:#010x}), {} is {} bytes (footer crc {:#010x})",
                        then.path.display(),
                        then.bytes,
                        then.tail_crc32c,
                        now.path.display(),
                        now.bytes,
                        now.tail_crc32c
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Writes the checkpoint into `config.dir` crash-safely and deletes all but the newest
    /// `config.keep`. Returns its path.
    pub fn save(&self, config: &CheckpointConfig) -> Result<PathBuf> {
        let dir = &config.dir;
        std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
        let path = dir.join(format!("ckpt-{:012}.{EXTENSION}", self.iteration));
        let body = serde_json::to_vec(self).map_err(|e| Error::output(&path, e))?;
        let header = format!(
            "{MAGIC} {VERSION} {} {:08x}\n",
            body.len(),
            crc32c::crc32c(&body)
        );
        let mut file = AtomicFile::create(&path)?;
        file.write_all(header.as_bytes())
            .and_then(|()| file.write_all(&body))
            .map_err(|e| Error::output(&path, e))?;
        file.commit()?;
        let files = list(dir)?;
        for (_, old) in files.iter().rev().skip(config.keep.max(1)) {
            let _ = std::fs::remove_file(old);
        }
        // Temporary files of runs killed mid-write: a minute old at least, so a file another
        // process is writing right now is left alone.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.filter_map(|e| e.ok()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() >= 60);
                if name.starts_with(".ckpt-") && name.contains(".tmp") && stale {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(path)
    }

    /// Reads and verifies one checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |reason: String| Error::CorruptCheckpoint {
            file: path.to_path_buf(),
            reason,
        };
        let newline = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no header line".into()))?;
        let header =
            std::str::from_utf8(&bytes[..newline]).map_err(|_| bad("bad header".into()))?;
        let fields: Vec<&str> = header.split(' ').collect();
        let [magic, version, len, crc] = fields[..] else {
            return Err(bad(format!("bad header {header:?}")));
        };
        if magic != MAGIC || version != VERSION.to_string() {
            return Err(bad(format!(
                "not a version-{VERSION} checkpoint ({header:?})"
            )));
        }
        let body = &bytes[newline + 1..];
        if len.parse::<usize>().ok() != Some(body.len()) {
            return Err(bad(format!(
                "truncated or padded: header says {len} bytes, found {}",
                body.len()
            )));
        }
        let computed = crc32c::crc32c(body);
        if u32::from_str_radix(crc, 16).ok() != Some(computed) {
            return Err(bad(format!(
                "checksum mismatch (stored {crc}, computed {computed:08x})"
            )));
        }
        serde_json::from_slice(body).map_err(|e| bad(format!("body: {e}")))
    }

    /// Checkpoint files in `dir` of iterations after `iteration`.
    pub fn newer_than(dir: &Path, iteration: u64) -> Result<Vec<PathBuf>> {
        Ok(list(dir)?
            .into_iter()
            .filter(|(i, _)| *i > iteration)
            .map(|(_, p)| p)
            .collect())
    }

    /// True when `dir` holds at least one checkpoint file.
    pub fn exists_in(dir: &Path) -> bool {
        list(dir).is_ok_and(|files| !files.is_empty())
    }

    /// The newest checkpoint in `dir` that verifies, with a warning for each newer one that
    /// does not (skipped).
    pub fn load_latest(dir: &Path) -> Result<(Checkpoint, PathBuf, Vec<String>)> {
        let mut warnings = Vec::new();
        for (_, path) in list(dir)?.into_iter().rev() {
            match Checkpoint::load(&path) {
                Ok(checkpoint) => return Ok((checkpoint, path, warnings)),
                Err(e) => warnings.push(format!("skipping checkpoint: {e}")),
            }
        }
        Err(Error::config(
            "resume",
            format!(
                "no usable checkpoint in {}{}",
                dir.display(),
                if warnings.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", warnings.join("; "))
                }
            ),
        ))
    }
}

/// Checkpoint files in `dir`, oldest first, by iteration.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let iteration = name
                .strip_prefix("ckpt-")?
                .strip_suffix(&format!(".{EXTENSION}"))?
                .parse()
                .ok()?;
            Some((iteration, p))
        })
        .collect();
    files.sort();
    Ok(files)
}
