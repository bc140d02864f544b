//! What training writes: the model file, the metrics stream and the final report.
//!
//! Files that must never be seen half-written (the model, the report) go through
//! [`write_atomically`]: a temporary file in the same directory, fsync, then rename.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::ModelKind;
use crate::train::{EpochSummary, StepRecord};

/// The saved model (`--save-model`), format `streamfit-model` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always `streamfit-model`.
    pub format: String,
    /// Format version, 1.
    pub version: u32,
    /// `linear` or `logistic`.
    pub model: ModelKind,
    /// Feature names in parameter order.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// One weight per feature.
    pub weights: Vec<f32>,
    /// The intercept.
    pub bias: f32,
    /// With `--standardize`: the feature statistics training z-scored with. The weights above
    /// already apply to raw features; this is a record, not a step to repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardization: Option<crate::train::Standardization>,
}

impl ModelFile {
    /// A model file from parameters `[w_0 .. w_{d-1}, bias]`.
    pub fn new(model: ModelKind, features: Vec<String>, label: String, params: &[f32]) -> Self {
        let (weights, bias) = params.split_at(params.len() - 1);
        ModelFile {
            format: "streamfit-model".to_string(),
            version: 1,
            model,
            features,
            label,
            weights: weights.to_vec(),
            bias: bias[0],
            standardization: None,
        }
    }

    /// Writes the file atomically as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::output(path, e))?;
        write_atomically(path, &json)
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::config("model file", format!("{}: {e}", path.display())))
    }
}

/// A file `--on-bad-file skip` left out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The file.
    pub path: std::path::PathBuf,
    /// Why it could not be read.
    pub error: String,
}

/// The final report (`--report`): one JSON object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub model: ModelKind,
    pub rows: u64,
    pub num_features: usize,
    pub batch_size: u64,
    pub epochs: usize,
    /// Total iterations (updates) over all epochs.
    pub iterations: u64,
    pub iterations_per_epoch: u64,
    pub rows_per_epoch: u64,
    /// Full-data loss after the last epoch; null when evaluation is off.
    pub final_loss: Option<f64>,
    /// Wall-clock seconds of the run, evaluation included.
    pub seconds: f64,
    /// Training rows per second (evaluation excluded).
    pub rows_per_s: f64,
    /// Share of training time the trainer waited for data.
    pub stall_fraction: f64,
    /// Peak resident memory of the process (VmHWM).
    pub peak_rss_bytes: Option<u64>,
    /// Resident-memory budget the configuration implies for data in flight.
    pub memory_budget_bytes: u64,
    /// Per-epoch figures.
    pub epoch_summaries: Vec<EpochSummary>,
    /// When the run resumed from a checkpoint: from where, and the rows it re-read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<crate::train::ResumeInfo>,
    /// With `--profile`: per-stage figures and the diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub profile: Option<crate::telemetry::Profile>,
    /// Files left out by `--on-bad-file skip`, with the reason.
    #[serde(default)]
    pub skipped_files: Vec<SkippedFile>,
}

impl Report {
    /// Writes the report atomically as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::output(path, e))?;
        write_atomically(path, &json)
    }
}

/// JSON lines: one object per iteration and one per epoch (`--metrics`).
pub struct MetricsWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl MetricsWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::output(path, e))?;
        Ok(MetricsWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
        })
    }

    /// Appends `{"epoch","iteration","batch_loss","rows"}`.
    pub fn step(&mut self, step: &StepRecord) -> Result<()> {
        self.line(step)
    }

    /// Appends `{"epoch","iterations","rows","full_loss","seconds","rows_per_s",
    /// "stall_fraction","eval_seconds"}`.
    pub fn epoch(&mut self, epoch: &EpochSummary) -> Result<()> {
        self.line(epoch)?;
        self.out.flush().map_err(|e| Error::output(&self.path, e))
    }

    fn line(&mut self, value: &impl Serialize) -> Result<()> {
        serde_json::to_writer(&mut self.out, value).map_err(|e| Error::output(&self.path, e))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| Error::output(&self.path, e))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, fsync and
/// rename, so readers see the old file or the complete new one, never a torn one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    let temp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::output(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_file_round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        let model = ModelFile::new(
            ModelKind::Logistic,
            vec!["a".into(), "b".into()],
            "y".into(),
            &[0.5, -1.25, 3.0],
        );
        model.save(&path).unwrap();
        model.save(&path).unwrap(); // replacing an existing file works too
        assert_eq!(ModelFile::load(&path).unwrap(), model);
        assert_eq!(model.weights, vec![0.5, -1.25]);
        assert_eq!(model.bias, 3.0);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.json")]);
    }

    #[test]
    fn writing_into_a_missing_directory_is_an_output_error() {
        let err = write_atomically(Path::new("/nonexistent-dir/x.json"), b"{}").unwrap_err();
        assert!(matches!(err, Error::Output { .. }));
        assert!(!err.is_input_error());
    }
}
