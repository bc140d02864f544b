//! What training writes: the model file, the metrics stream and the final report.
//!
//! Files that must never be seen half-written (the model, the report) go through
//! [`crate::atomic_file`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::{file_kind, write_atomically};
use crate::data::categorical::Categorical;
use crate::data::schema::MissingValues;
use crate::error::{Error, Result};
use crate::model::{Activation, Head, ModelKind, ModelSpec, ParamLayout};
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::train::{EpochSummary, Standardization, StepRecord, ValidationRecord};

/// The saved model (`--save-model`), format `streamfit-model` version 6 when training
/// standardised (the parameters are stored as learned, in the standardised space, with the
/// `standardization` that `predict` applies), 4 when it carries categorical columns, 3 when it
/// carries other fitted preprocessing (`missing`, `positive_label`), else version 2 (which
/// every reader since version 2 reads). All load, and version 5 too: earlier streamfit wrote
/// standardised models as version 5 (with centred columns) or 2 to 4, their parameters folded
/// back to raw features, and those are applied as they are.
///
/// JSON, with the parameters as decimal floats that read back to the same f32 bits. The
/// linear models keep their parameters as `weights` (one per feature) and `bias`; softmax and
/// MLP models as one flat `params` vector, laid out layer by layer, each layer a row-major
/// weight matrix `[outputs × inputs]` followed by its `outputs` biases (see docs/models.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always `streamfit-model`.
    pub format: String,
    /// Format version: 6 with `standardization`, 4 with `categorical`, 3 with `missing` or
    /// `positive_label`, else 2 (5, or 2 to 4 with `standardization`: written before version
    /// 6, with folded parameters).
    pub version: u32,
    /// `linear`, `logistic`, `softmax`, `mlp` or a registered kind's name.
    pub model: ModelKind,
    /// `regression`, `binary` or `{"multiclass": K}`.
    pub head: Head,
    /// Hidden-layer widths (MLP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<usize>,
    /// Hidden-layer activation (MLP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    /// Feature names in parameter order.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// One weight per feature (linear and logistic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f32>,
    /// The intercept (linear and logistic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<f32>,
    /// All parameters in layer order (softmax and MLP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<f32>,
    /// When training standardised: the feature statistics it z-scored with, and the columns
    /// it centred as they were decoded (`centre`). Version 6: the parameters above apply to
    /// (x − mean) / std, which `predict` and `eval` compute ([`Self::standardization_to_apply`]).
    /// Older versions: a record only, the parameters apply to the decoded (centred) values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardization: Option<Standardization>,
    /// Version 3: the fill values and indicator features training applied to missing values;
    /// `predict` and `eval` apply the same to their data.
    #[serde(default, skip_serializing_if = "MissingValues::is_empty")]
    pub missing: MissingValues,
    /// Version 3: the label value training took as class 1 (every other value 0), so `eval`
    /// maps its labels the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_label: Option<String>,
    /// Version 4: the categorical columns and their fitted encoding (one-hot vocabularies or
    /// hash buckets), so `predict` and `eval` encode raw files the same (see
    /// [`crate::data::categorical`] and docs/models.md).
    #[serde(default, skip_serializing_if = "Categorical::is_empty")]
    pub categorical: Categorical,
    /// The optimizer's settings and state after the last step, so training can continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<SavedOptimizer>,
}

/// The optimizer part of a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedOptimizer {
    /// Its settings.
    pub config: OptimizerConfig,
    /// Its step count and moments.
    pub state: OptimizerState,
}

impl ModelFile {
    /// A model file for `spec` with parameters `params` in the model's layout.
    pub fn new(spec: &ModelSpec, features: Vec<String>, label: String, params: &[f32]) -> Self {
        let (weights, bias, params) = if spec.param_layout() == ParamLayout::WeightsAndBias {
            let (w, b) = params.split_at(params.len() - 1);
            (w.to_vec(), Some(b[0]), Vec::new())
        } else {
            (Vec::new(), None, params.to_vec())
        };
        ModelFile {
            format: "streamfit-model".to_string(),
            version: 2,
            model: spec.kind,
            head: spec.head,
            hidden: spec.hidden.clone(),
            activation: spec
                .kind
                .family()
                .has_hidden_layers()
                .then_some(spec.activation),
            features,
            label,
            weights,
            bias,
            params,
            standardization: None,
            missing: MissingValues::default(),
            positive_label: None,
            categorical: Categorical::default(),
            optimizer: None,
        }
    }

    /// Sets the fitted missing-value handling and the positive label, and the version that
    /// carries them (3 when either is set, else 2).
    pub fn with_preprocessing(
        mut self,
        missing: MissingValues,
        positive_label: Option<String>,
    ) -> Self {
        self.version = if missing.is_empty() && positive_label.is_none() {
            2
        } else {
            3
        };
        self.missing = missing;
        self.positive_label = positive_label;
        self
    }

