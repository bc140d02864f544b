//! `streamfit.train`, `streamfit.load_model` and `streamfit.Model`, `streamfit.generate`: the
//! command line's trainer, saved models and demo datasets, with keyword arguments named as
//! the command line's long flags (`--batch-size` is `batch_size=`).
//!
//! `train` prepares the run with [`PreparedRun`] (as `streamfit train` does), trains with the
//! GIL released, writes the outputs it was asked for and returns the report as a dict (the
//! JSON `report=` writes). While it trains it takes the GIL back every 100 ms to check for
//! signals: Ctrl-C stops it at the next step boundary (writing a checkpoint when
//! `checkpoint_dir` is set) and raises `KeyboardInterrupt`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyReadonlyArray2};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;
use streamfit::comm::SingleProcess;
use streamfit::data::ReadMode;
use streamfit::data::source::write::Compression;
use streamfit::generate::{GenerateConfig, Task};
use streamfit::predict::{ApplyConfig, predict_rows};
use streamfit::run::PreparedRun;
use streamfit::train::{EpochSummary, ModelFile, StepRecord, TrainObserver};

use crate::errors::IntoPy;
use crate::options::{Options, choice, paths};
use crate::profile;
use crate::train_options::train_config;

/// Any serialisable value as the Python object its JSON reads as.
pub(crate) fn to_python<'py, T: Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(value)
        .map_err(|e| PyRuntimeError::new_err(format!("internal error: {e}")))?;
    py.import("json")?.call_method1("loads", (json,))
}

/// Checks for signals every 100 ms of training and shows progress on stderr when asked.
struct PyObserver {
    interrupt: Arc<AtomicBool>,
    last_check: Instant,
    /// A signal handler's exception (KeyboardInterrupt), raised once training stopped.
    raised: Option<PyErr>,
    progress: bool,
    total_steps: u64,
    started: Instant,
    last_shown: Instant,
}

impl TrainObserver for PyObserver {
    fn on_step(&mut self, step: &StepRecord) -> streamfit::error::Result<()> {
        if self.last_check.elapsed() >= Duration::from_millis(100) {
            self.last_check = Instant::now();
            if self.raised.is_none()
                && let Err(e) = Python::attach(|py| py.check_signals())
            {
                self.raised = Some(e);
                self.interrupt.store(true, Ordering::Relaxed);
            }
        }
        if self.progress && self.last_shown.elapsed() >= Duration::from_millis(500) {
            self.last_shown = Instant::now();
            let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
            eprint!(
                "\riteration {}/{} ({:.0} it/s), batch loss {:.6}   ",
                step.iteration,
                self.total_steps,
                step.iteration as f64 / seconds,
                step.batch_loss
            );
            let _ = std::io::stderr().flush();
        }
        Ok(())
    }

    fn on_epoch(&mut self, epoch: &EpochSummary) -> streamfit::error::Result<()> {
        if self.progress {
            eprintln!(
                "\repoch {}: {} iterations, {} rows, {}, {:.0} rows/s, stall {:.1}%",
                epoch.epoch,
                epoch.iterations,
                epoch.rows,
                match epoch.full_loss {
                    Some(l) => format!("loss {l:.6}"),
                    None => epoch
                        .train_loss
                        .map_or("train loss -".to_string(), |l| format!("train loss {l:.6}")),
                },
                epoch.rows_per_s,
                epoch.stall_fraction * 100.0
            );
        }
        Ok(())
    }
}

/// Refuses `trace=`, saying what to use instead. The command line's Chrome trace is written by
/// a tracing subscriber installed once per process (tracing-chrome's, which caches its channel
/// per thread, so a second trace in one process would lose the spans of reused threads); a
/// Python process keeps one subscriber, the profile's, for all its runs and loaders.
fn refuse_trace(options: &mut Options<'_>) -> PyResult<()> {
    if options.path("trace")?.is_some() {
        return Err(PyValueError::new_err(
            "invalid trace: train() cannot write a Chrome trace; run the command line's \
             `streamfit train --trace FILE.json` for one, or use profile=True (the report's \
             per-stage figures) or Loader.profile()",
        ));
    }
    Ok(())
}

