//! Checks on the paths a command will write, made before it reads or writes anything: an
//! output must not be one of the files the command reads (under any name: a symlink, a hard
//! link, `a/../a`), must not lie inside a shard dataset being read, must not be a directory,
//! and its directory must take new files. Every command that writes runs its outputs through
//! [`InputSet`]: `train` ([`crate::run::PreparedRun`]), `predict`, `convert` and `plot`.
//!
//! It only looks: nothing is created or removed here (a probe file aside, see
//! [`check_writable`]). How an output is then written is [`crate::atomic_file`]'s business.

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::data::source::Source;
use crate::data::source::remote::{is_url, redact};
use crate::data::source::shard::is_shard_dataset;
use crate::error::{Error, Result};

/// How a command writes an output file, which decides what its directory must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Written to a temporary name and renamed over the target ([`crate::atomic_file`]): the
    /// directory must take new files.
    Replace,
    /// Opened in place and truncated (`metrics`, `trace`): only a file still to be made needs
    /// the directory to take it.
    Truncate,
}

/// One file a command reads, as given and as it resolves.
#[derive(Debug, Clone)]
struct InputFile {
    path: PathBuf,
    canonical: Option<PathBuf>,
    /// (device, inode): the same file under another name, hard links included.
    id: Option<(u64, u64)>,
}

/// The files and datasets a command reads, for refusing outputs that would overwrite them.
#[derive(Debug, Clone, Default)]
pub struct InputSet {
    files: Vec<InputFile>,
    /// Directories every entry of which belongs to a dataset being read (shard datasets).
    dataset_dirs: Vec<(PathBuf, PathBuf)>,
}

impl InputSet {
    /// An empty set.
    pub fn new() -> Self {
        InputSet::default()
    }

    /// Adds a file the command reads.
    pub fn add_file(&mut self, path: &Path) {
        self.files.push(InputFile {
            path: path.to_path_buf(),
            canonical: std::fs::canonicalize(path).ok(),
            id: std::fs::metadata(path).ok().and_then(|m| file_id(&m)),
        });
    }

    /// Adds a dataset: the files `source` reads, and any of the `given` paths that is a shard
    /// dataset directory (its manifest and every file beside it belong to the dataset).
    pub fn add_dataset(&mut self, source: &dyn Source, given: &[PathBuf]) {
        for file in source.files() {
            self.add_file(file);
        }
        for path in given {
            if path.is_dir() && is_shard_dataset(path) {
                if let Ok(canonical) = std::fs::canonicalize(path) {
                    self.dataset_dirs.push((path.clone(), canonical));
                }
            } else if path.is_file() {
                self.add_file(path);
            }
        }
    }

    /// Checks the output file `path` of option `field` before anything runs: it is not a
    /// directory, not an input, not inside a shard dataset being read, and (for a regular or
    /// new file) its directory exists and takes the file as `mode` writes it. A device or FIFO
    /// is written through ([`crate::atomic_file`]), so its directory is not asked.
    pub fn check_file(&self, field: &'static str, path: &Path, mode: WriteMode) -> Result<()> {
        if is_url(path) {
            return check_url(field, path, mode);
        }
        let existing = std::fs::metadata(path).ok();
        if existing.as_ref().is_some_and(|m| m.is_dir()) {
            return Err(Error::config(
                field,
                format!("{} is a directory; give a file name", path.display()),
            ));
        }
        if let Some(input) = self.same_file(path, existing.as_ref()) {
            return Err(Error::config(
                field,
                format!(
                    "{} is the input file {}; writing it would destroy the data being read",
                    path.display(),
                    input.display()
                ),
            ));
        }
        if let Ok(parent) = std::fs::canonicalize(parent_dir(path)) {
            self.outside_datasets(field, path, &parent)?;
        }
        match existing {
            Some(m) if !m.is_file() => Ok(()),
            Some(_) if mode == WriteMode::Truncate => Ok(()),
            _ => check_writable(path),
        }
    }

    /// Checks the output directory `dir` of option `field` (checkpoints), which the command
    /// creates when missing and writes files into: not an input, not inside a shard dataset
    /// being read, and it (or its nearest existing ancestor, when it is still to be made) is a
    /// directory that takes new files.
    pub fn check_dir(&self, field: &'static str, dir: &Path) -> Result<()> {
        if is_url(dir) {
            // A prefix in object storage: its objects are written by PUT, so only a
            // read-only scheme is refused here; the store itself answers the rest.
            return check_url(field, dir, WriteMode::Replace);
        }
        let existing = std::fs::metadata(dir).ok();
        if let Some(input) = self.same_file(dir, existing.as_ref()) {
            return Err(Error::config(
                field,
                format!("{} is the input file {}", dir.display(), input.display()),
            ));
        }
        let mut ancestor = dir;
        while !ancestor.exists() {
            match ancestor.parent() {
                Some(p) if !p.as_os_str().is_empty() => ancestor = p,
                _ => {
                    ancestor = Path::new(".");
                    break;
                }
            }
        }
        if let Ok(canonical) = std::fs::canonicalize(ancestor) {
            self.outside_datasets(field, dir, &canonical)?;
        }
        if !ancestor.is_dir() {
            return Err(Error::output(
                dir,
                format!("{} is not a directory", ancestor.display()),
            ));
        }
        probe(ancestor).map_err(|e| {
            Error::output(
                dir,
                format!("directory {} is not writable: {e}", ancestor.display()),
            )
        })
    }