    /// Sets the categorical columns' encoding; a model with categorical columns is version 4
    /// (which older readers refuse rather than misread).
    pub fn with_categorical(mut self, categorical: Categorical) -> Self {
        if !categorical.is_empty() {
            self.version = 4;
        }
        self.categorical = categorical;
        self
    }

    /// Sets the standardisation training used, with the parameters as learned under it:
    /// the file is then version 6 (which older readers refuse rather than misread: they would
    /// apply the parameters to raw features).
    pub fn with_standardization(mut self, standardization: Option<Standardization>) -> Self {
        if standardization.is_some() {
            self.version = 6;
        }
        self.standardization = standardization;
        self
    }

    /// The standardisation to apply to the decoded features before the parameters: a version-6
    /// file's. `None` without one, and for a file of versions 2 to 5, whose parameters were
    /// folded back to the decoded features (its `standardization` is a record only).
    pub fn standardization_to_apply(&self) -> Option<&Standardization> {
        self.standardization.as_ref().filter(|_| self.version >= 6)
    }

    /// The model's shape.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            kind: self.model,
            head: self.head,
            hidden: self.hidden.clone(),
            activation: self.activation.unwrap_or_default(),
        }
    }

    /// The parameters in the model's layout.
    pub fn parameters(&self) -> Vec<f32> {
        match self.bias {
            Some(b) => self.weights.iter().copied().chain([b]).collect(),
            None => self.params.clone(),
        }
    }

    /// Writes the file atomically as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::output(path, e))?;
        write_atomically(path, &json)
    }

    /// Reads a model file and checks that its parameters fit its shape. A path that is not a
    /// regular file (a FIFO, whose open would wait for a writer; a device; a directory) is
    /// refused before it is opened. A URL (`s3://...`, `https://...`) is read in one GET.
    pub fn load(path: &Path) -> Result<Self> {
        use crate::data::source::remote::{self, is_url, redact};
        let shown = redact(&path.to_string_lossy());
        let bad = |reason: String| Error::config("model", format!("{shown}: {reason}"));
        let bytes = if is_url(path) {
            remote::read(path)?
        } else {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            if !meta.is_file() {
                return Err(bad(format!("{}, not a regular file", file_kind(&meta))));
            }
            std::fs::read(path).map_err(|e| Error::io(path, e))?
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let known = [2, 3, 4, 5, 6].iter().any(|&v| value["version"] == v);
        if value["format"] != "streamfit-model" || !known {
            return Err(bad(format!(
                "not a streamfit model file of version 2 to 6 (format {}, version {})",
                value["format"], value["version"]
            )));
        }
        let file: ModelFile = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let spec = file.spec();
        // The kind, its settings and its head (a kind names a registered family, or the file
        // did not parse).
        if let Some((_, reason)) = spec.problem() {
            return Err(bad(reason));
        }
        let expected = spec.build(file.features.len()).num_params();
        let found = file.parameters().len();
        if found != expected {
            return Err(bad(format!(
                "{found} parameters, but a {} model on {} features has {expected}",
                spec.describe(),
                file.features.len()
            )));
        }
        if file.parameters().iter().any(|p| !p.is_finite()) {
            return Err(bad("a parameter is not finite".to_string()));
        }
        if let Some(s) = file.standardization_to_apply() {
            check_standardization(s, file.features.len()).map_err(bad)?;
        }
        Ok(file)
    }
}

