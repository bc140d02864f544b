//! The checkpoint file: what a [`Checkpoint`] holds, and how it is saved, found and loaded.
//!
//! The file is one header line, `streamfit-checkpoint 2 <length> <crc32c>`, then a JSON body of
//! that length with that checksum (version 3 for a run with more than one shuffle lane, whose
//! stream cursor holds every lane). It is written through [`AtomicFile`] (a temporary name,
//! synced, renamed, the directory synced), so a crash (even `kill -9`) leaves the previous
//! checkpoint or the new one, never a torn file; a file whose length or checksum is wrong is
//! never loaded. Which checkpoints a run writes, and when, is `writer.rs`'s business.
//!
//! The directory may be an object-storage prefix (`s3://bucket/run1/`): a checkpoint is then
//! one object written by one PUT (atomic: the old object or the whole new one), listed,
//! loaded and deleted by the same names, in the same order and with the same checks.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CheckpointConfig, RunFingerprint};
use crate::atomic_file::AtomicFile;
use crate::data::source::remote::{self, is_url};
use crate::data::source::{FileIdentity, Source};
use crate::error::{Error, Result};
use crate::optim::OptimizerState;
use crate::pipeline::{FileDrop, StreamCursor, StreamPosition};
use crate::train::{BestModel, EpochSummary, ValidationRecord};

const MAGIC: &str = "streamfit-checkpoint";
const VERSION: u32 = 2;
/// The version of a checkpoint of a run with more than one shuffle lane: a binary that knows
/// no lanes refuses it instead of resuming it with one.
const LANES_VERSION: u32 = 3;
const EXTENSION: &str = "sfck";
/// One data file as a checkpoint remembers it: the source's [`FileIdentity`] (path, size and
/// the CRC32C of its last 64 KiB).
pub type DataFile = FileIdentity;

/// The identity of a source's files: what a checkpoint records and a resume compares. The
/// source reads it ([`Source::identity`]); train opens no data file.
pub fn data_identity(source: &dyn Source) -> Result<Vec<DataFile>> {
    source.identity()
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
    /// With `early_stop`: the best model so far.
    #[serde(default)]
    pub best: Option<BestModel>,
    /// Summaries of the finished epochs.
    pub epochs_done: Vec<EpochSummary>,
    /// Files dropped mid-epoch so far (under «on_bad_file» skip): later epochs leave them
    /// out, and the epoch that found one delivers fewer rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_dropped: Vec<FileDrop>,
    /// Inside an epoch: its running training loss so far, so that the resumed epoch's
    /// `train_loss` is the uninterrupted run's. Absent at an epoch boundary, and in a
    /// checkpoint written before streamfit carried it (the resumed epoch's figure then covers
    /// the steps since the resume, and says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_loss: Option<RunningLoss>,
    /// With «eval_every»: the last evaluation of the validation data so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_validation: Option<ValidationRecord>,
}

/// The running sums of an epoch's training loss: the step losses summed over the rows so far
/// (every rank's together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningLoss {
    /// The summed loss of the steps so far (each at the parameters before its update).
    pub loss_sum: f64,
    /// Their rows.
    pub rows: u64,
    /// Their weight sum (their rows when unweighted): the mean is per unit of weight. 0 in
    /// checkpoints from before weights, which counted rows only.
    #[serde(default)]
    pub weight_sum: f64,
}

impl RunningLoss {
    /// Adds a step's summed loss over `rows` rows.
    pub fn add(&mut self, loss_sum: f64, rows: u64) {
        self.loss_sum += loss_sum;
        self.rows += rows;
    }

    /// Adds a finished step: its loss, rows and, when weighted, its weight sum.
    pub fn add_step(&mut self, totals: &crate::train::StepTotals) {
        if self.weight_sum == 0.0 {
            // Sums from a checkpoint that counted rows only.
            self.weight_sum = self.rows as f64;
        }
        self.add(totals.loss_sum, totals.rows);
        self.weight_sum += totals.weight_sum;
    }

    /// The mean loss per row (per unit of weight when weighted); `None` before any row.
    pub fn mean(&self) -> Option<f64> {
        let by = if self.weight_sum > 0.0 {
            self.weight_sum
        } else {
            self.rows as f64
        };
        (self.rows > 0).then(|| self.loss_sum / by)
    }
}