    /// Checks a directory `dir` that the command of option `field` will delete and write
    /// anew (a scratch directory): no input lies inside it.
    pub fn check_replaced_dir(&self, field: &'static str, dir: &Path) -> Result<()> {
        let Ok(canonical) = std::fs::canonicalize(dir) else {
            return Ok(());
        };
        let inside = self.files.iter().find(|f| {
            f.canonical
                .as_deref()
                .is_some_and(|c| c.starts_with(&canonical))
        });
        match inside {
            Some(input) => Err(Error::config(
                field,
                format!(
                    "{} would be removed, but it holds the input file {}",
                    dir.display(),
                    input.path.display()
                ),
            )),
            None => Ok(()),
        }
    }

    /// The input that `path` (with its metadata, when it exists) names, if any.
    fn same_file(&self, path: &Path, meta: Option<&Metadata>) -> Option<&Path> {
        let id = meta.and_then(file_id);
        let canonical = std::fs::canonicalize(path).ok();
        self.files
            .iter()
            .find(|f| {
                (id.is_some() && f.id == id)
                    || (canonical.is_some() && f.canonical.as_deref() == canonical.as_deref())
            })
            .map(|f| f.path.as_path())
    }

    /// Refuses `output` when `canonical` (its directory, resolved) is inside a shard dataset
    /// being read.
    fn outside_datasets(&self, field: &'static str, output: &Path, canonical: &Path) -> Result<()> {
        match self
            .dataset_dirs
            .iter()
            .find(|(_, dir)| canonical.starts_with(dir))
        {
            Some((dir, _)) => Err(Error::config(
                field,
                format!(
                    "{} is inside the shard dataset {} being read; write it elsewhere",
                    output.display(),
                    dir.display()
                ),
            )),
            None => Ok(()),
        }
    }
}

/// Errors unless `path`'s directory exists and takes new files, so that a typo or a
/// read-only directory fails before a long run, not after it. Whether the directory takes a
/// file is found by making one (and removing it): permission bits say nothing to root, while
/// a read-only or virtual file system (sysfs) refuses even root.
pub fn check_writable(path: &Path) -> Result<()> {
    if is_url(path) {
        return check_url("out", path, WriteMode::Replace);
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(Error::output(
            path,
            format!("directory {} does not exist", dir.display()),
        ));
    }
    probe(dir).map_err(|e| {
        Error::output(
            path,
            format!("directory {} is not writable: {e}", dir.display()),
        )
    })
}

/// An output URL: a whole file written at once ([`WriteMode::Replace`], one PUT) to
/// `s3://`, `gs://` or `az://`; a file written as the run goes, or an `http(s)://` URL, is
/// refused. Whether the store takes the object is found when it is written.
fn check_url(field: &'static str, path: &Path, mode: WriteMode) -> Result<()> {
    let text = path.to_string_lossy();
    let refuse = |reason: &str| Err(Error::config(field, format!("{}: {reason}", redact(&text))));
    if text.starts_with("http://") || text.starts_with("https://") {
        return refuse("an http(s):// URL is read-only; write to s3://, gs:// or az://");
    }
    if mode == WriteMode::Truncate {
        return refuse("this file is written as the run goes, so it must be a local file");
    }
    Ok(())
}

/// Creates and removes a hidden empty file in `dir` (the error is the system's, without the
/// probe's name).
fn probe(dir: &Path) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".streamfit-probe.{}.{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            // A probe left by a killed process of the same id: try the next name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1_000 => continue,
            Err(e) => return Err(e),
            Ok(_) => return std::fs::remove_file(&path),
        }
    }
}

#[cfg(unix)]
fn file_id(meta: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_meta: &Metadata) -> Option<(u64, u64)> {
    None
}

/// The directory a relative or absolute `path` lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_under_another_name_is_refused_and_a_new_file_beside_it_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("a.parquet");
        std::fs::write(&input, b"data").unwrap();
        let hard = dir.path().join("b.json");
        std::fs::hard_link(&input, &hard).unwrap();
        let mut inputs = InputSet::new();
        inputs.add_file(&input);
        let dotted = dir.path().join(".").join("a.parquet");
        for out in [&input, &hard, &dotted] {
            match inputs.check_file("report", out, WriteMode::Replace) {
                Err(Error::Config { field, reason }) => {
                    assert_eq!(field, "report");
                    assert!(reason.contains("is the input file"), "{reason}");
                }
                other => panic!("{out:?}: expected a report error, got {other:?}"),
            }
        }
        inputs
            .check_file("report", &dir.path().join("new.json"), WriteMode::Replace)
            .unwrap();
        assert_eq!(std::fs::read(&input).unwrap(), b"data");
    }

    #[test]
    fn a_scratch_directory_holding_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join("out.partial");
        std::fs::create_dir(&scratch).unwrap();
        let input = scratch.join("a.parquet");
        std::fs::write(&input, b"data").unwrap();
        let mut inputs = InputSet::new();
        inputs.add_file(&input);
        assert!(inputs.check_replaced_dir("out", &scratch).is_err());
        assert!(
            inputs
                .check_replaced_dir("out", &dir.path().join("other.partial"))
                .is_ok()
        );
    }

    #[test]
    fn a_missing_directory_is_an_output_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_writable(&dir.path().join("missing").join("r.json")).unwrap_err();
        assert!(matches!(err, Error::Output { .. }), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        check_writable(&dir.path().join("r.json")).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(names.is_empty(), "the probe is removed");
    }
}
