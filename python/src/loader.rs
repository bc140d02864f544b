//! `streamfit.Loader`: the library's [`streamfit::loader::Loader`] as a Python iterator of
//! `(x, y)` or `(x, y, ids)` numpy arrays, one whole step each.
//!
//! Every step is a fresh set of arrays that owns its memory (the vectors the library filled,
//! handed to numpy without a copy), so a batch the caller keeps never changes. `__next__`
//! waits for the step with the GIL released, in slices of 50 ms between which it checks for
//! signals, so Ctrl-C interrupts a wait. Dropping the loader (or starting another epoch) stops
//! and joins the pipeline's threads.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use numpy::IntoPyArray;
use numpy::ndarray::Array2;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use streamfit::config::TrainConfig;
use streamfit::data::source::remote::RemoteOptions;
use streamfit::data::{ColumnSpec, FeatureSelection, ReadMode};
use streamfit::loader::{LoaderState, NextStep, Step};
use streamfit::pipeline::{LastBatch, Shuffle};
use streamfit::telemetry::SpanTable;

use crate::errors::IntoPy;
use crate::options::{Options, choice, paths};
use crate::profile;

/// How long `__next__` waits for a step before it checks for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// The streamfit pipeline as an iterator of batches (see `streamfit/__init__.pyi`).
#[pyclass(module = "streamfit", frozen)]
pub(crate) struct Loader {
    inner: Mutex<streamfit::loader::Loader>,
    return_ids: bool,
    feature_names: Vec<String>,
    num_rows: u64,
    /// The process's span totals when the first epoch started (the profile's baseline).
    spans_base: Mutex<Option<SpanTable>>,
}

impl Loader {
    fn lock(&self) -> MutexGuard<'_, streamfit::loader::Loader> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The rank and world size of an initialised `torch.distributed` (when torch is imported).
fn torch_distributed(py: Python<'_>) -> PyResult<Option<(usize, usize)>> {
    let modules = py.import("sys")?.getattr("modules")?;
    let Ok(dist) = modules.get_item("torch.distributed") else {
        return Ok(None);
    };
    if !dist.call_method0("is_available")?.is_truthy()?
        || !dist.call_method0("is_initialized")?.is_truthy()?
    {
        return Ok(None);
    }
    Ok(Some((
        dist.call_method0("get_rank")?.extract()?,
        dist.call_method0("get_world_size")?.extract()?,
    )))
}

/// Reads the column options (`features`, `features_column`, `label`, `exclude`, `filter`).
pub(crate) fn columns(options: &mut Options<'_>) -> PyResult<ColumnSpec> {
    let features = match (
        options.strings("features")?,
        options.string("features_column")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "invalid features: cannot be combined with features_column",
            ));
        }
        (Some(columns), None) => FeatureSelection::Columns(columns),
        (None, Some(column)) => FeatureSelection::ListColumn(column),
        (None, None) => FeatureSelection::AllNumeric,
    };
    Ok(ColumnSpec {
        features,
        label: options
            .string("label")?
            .unwrap_or_else(|| "label".to_string()),
        ignore_label: false,
        filter: options.string("filter")?,
        exclude: options.strings("exclude")?.unwrap_or_default(),
        missing: Default::default(),
        positive_label: None,
        drop_null_labels: false,
        categorical: Default::default(),
        centre: Vec::new(),
        weight: None,
    })
}

/// Refuses, with the reason, the run options a loader cannot honour: `memory_limit` (the
/// trainer fits its memory budget to it; a loader's memory is set by `shuffle_buffer`,
/// `prefetch`, `readers` and `batch_size`) and `on_bad_file="skip"` (a loader fails the epoch
/// on a bad file, so that every rank and every resume sees the same batches).
fn refuse_trainer_only(options: &mut Options<'_>) -> PyResult<()> {
    if options.count("memory_limit")?.is_some() {
        return Err(PyValueError::new_err(
            "invalid memory_limit: a Loader does not fit itself to a memory limit (the trainer \
             does); bound its memory with shuffle_buffer, prefetch, readers and batch_size",
        ));
    }
    let skip = choice(
        "on_bad_file",
        options.string("on_bad_file")?,
        &[("error", false), ("skip", true)],
        false,
    )?;
    if skip {
        return Err(PyValueError::new_err(
            "invalid on_bad_file: a Loader supports only \"error\" (a bad file fails the epoch, \
             so that every rank and every resume sees the same batches); train() can skip bad \
             files, or leave the file out of paths",
        ));
    }
    Ok(())
}