/// Why a version-6 file's standardisation cannot be applied to rows of `num_features`, if it
/// cannot: a mean or std per feature, finite, and every std positive.
fn check_standardization(s: &Standardization, num_features: usize) -> Result<(), String> {
    if s.mean.len() != num_features || s.std.len() != num_features {
        return Err(format!(
            "standardization has {} means and {} standard deviations for {num_features} features",
            s.mean.len(),
            s.std.len()
        ));
    }
    if let Some(j) = (0..num_features)
        .find(|&j| !s.mean[j].is_finite() || !s.std[j].is_finite() || s.std[j] <= 0.0)
    {
        return Err(format!(
            "standardization of feature {j}: mean {}, std {} (a finite mean and a positive std)",
            s.mean[j], s.std[j]
        ));
    }
    Ok(())
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
    /// The last epoch's running training loss: the mean of its step losses over its rows
    /// (see `EpochSummary::train_loss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    /// Full-data loss after the last epoch, from the separate pass of `--full-loss`; absent
    /// without it. (Reports before the running loss called it `final_loss`.)
    #[serde(default, alias = "final_loss", skip_serializing_if = "Option::is_none")]
    pub full_loss: Option<f64>,
    /// Training accuracy (classification) after the last epoch, from the full-data pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_accuracy: Option<f64>,
    /// Training RMSE (regression) after the last epoch, from the full-data pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_rmse: Option<f64>,
    /// Validation loss and accuracy or RMSE of the last evaluation (`--valid`,
    /// `--valid-fraction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_valid: Option<crate::model::Metrics>,
    /// Rows each evaluation of the validation data covers (all of it, or `--valid-rows`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_rows: Option<u64>,
    /// With `--valid-fraction`: the training units held out as validation data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<crate::train::HeldOut>,
    /// With `--weight-column`: the column holding each row's weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_column: Option<String>,
    /// With `--class-weight balanced`: each class's weight, N / (C · n_c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f32>>,
    /// With `--early-stop`: the epoch whose parameters were saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// With `--early-stop`: the iteration after which the saved parameters were evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_iteration: Option<u64>,
    /// With `--early-stop`: the epochs run before patience ran out (absent when it never did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<usize>,
    /// The optimizer's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerConfig>,
    /// Ranks of a data-parallel (MPI) run; absent for one process. Rows, losses and rates
    /// are then over all ranks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranks: Option<usize>,
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
    /// How local files were read: `map` (through their memory maps) or `read` (explicit reads
    /// dropping the pages behind the readers).
    #[serde(default)]
    pub read_mode: String,
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

    /// Appends an [`EpochSummary`]: `{"epoch","iterations","rows","train_loss",
    /// "train_loss_rows","full_loss" (with the full-data pass),"valid" (after every epoch),
    /// "seconds","rows_per_s","stall_fraction","eval_seconds",...}`.
    pub fn epoch(&mut self, epoch: &EpochSummary) -> Result<()> {
        self.line(epoch)?;
        self.out.flush().map_err(|e| Error::output(&self.path, e))
    }

    /// Appends a [`ValidationRecord`] of `eval_every`: `{"epoch","iteration","valid_loss",
    /// "valid_accuracy" or "valid_rmse","valid_rows","best" (when it is),"seconds"}`.
    pub fn validation(&mut self, record: &ValidationRecord) -> Result<()> {
        self.line(record)?;
        self.out.flush().map_err(|e| Error::output(&self.path, e))
    }

    fn line(&mut self, value: &impl Serialize) -> Result<()> {
        serde_json::to_writer(&mut self.out, value).map_err(|e| Error::output(&self.path, e))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| Error::output(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_file_round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        let model = ModelFile::new(
            &ModelSpec::logistic(),
            vec!["a".into(), "b".into()],
            "y".into(),
            &[0.5, -1.25, 3.0],
        );
        model.save(&path).unwrap();
        model.save(&path).unwrap(); // replacing an existing file works too
        assert_eq!(ModelFile::load(&path).unwrap(), model);
        assert_eq!(model.weights, vec![0.5, -1.25]);
        assert_eq!(model.bias, Some(3.0));
        assert_eq!(model.parameters(), vec![0.5, -1.25, 3.0]);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.json")]);
    }

    #[test]
    fn a_standardised_model_is_version_6_and_only_version_6_is_standardised_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        let standardization = Standardization {
            mean: vec![10.0, 0.0],
            std: vec![2.0, 1.0],
            centre: Vec::new(),
        };
        let model = ModelFile::new(
            &ModelSpec::logistic(),
            vec!["a".into(), "b".into()],
            "y".into(),
            &[0.5, -1.25, 3.0],
        )
        .with_standardization(Some(standardization.clone()));
        assert_eq!(model.version, 6);
        model.save(&path).unwrap();
        let loaded = ModelFile::load(&path).unwrap();
        assert_eq!(loaded.standardization_to_apply(), Some(&standardization));
        // The same record in a version-5 file is folded into its parameters already.
        let older = ModelFile {
            version: 5,
            ..loaded.clone()
        };
        assert_eq!(older.standardization_to_apply(), None);
        // A version-6 standardisation that cannot be applied is refused on load.
        let mut broken = loaded;
        broken.standardization.as_mut().unwrap().std[1] = 0.0;
        broken.save(&path).unwrap();
        let err = ModelFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("standardization of feature 1"), "{err}");
        broken.standardization.as_mut().unwrap().mean.pop();
        broken.save(&path).unwrap();
        let err = ModelFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("1 means and 2 standard deviations"), "{err}");
    }

    #[test]
    fn saving_into_a_missing_directory_is_an_output_error() {
        let model = ModelFile::new(
            &ModelSpec::linear(),
            vec!["a".into()],
            "y".into(),
            &[1.0, 2.0],
        );
        let err = model
            .save(Path::new("/nonexistent-dir/x.json"))
            .unwrap_err();
        assert!(matches!(err, Error::Output { .. }));
        assert!(!err.is_input_error());
    }
}