impl Checkpoint {
    /// Where the stream of the epoch to continue stands: one process's cursor, every rank's,
    /// or `None` at an epoch boundary.
    pub fn position(&self) -> Option<StreamPosition> {
        match (&self.cursor, self.rank_cursors.is_empty()) {
            (Some(cursor), _) => Some(StreamPosition::Process(cursor.clone())),
            (None, false) => Some(StreamPosition::Ranks(self.rank_cursors.clone())),
            (None, true) => None,
        }
    }

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
        if !is_url(dir) {
            std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
        }
        let path = dir.join(format!("ckpt-{:012}.{EXTENSION}", self.iteration));
        let body = serde_json::to_vec(self).map_err(|e| Error::output(&path, e))?;
        let version = if self.fingerprint.shuffle_lanes > 1 {
            LANES_VERSION
        } else {
            VERSION
        };
        let header = format!(
            "{MAGIC} {version} {} {:08x}\n",
            body.len(),
            crc32c::crc32c(&body)
        );
        let mut file = AtomicFile::create(&path)?;
        file.write_all(header.as_bytes())
            .and_then(|()| file.write_all(&body))
            .map_err(|e| Error::output(&path, e))?;
        file.commit()?;
        // Only older files count and go: a file named after a later iteration is not this
        // run's (a renamed copy, or a corrupt file a resume left), and never pushes one of
        // this run's checkpoints out.
        let files = list(dir)?;
        for (_, old) in files
            .iter()
            .filter(|(named, _)| *named <= self.iteration)
            .rev()
            .skip(config.keep.max(1))
        {
            remove(old);
        }
        remove_stale_temporaries(dir);
        Ok(path)
    }

    /// Reads and verifies one checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = read_bytes(path)?;
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
        if magic != MAGIC
            || (version != VERSION.to_string() && version != LANES_VERSION.to_string())
        {
            return Err(bad(format!(
                "not a version-{VERSION} or -{LANES_VERSION} checkpoint ({header:?})"
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

    /// Checkpoint files in `dir` named after an iteration after `iteration` that do not
    /// verify: the corrupt files [`Checkpoint::load_latest`] skipped on its way to the
    /// checkpoint of `iteration`. A valid file whose name disagrees with its content is not
    /// among them (it is reported and ignored, never set aside).
    pub fn corrupt_newer_than(dir: &Path, iteration: u64) -> Result<Vec<PathBuf>> {
        Ok(list(dir)?
            .into_iter()
            .filter(|(named, path)| *named > iteration && Checkpoint::load(path).is_err())
            .map(|(_, p)| p)
            .collect())
    }

    /// True when `dir` holds at least one checkpoint file; false when it does not exist (a
    /// prefix in object storage with no object is empty). A directory or prefix that cannot be
    /// listed (no permission, a failed request) is an error naming it, never "no checkpoint":
    /// `--resume auto` would otherwise start afresh over a run it cannot see.
    pub fn exists_in(dir: &Path) -> Result<bool> {
        if !is_url(dir)
            && let Err(e) = dir.symlink_metadata()
            && e.kind() == std::io::ErrorKind::NotFound
        {
            return Ok(false);
        }
        let files = list(dir).map_err(|e| {
            Error::config(
                "checkpoint_dir",
                format!("cannot look for checkpoints: {e}"),
            )
        })?;
        Ok(!files.is_empty())
    }

    /// The newest checkpoint in `dir` that verifies and holds the iteration its name says, with
    /// a warning for each newer file that does not (skipped). Files are taken newest first by
    /// name, but a file is trusted by its content: one whose iteration differs from its name
    /// (a renamed or copied checkpoint) is never loaded, so it cannot make a resume start from
    /// an older state than the newest valid checkpoint, nor set newer valid ones aside.
    pub fn load_latest(dir: &Path) -> Result<(Checkpoint, PathBuf, Vec<String>)> {
        let mut warnings = Vec::new();
        for (named, path) in list(dir)?.into_iter().rev() {
            match Checkpoint::load(&path) {
                Ok(checkpoint) if checkpoint.iteration == named => {
                    return Ok((checkpoint, path, warnings));
                }
                Ok(checkpoint) => warnings.push(format!(
                    "ignoring checkpoint {}: its name says iteration {named}, it holds iteration {}",
                    path.display(),
                    checkpoint.iteration
                )),
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

/// How old a temporary checkpoint file must be before it counts as a killed run's: a file
/// another process is writing right now is left alone.
const STALE_TEMPORARY_SECS: u64 = 60;

/// Removes the temporary files of checkpoint saves that never finished (a run killed while
/// writing): [`AtomicFile`]'s `.ckpt-<iteration>.sfck.XXXXXX.tmp`, a minute old at least.
/// Best effort: what cannot be listed or removed stays.
/// (A prefix in object storage has none: each checkpoint is one PUT.)
pub(crate) fn remove_stale_temporaries(dir: &Path) {
    if is_url(dir) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let temporary = name
            .strip_prefix(".ckpt-")
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .is_some_and(|rest| rest.contains(&format!(".{EXTENSION}.")));
        let stale = || {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() >= STALE_TEMPORARY_SECS)
        };
        if temporary && entry.file_type().is_ok_and(|t| t.is_file()) && stale() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The bytes of the checkpoint file (or object) at `path`.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    if is_url(path) {
        return remote::read(path);
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Deletes a checkpoint file (or object), best effort.
fn remove(path: &Path) {
    if is_url(path) {
        let _ = remote::delete(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// Checkpoint files in `dir` (or objects directly under the prefix), oldest first, by
/// iteration.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let paths: Vec<PathBuf> = if is_url(dir) {
        remote::names(dir)?
            .into_iter()
            .map(|name| dir.join(name))
            .collect()
    } else {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        entries.filter_map(|e| e.ok().map(|e| e.path())).collect()
    };
    let mut files: Vec<(u64, PathBuf)> = paths
        .into_iter()
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
