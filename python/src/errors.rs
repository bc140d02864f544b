//! Library errors as Python exceptions: `streamfit.DataError` (a `ValueError`) for bad data,
//! `OSError` and its subclasses for I/O, `ValueError` for a bad option, `KeyboardInterrupt`
//! for an interrupted run, `RuntimeError` for the rest. The message is the command line's,
//! with options spelled as keyword arguments (the library's default style).

use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyPermissionError, PyRuntimeError,
    PyValueError,
};
use pyo3::prelude::*;
use streamfit::error::Error;

pyo3::create_exception!(
    streamfit,
    DataError,
    PyValueError,
    "The data cannot be used: a corrupt or changed file, a schema mismatch, a missing column, a null or non-finite value, a refused label. The message names the file (and row group, row and column where known)."
);

/// The Python exception for a library error.
pub(crate) fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match &error {
        Error::Io { cause, .. } => match cause.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            _ => PyOSError::new_err(message),
        },
        Error::Output { .. } | Error::NotAFile { .. } => PyOSError::new_err(message),
        Error::Config { .. } => PyValueError::new_err(message),
        Error::Interrupted { .. } => PyKeyboardInterrupt::new_err(message),
        Error::Internal { .. } | Error::Diverged { .. } => PyRuntimeError::new_err(message),
        _ => DataError::new_err(message),
    }
}

/// `Result` of the library into `PyResult`.
pub(crate) trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for streamfit::error::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
