//! Error types for the whole library.
//!
//! Every error that bad input can cause is a structured variant naming the file, the row group
//! or row, and the column, so a user can find the offending value. Messages are lowercase with
//! no trailing period. [`Error::is_input_error`] separates "your data or flags are wrong" (the
//! binary exits with code 2) from failures of the machine (code 1).
//!
//! Options are named in snake_case as the fields of [`crate::config::TrainConfig`] and the
//! other configs name them (`batch_size`, `shuffle_buffer`, `early_stop`): a field's own name,
//! or the option its docs name (`shuffle_buffer` for `shuffle_buffer_rows`), as a Python
//! caller's keyword arguments would spell them. Inside a message an option is written
//! `«name»`; how it is spelled when shown is the front end's choice ([`set_option_style`]): the
//! command line shows `--batch-size` (and `DATA`), a library or Python caller `batch_size`.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};

/// How messages spell option names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionStyle {
    /// The field name, as a library or Python caller writes it: `batch_size`. The default.
    Field,
    /// The command-line flag: `--batch-size` (and `DATA` for the positional data argument).
    Flag,
}

static OPTION_STYLE: AtomicU8 = AtomicU8::new(0);

/// Sets how every message of this process spells option names (a front end calls it once,
/// at start).
pub fn set_option_style(style: OptionStyle) {
    OPTION_STYLE.store(
        match style {
            OptionStyle::Field => 0,
            OptionStyle::Flag => 1,
        },
        Ordering::Relaxed,
    );
}