/// Reads the options that shape the batch sequence, shared with `train`: batch size, last
/// batch, shuffling, prefetch, readers, checksums. `seed` is left for the caller.
pub(crate) fn pipeline_options(
    options: &mut Options<'_>,
    config: &mut TrainConfig,
) -> PyResult<()> {
    if let Some(b) = options.batch_size("batch_size")? {
        config.batch_size = b;
    }
    if options.bool("drop_last")?.unwrap_or(false) {
        config.last_batch = LastBatch::Drop;
    }
    if let Some(rows) = options.size("shuffle_buffer")? {
        config.shuffle_buffer_rows = rows;
    }
    if let Some(k) = options.size("shuffle_lanes")? {
        config.shuffle_lanes = k;
    }
    if let Some(p) = options.size("prefetch")? {
        config.prefetch = p;
    }
    if let Some(r) = options.size("readers")? {
        config.num_readers = r;
    }
    let no_verify = options.bool("no_verify_checksums")?.unwrap_or(false);
    let verify = options.bool("verify_checksums")?.unwrap_or(true);
    config.verify_checksums = verify && !no_verify;
    Ok(())
}

/// Reads how the data is read (`read_mode`, and the remote-data settings `fetch_ahead_bytes`,
/// `io_retries`, `io_timeout` in seconds), with the command line's defaults and its clamping
/// (at least 1 byte ahead, at least 1 ms per request). The remote-data settings are the
/// process's (the stores are shared): a call that gives any of them sets all three, the ones
/// not given at their defaults; a call that gives none leaves them as they are.
pub(crate) fn read_options(options: &mut Options<'_>, config: &mut TrainConfig) -> PyResult<()> {
    config.read_mode = choice(
        "read_mode",
        options.string("read_mode")?,
        &[
            ("auto", ReadMode::Auto),
            ("map", ReadMode::Map),
            ("read", ReadMode::Read),
        ],
        ReadMode::Auto,
    )?;
    let fetch_ahead_bytes = options.count("fetch_ahead_bytes")?;
    let io_retries = options.size("io_retries")?;
    let io_timeout = options.float64("io_timeout")?;
    if fetch_ahead_bytes.is_some() || io_retries.is_some() || io_timeout.is_some() {
        let defaults = RemoteOptions::default();
        let seconds = io_timeout.unwrap_or(defaults.io_timeout_ms as f64 / 1000.0);
        if seconds.is_nan() {
            return Err(PyValueError::new_err(
                "invalid io_timeout: must be a number of seconds",
            ));
        }
        streamfit::data::source::remote::configure(RemoteOptions {
            fetch_ahead_bytes: fetch_ahead_bytes
                .unwrap_or(defaults.fetch_ahead_bytes)
                .max(1),
            io_retries: io_retries.unwrap_or(defaults.io_retries),
            io_timeout_ms: (seconds.max(0.001) * 1000.0).round() as u64,
        });
    }
    Ok(())
}

/// A step as `(x, y)` or `(x, y, ids)`: float32 `(rows, features)` C-contiguous, float32
/// `(rows,)`, int64 `(rows,)`, each owning the step's vectors.
fn step_tuple<'py>(py: Python<'py>, step: Step, with_ids: bool) -> PyResult<Bound<'py, PyTuple>> {
    let rows = step.num_rows();
    let x = Array2::from_shape_vec((rows, step.num_features), step.features)
        .map_err(|e| PyRuntimeError::new_err(format!("internal error: a step's shape: {e}")))?
        .into_pyarray(py);
    let y = step.targets.into_pyarray(py);
    if with_ids {
        let ids: Vec<i64> = step.row_ids.iter().map(|&id| id as i64).collect();
        PyTuple::new(
            py,
            [x.into_any(), y.into_any(), ids.into_pyarray(py).into_any()],
        )
    } else {
        PyTuple::new(py, [x.into_any(), y.into_any()])
    }
}

