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
use streamfit::config::{OnBadFile, Origin, Outputs, Resume, TrainConfig};
use streamfit::data::categorical::CategoricalColumns;
use streamfit::data::source::write::Compression;
use streamfit::generate::{GenerateConfig, Task};
use streamfit::model::{Activation, HeadKind, ModelKind};
use streamfit::optim::{LrSchedule, OptimizerConfig, OptimizerKind};
use streamfit::pipeline::Shuffle;
use streamfit::run::PreparedRun;
use streamfit::train::{EpochSummary, Eval, ModelFile, Standardize, StepRecord, TrainObserver};

use crate::errors::IntoPy;
use crate::loader::{columns, pipeline_options};
use crate::options::{Options, paths};
use crate::profile;

/// Any serialisable value as the Python object its JSON reads as.
pub(crate) fn to_python<'py, T: Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(value)
        .map_err(|e| PyRuntimeError::new_err(format!("internal error: {e}")))?;
    py.import("json")?.call_method1("loads", (json,))
}

/// One of `choices` by name.
fn choice<T: Copy>(
    option: &str,
    value: Option<String>,
    choices: &[(&str, T)],
    default: T,
) -> PyResult<T> {
    let Some(value) = value else {
        return Ok(default);
    };
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&value))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            PyValueError::new_err(format!(
                "invalid {option}: `{value}` is not one of {}",
                names.join(", ")
            ))
        })
}

/// The model options (`model`, `classes`, `hidden`, `activation`, `task`), as the command
/// line's `ModelArgs` applies them.
fn model_options(options: &mut Options<'_>, config: &mut TrainConfig) -> PyResult<()> {
    let name = options
        .string("model")?
        .unwrap_or_else(|| "logistic".to_string());
    let kind = ModelKind::named(&name).ok_or_else(|| {
        let names: Vec<&str> = ModelKind::all().into_iter().map(|k| k.name()).collect();
        PyValueError::new_err(format!(
            "invalid model: `{name}` is not one of {}",
            names.join(", ")
        ))
    })?;
    let classes = options.size("classes")?;
    let hidden = options.counts("hidden")?.unwrap_or_else(|| vec![64]);
    let activation = choice(
        "activation",
        options.string("activation")?,
        &[("relu", Activation::Relu), ("tanh", Activation::Tanh)],
        Activation::Relu,
    )?;
    let task = choice(
        "task",
        options.string("task")?,
        &[
            ("regression", HeadKind::Regression),
            ("binary", HeadKind::Binary),
            ("multiclass", HeadKind::Multiclass),
        ],
        HeadKind::Binary,
    )?;
    let head = kind.head_kind(task);
    config.classes = match (head == HeadKind::Multiclass, classes) {
        (true, None) => Origin::FromData,
        _ => Origin::Given,
    };
    config.trainer.model = kind.spec(head.with_classes(classes.unwrap_or(0)), hidden, activation);
    Ok(())
}

/// The optimizer options, as the command line's `OptimizerArgs` applies them.
fn optimizer_options(options: &mut Options<'_>, config: &mut TrainConfig) -> PyResult<()> {
    let kind = choice(
        "optimizer",
        options.string("optimizer")?,
        &[
            ("sgd", OptimizerKind::Sgd),
            ("momentum", OptimizerKind::Momentum),
            ("nesterov", OptimizerKind::Nesterov),
            ("adam", OptimizerKind::Adam),
            ("adamw", OptimizerKind::AdamW),
        ],
        OptimizerKind::Sgd,
    )?;
    #[derive(Clone, Copy, PartialEq)]
    enum Schedule {
        Constant,
        Step,
        Cosine,
    }
    let schedule = choice(
        "lr_schedule",
        options.string("lr_schedule")?,
        &[
            ("constant", Schedule::Constant),
            ("step", Schedule::Step),
            ("cosine", Schedule::Cosine),
        ],
        Schedule::Constant,
    )?;
    let step_size = options.count("lr_step_size")?;
    let step_epochs = options.count("lr_step_epochs")?;
    if step_size.is_some() && step_epochs.is_some() {
        return Err(PyValueError::new_err(
            "invalid lr_step_size: cannot be combined with lr_step_epochs",
        ));
    }
    if step_epochs == Some(0) {
        return Err(PyValueError::new_err(
            "invalid lr_step_epochs: must be at least 1",
        ));
    }
    config.lr_step_size = match (schedule, step_size) {
        (Schedule::Step, None) => Origin::FromData,
        _ => Origin::Given,
    };
    config.trainer.optimizer = OptimizerConfig {
        kind,
        learning_rate: options.float("lr")?.unwrap_or(kind.default_learning_rate()),
        momentum: options.float("momentum")?.unwrap_or(0.9),
        beta1: options.float("beta1")?.unwrap_or(0.9),
        beta2: options.float("beta2")?.unwrap_or(0.999),
        eps: options.float("eps")?.unwrap_or(1e-8),
        weight_decay: options.float("weight_decay")?.unwrap_or(0.0),
        schedule: match schedule {
            Schedule::Constant => LrSchedule::Constant,
            Schedule::Step => LrSchedule::Step {
                every: step_size.unwrap_or(step_epochs.unwrap_or(1)),
                gamma: options.float("lr_gamma")?.unwrap_or(0.1),
            },
            Schedule::Cosine => LrSchedule::Cosine,
        },
        warmup_steps: options.count("warmup_steps")?.unwrap_or(0),
        clip_grad_norm: options.float("clip_grad_norm")?,
    };
    options.float("lr_gamma")?;
    Ok(())
}

