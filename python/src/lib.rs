//! The Python extension `streamfit._streamfit`: a thin binding of the streamfit library.
//!
//! Each Python entry point maps keyword arguments onto the library's
//! [`TrainConfig`](streamfit::config::TrainConfig) and calls the library's public API, as a Rust
//! caller would: [`loader`] wraps [`streamfit::loader::Loader`] (the pipeline, one whole step per
//! `__next__`, with the GIL released while it waits), [`trainer`] wraps
//! [`streamfit::run::PreparedRun`] (its options read by [`train_options`]), saved models and
//! `generate`. [`errors`] turns library
//! errors into Python exceptions, [`options`] reads keyword arguments, [`profile`] holds the
//! process's span totals. The Python package (`python/streamfit/`) re-exports all of it.

use pyo3::prelude::*;

mod errors;
mod loader;
mod options;
mod profile;
mod train_options;
mod trainer;

/// The module `streamfit._streamfit`.
#[pymodule]
fn _streamfit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DataError", py.get_type::<errors::DataError>())?;
    m.add_class::<loader::Loader>()?;
    m.add_class::<trainer::Model>()?;
    m.add_function(wrap_pyfunction!(trainer::train, m)?)?;
    m.add_function(wrap_pyfunction!(trainer::load_model, m)?)?;
    m.add_function(wrap_pyfunction!(trainer::generate, m)?)?;
    Ok(())
}