/// Trains as `streamfit train` does; returns the report as a dict.
#[pyfunction]
#[pyo3(signature = (paths, **options))]
pub(crate) fn train<'py>(
    py: Python<'py>,
    paths: &Bound<'py, PyAny>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut options = Options::new("train", options)?;
    let data = self::paths(paths)
        .map_err(|_| PyTypeError::new_err("train(): paths must be a path or a list of paths"))?;
    let mut config = train_config(data, &mut options)?;
    refuse_trace(&mut options)?;
    let progress = options.bool("progress")?;
    // `quiet=True` is the command line's `-q`: no progress (which is also the default here).
    let quiet = options.bool("quiet")?;
    if progress == Some(true) && quiet == Some(true) {
        return Err(PyValueError::new_err(
            "invalid quiet: cannot be combined with progress=True",
        ));
    }
    let progress = progress.unwrap_or(false) && quiet != Some(true);
    options.finish()?;
    let interrupt = Arc::new(AtomicBool::new(false));
    config.trainer.interrupt = Some(interrupt.clone());
    profile::install();
    let spans_base = profile::totals();
    let mut observer = PyObserver {
        interrupt,
        last_check: Instant::now(),
        raised: None,
        progress,
        total_steps: 0,
        started: Instant::now(),
        last_shown: Instant::now(),
    };
    // A prepared run holds the communicator and stays on this thread, inside one release of
    // the GIL.
    let outcome = py.detach(|| {
        let comm = SingleProcess;
        let mut run = PreparedRun::new(config, &comm)?;
        observer.total_steps = run
            .pipeline()
            .total_steps(run.config().trainer.epochs as u64);
        let started = Instant::now();
        let result = run.train(&mut observer)?;
        let profile = run.config().outputs.profile.then(|| {
            run.profile(
                &profile::since(&spans_base),
                started.elapsed().as_secs_f64(),
                &result,
            )
        });
        let report = run.report(&result, profile);
        run.write_outputs(&result, &report)?;
        Ok(report)
    });
    if progress {
        eprintln!();
    }
    if let Some(raised) = observer.raised.take() {
        return Err(raised);
    }
    let report = outcome.py_err()?;
    to_python(py, &report)
}

/// A saved model (see `streamfit/__init__.pyi`).
#[pyclass(module = "streamfit", frozen)]
pub(crate) struct Model {
    file: ModelFile,
    model: Box<dyn streamfit::model::Model>,
    params: Vec<f32>,
}

#[pymethods]
impl Model {
    /// The model kind (`linear`, `logistic`, `softmax`, `mlp`).
    #[getter]
    fn kind(&self) -> &'static str {
        self.file.model.name()
    }

    /// Feature names, in the order `predict_features` takes them.
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.file.features.clone()
    }

    /// The label column it was trained on.
    #[getter]
    fn label(&self) -> String {
        self.file.label.clone()
    }

    /// Outputs per row: 1, or K class probabilities.
    #[getter]
    fn num_outputs(&self) -> usize {
        self.model.head().outputs()
    }

    /// Linear and logistic models: one weight per feature. Others: every parameter, layer by
    /// layer (each a row-major weight matrix followed by its biases). As stored: for a model
    /// trained standardised (version 6) they apply to the standardised features.
    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f32>> {
        if self.file.bias.is_some() {
            self.file.weights.clone().into_pyarray(py)
        } else {
            self.file.params.clone().into_pyarray(py)
        }
    }

    /// The intercept of a linear or logistic model, else `None`.
    #[getter]
    fn bias(&self) -> Option<f32> {
        self.file.bias
    }

    /// The model file as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.file)
    }

    /// Outputs for already-encoded rows `x` (float32, `(rows, features)`, as training decoded
    /// them): standardised first when the model was trained standardised (version 6), then the
    /// value (regression), the probability of class 1 (binary), or `(rows, K)` class
    /// probabilities.
    fn predict_features<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let x = x.as_array();
        let (rows, d) = x.dim();
        if d != self.file.features.len() {
            return Err(PyValueError::new_err(format!(
                "x has {d} features per row; the model takes {} ({})",
                self.file.features.len(),
                self.file.features.join(", ")
            )));
        }
        let mut features: Vec<f32> = match x.as_slice() {
            Some(slice) => slice.to_vec(),
            None => x.iter().copied().collect(),
        };
        if let Some(s) = self.file.standardization_to_apply() {
            s.apply_rows(&mut features);
        }
        let k = self.model.head().outputs();
        let out = py.detach(|| {
            let mut out = vec![0.0f32; rows * k];
            // In pieces, so a network's scratch stays small.
            const PIECE: usize = 16_384;
            for (rows_in, out_piece) in features
                .chunks(PIECE * d.max(1))
                .zip(out.chunks_mut(PIECE * k))
            {
                self.model.predict(&self.params, rows_in, out_piece);
            }
            out
        });
        outputs_array(py, out, rows, k)
    }

    /// Outputs for the raw rows of Parquet `paths` (files or directories), decoded with the
    /// preprocessing the model holds exactly as `streamfit predict` decodes them (casts,
    /// fills, indicators, categorical encodings, centres, then the standardisation): what
    /// `Model.predict(table)` calls on the table written to a temporary file. The label column
    /// need not be there. Shaped as `predict_features`'s outputs.
    fn predict_parquet<'py>(
        &self,
        py: Python<'py>,
        paths: Vec<PathBuf>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let config = ApplyConfig {
            model: PathBuf::new(),
            data: paths,
            num_readers: 2,
            verify_checksums: true,
            num_threads: 1,
            read_mode: ReadMode::default(),
            drop_null_labels: false,
        };
        let k = self.model.head().outputs();
        let (out, rows) = py
            .detach(|| {
                let mut out = Vec::new();
                predict_rows(&self.file, &config, &mut |outputs, _| {
                    out.extend_from_slice(outputs);
                    Ok(())
                })
                .map(|rows| (out, rows as usize))
            })
            .py_err()?;
        outputs_array(py, out, rows, k)
    }

    fn __repr__(&self) -> String {
        format!(
            "streamfit.Model({}, {} features, label {:?})",
            self.file.spec().describe(),
            self.file.features.len(),
            self.file.label
        )
    }
}