/// The name of option `field` (or of `a/b`, several options) in the current style.
pub fn option_name(field: &str) -> Cow<'_, str> {
    if OPTION_STYLE.load(Ordering::Relaxed) == 0 {
        return Cow::Borrowed(field);
    }
    Cow::Owned(
        field
            .split('/')
            .map(|name| match name {
                "data" => "DATA".to_string(),
                // Not an option: how the process was started.
                "mpirun" => "mpirun".to_string(),
                // A positional argument (`METRICS`) is shown as it is written.
                name if !name.is_empty() && !name.bytes().any(|b| b.is_ascii_lowercase()) => {
                    name.to_string()
                }
                name => format!("--{}", name.replace('_', "-")),
            })
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// `text` with every `«name»` replaced by [`option_name`].
pub fn render_options(text: &str) -> Cow<'_, str> {
    if !text.contains('«') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(start) = rest.find('«') {
        out.push_str(&rest[..start]);
        let after = &rest[start + '«'.len_utf8()..];
        match after.find('»') {
            Some(end) => {
                out.push_str(&option_name(&after[..end]));
                rest = &after[end + '»'.len_utf8()..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Result alias used throughout streamfit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading data, training or writing results.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, mapped, read or written.
    ///
    /// The OS error is part of the message and not also the [`source`](std::error::Error::source),
    /// so a printed chain (`{:#}`) names it once.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// A Parquet file whose footer or pages cannot be decoded.
    #[error("{}: corrupt parquet{}: {reason}", file.display(), fmt_row_group(*row_group))]
    Corrupt {
        file: PathBuf,
        row_group: Option<usize>,
        reason: String,
    },

    /// An encrypted Parquet file: streamfit takes no keys, so it cannot read one.
    #[error("{}: the file is encrypted ({detail}); streamfit reads only unencrypted parquet", file.display())]
    Encrypted { file: PathBuf, detail: String },

    /// A streamfit shard (or its manifest) that fails validation: bad magic or version, a
    /// header that disagrees with the file's length, or a block of rows whose checksum fails.
    #[error("{}: corrupt shard{}: {reason}", file.display(), block.map(|b| format!(", block {b}")).unwrap_or_default())]
    CorruptShard {
        file: PathBuf,
        block: Option<u64>,
        reason: String,
    },

    /// A data path that is not a regular file (a FIFO, a device, a directory where a file
    /// belongs) or a dangling symbolic link: refused before anything is read from it.
    #[error("{}: {reason}", path.display())]
    NotAFile { path: PathBuf, reason: String },

    /// A data file that changed while it was being read: it shrank (a read past its new end
    /// was stopped) or its size differs from when it was opened.
    #[error("{}: changed while being read ({reason})", file.display())]
    Changed { file: PathBuf, reason: String },

    /// A checkpoint file that fails its length or checksum check (never loaded).
    #[error("{}: corrupt checkpoint: {reason}", file.display())]
    CorruptCheckpoint { file: PathBuf, reason: String },

    /// Training stopped on SIGINT/SIGTERM at a step boundary.
    #[error("interrupted at epoch {epoch}, iteration {iteration}{}", render_options(&match checkpoint { Some(p) => format!("; checkpoint written to {} (continue with «resume»)", p.display()), None => "; no checkpoint (no «checkpoint_dir»)".to_string() }))]
    Interrupted {
        epoch: usize,
        iteration: u64,
        checkpoint: Option<PathBuf>,
    },

    /// Two files of one dataset disagree on the columns that training uses.
    #[error(
        "schema mismatch: {} has {first_schema}, but {} has {other_schema}{}",
        first.display(),
        other.display(),
        render_options("; name the feature columns with «features» (with «fill_nulls» a named column that some files lack reads as null there) or leave columns out with «exclude»")
    )]
    SchemaMismatch {
        first: PathBuf,
        first_schema: String,
        other: PathBuf,
        other_schema: String,
    },

    /// A column named by the configuration is not in the file.
    #[error("{}: column `{column}` not found (columns: {available})", file.display())]
    MissingColumn {
        file: PathBuf,
        column: String,
        available: String,
    },

    /// A feature column that some files of the dataset lack, with no fill value for it.
    #[error("column `{column}` is missing from {} of {num_files} files ({}){}", files.len(), list_paths(files), render_options(": with «fill_nulls» it reads as null there"))]
    AbsentColumn {
        column: String,
        /// The files without it, in dataset order.
        files: Vec<PathBuf>,
        num_files: usize,
    },

    /// A column whose type cannot be used as a feature or label.
    #[error("{}: column `{column}` has unsupported type {data_type} (expected a numeric or boolean column{})", file.display(), if *list_expected { ", or a list of floats" } else { "" })]
    UnsupportedType {
        file: PathBuf,
        column: String,
        data_type: String,
        list_expected: bool,
    },

    /// A used column holds a null.
    #[error("{}: row group {row_group}, row {row}: null in column `{column}`{}", file.display(), render_options(" (nulls in feature columns are filled by «fill_nulls»; rows with a null label are skipped with «drop_null_labels»)"))]
    Null {
        file: PathBuf,
        row_group: usize,
        row: u64,
        column: String,
    },

    /// A used column holds NaN or an infinity.
    #[error("{}: row group {row_group}, row {row}: non-finite value {value} in column `{column}`", file.display())]
    NonFinite {
        file: PathBuf,
        row_group: usize,
        row: u64,
        column: String,
        value: f64,
    },

    /// A row weight («weight_column») that is null, NaN, infinite or negative.
    #[error("{}: row group {row_group}, row {row}: weight {value} in column `{column}` is not a finite number ≥ 0{}", file.display(), render_options(" (the column named by «weight_column»)"))]
    BadWeight {
        file: PathBuf,
        row_group: usize,
        row: u64,
        column: String,
        /// The value as read (`null` for a null).
        value: String,
    },

    /// A list feature column whose rows do not all have the same length.
    #[error("{}: row group {row_group}, row {row}: column `{column}` has {found} values, expected {expected}", file.display())]
    ListLength {
        file: PathBuf,
        row_group: usize,
        row: u64,
        column: String,
        expected: usize,
        found: usize,
    },

    /// A row group whose decoded row count differs from its footer.
    #[error("{}: row group {row_group}: footer says {expected} rows but the pages hold {found}", file.display())]
    RowCountMismatch {
        file: PathBuf,
        row_group: usize,
        expected: u64,
        found: u64,
    },

    /// A label the model cannot take: a multiclass label that is not a class id in 0..K.
    #[error("{}: row {row}: label {value} in column `{column}` is not a class id in 0..{} ({} {classes})", file.display(), classes - 1, option_name("classes"))]
    BadLabel {
        file: PathBuf,
        row: u64,
        column: String,
        value: f64,
        classes: usize,
    },

    /// A label a binary (logistic) head cannot take: anything but 0 and 1.
    #[error("{}: row {row}: label {value} in column `{column}` is not 0 or 1, which a binary (logistic) model needs; for class ids 0..K-1 use {} softmax", file.display(), option_name("model"))]
    BadBinaryLabel {
        file: PathBuf,
        row: u64,
        column: String,
        value: f64,
    },

    /// The memory budget of a run exceeds the memory available to the process.
    #[error(
        "the memory budget of {budget} exceeds the {available} available to this process ({from}): lower {}, {}, {} or {}, or give {} to size them to fit",
        option_name("shuffle_buffer"),
        option_name("prefetch"),
        option_name("readers"),
        option_name("batch_size"),
        option_name("memory_limit")
    )]
    OverBudget {
        budget: String,
        available: String,
        from: String,
    },

    /// The dataset holds no rows (or no files).
    #[error("empty dataset: {what}")]
    EmptyDataset { what: String },

    /// An option value that cannot be used: `field` names the option (see the module docs),
    /// and `reason` may name others as `«name»`.
    #[error("invalid {}: {}", option_name(field), render_options(reason))]
    Config { field: &'static str, reason: String },

    /// Training produced a non-finite loss or gradient.
    #[error(
        "training diverged at epoch {epoch}, iteration {iteration}: {what} is not finite (try a smaller {}, or {} when the features' scales differ)",
        option_name("lr"),
        option_name("standardize")
    )]
    Diverged {
        epoch: usize,
        iteration: u64,
        what: &'static str,
    },

    /// A failure inside streamfit itself (a thread that could not start or stopped
    /// unexpectedly, a broken internal invariant): not the user's input.
    #[error("internal error: {what}")]
    Internal { what: String },

    /// Writing an output file (model, metrics, dataset) failed.
    #[error("cannot write {}: {reason}", path.display())]
    Output { path: PathBuf, reason: String },
}

/// Up to three paths, comma-separated, then how many more.
fn list_paths(paths: &[PathBuf]) -> String {
    let mut shown: Vec<String> = paths
        .iter()
        .take(3)
        .map(|p| p.display().to_string())
        .collect();
    if paths.len() > 3 {
        shown.push(format!("and {} more", paths.len() - 3));
    }
    shown.join(", ")
}

fn fmt_row_group(row_group: Option<usize>) -> String {
    match row_group {
        Some(rg) => format!(", row group {rg}"),
        None => String::new(),
    }
}

impl Error {
    /// True when the error is caused by the user's data or flags rather than by the machine.
    ///
    /// Reading input (including a missing input file) counts as the user's; writing an output
    /// does not. The binary exits with code 2 for these and 1 for the rest.
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            Error::Output { .. } | Error::Internal { .. } | Error::Interrupted { .. }
        )
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }

    /// An [`Error::Output`] for `path` with `reason` as its message.
    pub fn output(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Output {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// Shorthand for an [`Error::Internal`].
    pub fn internal(what: impl Into<String>) -> Self {
        Error::Internal { what: what.into() }
    }

    /// Shorthand for a [`Error::Config`].
    pub fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            field,
            reason: reason.into(),
        }
    }
}
