//! Keyword arguments read by name: each option is taken once with the type it needs, and
//! whatever is left is a `TypeError` naming it. Values of the wrong type are a `TypeError`,
//! out-of-range numbers a `ValueError`, both naming the option as it was passed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use streamfit::train::BatchSize;

/// The keyword arguments of one call, `function(...)`, not yet taken.
pub(crate) struct Options<'py> {
    function: &'static str,
    left: BTreeMap<String, Bound<'py, PyAny>>,
}

impl<'py> Options<'py> {
    /// The arguments in `kwargs` of a call to `function`.
    pub(crate) fn new(
        function: &'static str,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Self> {
        let mut left = BTreeMap::new();
        if let Some(kwargs) = kwargs {
            for (key, value) in kwargs.iter() {
                left.insert(key.extract::<String>()?, value);
            }
        }
        Ok(Options { function, left })
    }

    /// Adds an argument given explicitly (a named parameter of the function).
    pub(crate) fn put(&mut self, name: &str, value: Bound<'py, PyAny>) {
        self.left.insert(name.to_string(), value);
    }

    /// The value of `name`, when given and not `None`.
    fn value(&mut self, name: &str) -> Option<Bound<'py, PyAny>> {
        self.left.remove(name).filter(|v| !v.is_none())
    }

    fn wrong_type(&self, name: &str, expected: &str, value: &Bound<'py, PyAny>) -> PyErr {
        let found = value
            .get_type()
            .name()
            .map_or_else(|_| "?".to_string(), |n| n.to_string());
        PyTypeError::new_err(format!(
            "{}(): {name} must be {expected}, not {found}",
            self.function
        ))
    }

    /// A bool.
    pub(crate) fn bool(&mut self, name: &str) -> PyResult<Option<bool>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        value
            .extract::<bool>()
            .map(Some)
            .map_err(|_| self.wrong_type(name, "a bool", &value))
    }

    /// A whole number of at least 0.
    pub(crate) fn count(&mut self, name: &str) -> PyResult<Option<u64>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        if value.is_instance_of::<pyo3::types::PyBool>() {
            return Err(self.wrong_type(name, "an int", &value));
        }
        match value.extract::<i128>() {
            Ok(n) if n < 0 => Err(PyValueError::new_err(format!(
                "invalid {name}: must be at least 0"
            ))),
            Ok(n) => u64::try_from(n)
                .map(Some)
                .map_err(|_| PyValueError::new_err(format!("invalid {name}: too large"))),
            Err(_) => Err(self.wrong_type(name, "an int", &value)),
        }
    }

    /// A whole number of at least 0 that fits a `usize`.
    pub(crate) fn size(&mut self, name: &str) -> PyResult<Option<usize>> {
        self.count(name)?
            .map(|n| {
                usize::try_from(n)
                    .map_err(|_| PyValueError::new_err(format!("invalid {name}: too large")))
            })
            .transpose()
    }

    /// A number, as f32 (learning rates and other model settings).
    pub(crate) fn float(&mut self, name: &str) -> PyResult<Option<f32>> {
        Ok(self.float64(name)?.map(|v| v as f32))
    }

    /// A number, as f64 (fractions, which the command line also reads as f64).
    pub(crate) fn float64(&mut self, name: &str) -> PyResult<Option<f64>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        value
            .extract::<f64>()
            .map(Some)
            .map_err(|_| self.wrong_type(name, "a number", &value))
    }

    /// A string.
    pub(crate) fn string(&mut self, name: &str) -> PyResult<Option<String>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        value
            .extract::<String>()
            .map(Some)
            .map_err(|_| self.wrong_type(name, "a str", &value))
    }

    /// A list of strings (a single string counts as a list of one, or, with `commas`, as
    /// comma-separated items).
    pub(crate) fn strings(&mut self, name: &str) -> PyResult<Option<Vec<String>>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        if let Ok(one) = value.cast::<PyString>() {
            let text = one.to_string();
            return Ok(Some(
                text.split(',').map(|s| s.trim().to_string()).collect(),
            ));
        }
        value
            .extract::<Vec<String>>()
            .map(Some)
            .map_err(|_| self.wrong_type(name, "a list of str", &value))
    }

    /// A list of whole numbers (an int counts as a list of one).
    pub(crate) fn counts(&mut self, name: &str) -> PyResult<Option<Vec<usize>>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        if let Ok(one) = value.extract::<usize>() {
            return Ok(Some(vec![one]));
        }
        value
            .extract::<Vec<usize>>()
            .map(Some)
            .map_err(|_| self.wrong_type(name, "a list of int", &value))
    }

    /// A path (`str` or `os.PathLike`).
    pub(crate) fn path(&mut self, name: &str) -> PyResult<Option<PathBuf>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        value
            .extract::<PathBuf>()
            .map(Some)
            .map_err(|_| self.wrong_type(name, "a path", &value))
    }

    /// One path or a list of them.
    pub(crate) fn paths(&mut self, name: &str) -> PyResult<Option<Vec<PathBuf>>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        paths(&value)
            .map(Some)
            .map_err(|_| self.wrong_type(name, "a path or a list of paths", &value))
    }

    /// A batch size: a number of rows or `"full"`.
    pub(crate) fn batch_size(&mut self, name: &str) -> PyResult<Option<BatchSize>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        if let Ok(text) = value.extract::<String>() {
            return if text.eq_ignore_ascii_case("full") {
                Ok(Some(BatchSize::Full))
            } else {
                Err(PyValueError::new_err(format!(
                    "invalid {name}: `{text}` is not a number of rows or \"full\""
                )))
            };
        }
        self.put(name, value);
        Ok(self.count(name)?.map(BatchSize::Rows))
    }

    /// Refuses the arguments no one took.
    pub(crate) fn finish(self) -> PyResult<()> {
        if self.left.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.left.keys().map(String::as_str).collect();
        Err(PyTypeError::new_err(format!(
            "{}() got unexpected keyword argument{} {}",
            self.function,
            if names.len() == 1 { "" } else { "s" },
            names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// One path (`str`, `os.PathLike`) or a list of them.
pub(crate) fn paths(value: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Ok(one) = value.extract::<PathBuf>() {
        return Ok(vec![one]);
    }
    value.extract::<Vec<PathBuf>>()
}

/// One of `choices` by name.
pub(crate) fn choice<T: Copy>(
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