/// Loads a model saved by `train(save_model=...)` or `streamfit train --save-model`.
#[pyfunction]
pub(crate) fn load_model(path: PathBuf) -> PyResult<Model> {
    let file = ModelFile::load(&path).py_err()?;
    let model = file.spec().build(file.features.len());
    let params = file.parameters();
    Ok(Model {
        file,
        model,
        params,
    })
}

/// Writes a synthetic dataset as `streamfit generate` does; returns its directory.
#[pyfunction]
#[pyo3(signature = (out, **options))]
pub(crate) fn generate(
    py: Python<'_>,
    out: PathBuf,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<PathBuf> {
    let mut options = Options::new("generate", options)?;
    let defaults = GenerateConfig::default();
    let config = GenerateConfig {
        task: choice(
            "task",
            options.string("task")?,
            &[
                ("linear", Task::Linear),
                ("logistic", Task::Logistic),
                ("multiclass", Task::Multiclass),
                ("circles", Task::Circles),
                ("xor", Task::Xor),
            ],
            Task::Logistic,
        )?,
        classes: options.size("classes")?.unwrap_or(defaults.classes),
        rows: options.count("rows")?.unwrap_or(defaults.rows),
        features: options.size("features")?.unwrap_or(defaults.features),
        shards: options.size("shards")?.unwrap_or(defaults.shards),
        row_group_rows: options
            .size("row_group_rows")?
            .unwrap_or(defaults.row_group_rows),
        compression: choice(
            "compression",
            options.string("compression")?,
            &[
                ("none", Compression::None),
                ("snappy", Compression::Snappy),
                ("zstd", Compression::Zstd),
                ("lz4", Compression::Lz4),
            ],
            Compression::Snappy,
        )?,
        seed: options.count("seed")?.unwrap_or(0),
        force: options.bool("force")?.unwrap_or(false),
        out: out.clone(),
        ..defaults
    };
    options.finish()?;
    config.check().py_err()?;
    py.detach(|| streamfit::generate::generate(&config, &|_| {}))
        .py_err()?;
    Ok(out)
}

/// `rows × k` model outputs as NumPy: one value per row as a 1-D array, else `(rows, k)`.
fn outputs_array(
    py: Python<'_>,
    out: Vec<f32>,
    rows: usize,
    k: usize,
) -> PyResult<Bound<'_, PyAny>> {
    if k == 1 {
        return Ok(out.into_pyarray(py).into_any());
    }
    let out = Array2::from_shape_vec((rows, k), out)
        .map_err(|e| PyRuntimeError::new_err(format!("internal error: {e}")))?;
    Ok(out.into_pyarray(py).into_any())
}