#[pymethods]
impl Loader {
    #[new]
    #[pyo3(signature = (paths, **options))]
    fn new(
        py: Python<'_>,
        paths: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut options = Options::new("Loader", options)?;
        let data = self::paths(paths).map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(
                "Loader(): paths must be a path or a list of paths",
            )
        })?;
        let mut config = TrainConfig {
            data,
            columns: columns(&mut options)?,
            ..TrainConfig::default()
        };
        pipeline_options(&mut options, &mut config)?;
        read_options(&mut options, &mut config)?;
        refuse_trainer_only(&mut options)?;
        let seed = options.count("seed")?.unwrap_or(0);
        config.shuffle = if options.bool("no_shuffle")?.unwrap_or(false) {
            Shuffle::Off
        } else {
            Shuffle::Seeded(seed)
        };
        let epoch = options.count("epoch")?.unwrap_or(0);
        let return_ids = options.bool("return_ids")?.unwrap_or(false);
        let (rank, world) = match (options.size("rank")?, options.size("world_size")?) {
            (Some(rank), Some(world)) => (rank, world),
            (None, None) => torch_distributed(py)?.unwrap_or((0, 1)),
            _ => {
                return Err(PyValueError::new_err(
                    "invalid rank: rank and world_size are given together",
                ));
            }
        };
        config.rank = rank;
        config.world = world;
        options.finish()?;
        profile::install();
        let loader = py
            .detach(|| streamfit::loader::Loader::open(&config, epoch))
            .py_err()?;
        Ok(Loader {
            feature_names: loader.settings().features.clone(),
            num_rows: loader.settings().num_rows,
            inner: Mutex::new(loader),
            return_ids,
            spans_base: Mutex::new(None),
        })
    }

    /// Starts the next epoch (see `set_epoch` and `load_state_dict`) and returns the loader.
    fn __iter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let py = slf.py();
        let this = slf.get();
        {
            let mut base = this.spans_base.lock().unwrap_or_else(|e| e.into_inner());
            if base.is_none() {
                *base = Some(profile::totals());
            }
        }
        py.detach(|| this.lock().start_epoch()).py_err()?;
        Ok(slf)
    }

    /// The next step of the epoch; the GIL is released while it waits.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        loop {
            let next = py
                .detach(|| self.lock().next_step(Some(SIGNAL_CHECK)))
                .py_err()?;
            match next {
                NextStep::Step(step) => return step_tuple(py, step, self.return_ids).map(Some),
                NextStep::EndOfEpoch => return Ok(None),
                NextStep::TimedOut => py.check_signals()?,
            }
        }
    }

    /// Batches per epoch (the same on every rank).
    fn __len__(&self) -> usize {
        let loader = self.lock();
        loader.steps_in_epoch(loader.epoch()) as usize
    }

    /// Rows of the whole dataset (every rank's).
    #[getter]
    fn num_rows(&self) -> u64 {
        self.num_rows
    }

    /// Feature names, in column order of `x`.
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.feature_names.clone()
    }

    /// The epoch being iterated, or else the one the next iteration starts.
    #[getter]
    fn epoch(&self) -> u64 {
        self.lock().epoch()
    }

    /// Makes the next iteration start epoch `epoch` at its first batch.
    fn set_epoch(&self, epoch: u64) {
        self.lock().set_epoch(epoch);
    }

    /// Where the loader stands, as plain picklable data.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = self.lock().state();
        let json = serde_json::to_string(&state)
            .map_err(|e| PyRuntimeError::new_err(format!("internal error: {e}")))?;
        py.import("json")?.call_method1("loads", (json,))
    }

    /// Makes the next iteration continue exactly where `state` stands.
    fn load_state_dict(&self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let json: String = py
            .import("json")?
            .call_method1("dumps", (state,))?
            .extract()?;
        let state: LoaderState = serde_json::from_str(&json)
            .map_err(|e| PyValueError::new_err(format!("invalid state: {e}")))?;
        py.detach(|| self.lock().load_state(&state)).py_err()
    }

    /// Stage figures since the first epoch started, as a dict.
    fn profile<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let base = self
            .spans_base
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        let profile = self.lock().profile(&profile::since(&base));
        crate::trainer::to_python(py, &profile)
    }

    /// Stops the epoch being iterated and joins the pipeline's threads.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.lock().stop());
    }
}