/// The run's options on `data`, as the command line's `streamfit train` maps its flags.
fn train_config(data: Vec<PathBuf>, options: &mut Options<'_>) -> PyResult<TrainConfig> {
    let mut config = TrainConfig {
        data,
        columns: columns(options)?,
        ..TrainConfig::default()
    };
    pipeline_options(options, &mut config)?;
    let seed = options.count("seed")?.unwrap_or(0);
    config.shuffle = if options.bool("no_shuffle")?.unwrap_or(false) {
        Shuffle::Off
    } else {
        Shuffle::Seeded(seed)
    };
    config.trainer.init_seed = seed;
    config.trainer.early_stop = options.size("early_stop")?;
    if let Some(epochs) = options.size("epochs")? {
        config.trainer.epochs = epochs;
    }
    // As on the command line: the running train loss by default, the full-data pass with
    // `full_loss=True`; `no_eval=True` is the default's older spelling.
    let full_loss = options.bool("full_loss")?.unwrap_or(false);
    let no_eval = options.bool("no_eval")?.unwrap_or(false);
    if full_loss && no_eval {
        return Err(PyValueError::new_err(
            "invalid full_loss: cannot be combined with no_eval",
        ));
    }
    config.trainer.eval = if full_loss {
        Eval::EveryEpoch
    } else {
        Eval::Off
    };
    config.trainer.eval_every = options.count("eval_every")?;
    config.valid_rows = options.count("valid_rows")?;
    config.valid_fraction = options.float64("valid_fraction")?;
    if let Some(t) = options.size("threads")? {
        config.trainer.num_threads = t;
    }
    config.valid = options.paths("valid")?.unwrap_or_default();
    config.on_bad_file = choice(
        "on_bad_file",
        options.string("on_bad_file")?,
        &[("error", OnBadFile::Error), ("skip", OnBadFile::Skip)],
        OnBadFile::Error,
    )?;
    // `standardize=True` always, `False` never (`--no-standardize`), unset: when the scales
    // are mixed.
    config.standardize = match options.bool("standardize")? {
        Some(true) => Standardize::Always,
        Some(false) => Standardize::Never,
        None => Standardize::Auto,
    };
    // `fill_nulls="mean"`, `"zero"` or a number as text (`"0.5"`), as on the command line.
    config.fill_nulls = options
        .string("fill_nulls")?
        .map(|text| text.parse())
        .transpose()
        .map_err(crate::errors::to_py)?;
    config.null_indicators = options.bool("null_indicators")?.unwrap_or(false);
    config.columns.positive_label = options.string("positive_label")?;
    config.columns.drop_null_labels = options.bool("drop_null_labels")?.unwrap_or(false);
    config.columns.weight = options.string("weight_column")?;
    // `class_weight="balanced"` (or `"none"`), as on the command line.
    if let Some(text) = options.string("class_weight")? {
        config.class_weight = text.parse().map_err(crate::errors::to_py)?;
    }
    // `categorical="auto"`, `"a,b"` or `["a", "b"]`, as on the command line.
    config.categorical = match options.strings("categorical")? {
        None => CategoricalColumns::None,
        Some(names) if names == ["auto"] => CategoricalColumns::Auto,
        Some(names) => CategoricalColumns::Named(names),
    };
    if let Some(k) = options.size("max_categories")? {
        config.max_categories = k;
    }
    config.hash_buckets = options
        .count("hash_buckets")?
        .map(|n| {
            u32::try_from(n).map_err(|_| PyValueError::new_err("invalid hash_buckets: too large"))
        })
        .transpose()?;
    config.checkpoint_dir = options.path("checkpoint_dir")?;
    config.checkpoint_every = options.count("checkpoint_every")?;
    if let Some(k) = options.size("keep_checkpoints")? {
        config.keep_checkpoints = k;
    }
    config.resume = options.string("resume")?.map(|which| match which.as_str() {
        "auto" => Resume::Auto,
        path => Resume::Path(PathBuf::from(path)),
    });
    config.outputs = Outputs {
        save_model: options.path("save_model")?,
        report: options.path("report")?,
        metrics: options.path("metrics")?,
        plot: options.path("plot")?,
        plot_log: options.bool("log_y")?.unwrap_or(false),
        trace: None,
        profile: options.bool("profile")?.unwrap_or(false),
    };
    model_options(options, &mut config)?;
    optimizer_options(options, &mut config)?;
    Ok(config)
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
    let progress = options.bool("progress")?.unwrap_or(false);
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
        if k == 1 {
            Ok(out.into_pyarray(py).into_any())
        } else {
            let out = Array2::from_shape_vec((rows, k), out)
                .map_err(|e| PyRuntimeError::new_err(format!("internal error: {e}")))?;
            Ok(out.into_pyarray(py).into_any())
        }
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
