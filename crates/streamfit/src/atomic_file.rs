//! Atomic file output: the one way streamfit writes a file a reader may look at.
//!
//! [`AtomicFile`] writes into a temporary file in the target's directory (made by `tempfile`,
//! so it is removed again if the write is abandoned), and [`AtomicFile::commit`] flushes it,
//! fsyncs it, renames it over the target and fsyncs the directory: a reader, or a process
//! that restarts after a crash, sees the old file or the complete new one, never a torn one.
//! Every whole output file goes through it: model files, reports, checkpoints, predictions,
//! plots, generated Parquet and its `truth.json`, a shard dataset's manifest. (`convert`'s
//! shard files are written inside a `DIR.partial` directory that is synced with [`sync_dir`]
//! and renamed whole; the metrics file is a stream appended to as training runs.) It knows
//! nothing of formats.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// A file being written to a temporary name, given its final name by [`AtomicFile::commit`].
///
/// Dropped without a commit, the temporary file is deleted and the target is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    temp: NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts writing `path`: a temporary file `.NAME.XXXXXX.tmp` in the same directory.
    pub fn create(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".to_string());
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // The mode `File::create` gives (0666 less the umask), not tempfile's private 0600:
        // outputs are shared like any file the user writes.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let temp = builder
            .tempfile_in(parent_dir(path))
            .map_err(|e| Error::output(path, e))?;
        Ok(AtomicFile {
            temp,
            path: path.to_path_buf(),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file (for writers that need a `File`).
    pub fn as_file_mut(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Flushes and fsyncs the file, renames it to its final name and fsyncs the directory.
    pub fn commit(mut self) -> Result<()> {
        let path = self.path;
        let fail = |e: std::io::Error| Error::output(&path, e);
        self.temp.flush().map_err(fail)?;
        self.temp.as_file().sync_all().map_err(fail)?;
        self.temp.persist(&path).map_err(|e| fail(e.error))?;
        sync_dir(parent_dir(&path)).map_err(|e| Error::output(&path, e))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.temp.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.temp.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.temp.flush()
    }
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|e| Error::output(path, e))?;
    file.commit()
}

/// Fsyncs a directory, so a rename or a new entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
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

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_committed_file_replaces_the_target_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        std::fs::write(&path, b"old").expect("write");
        let mut file = AtomicFile::create(&path).expect("create");
        file.write_all(b"new contents").expect("write");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"old",
            "untouched until commit"
        );
        file.commit().expect("commit");
        assert_eq!(std::fs::read(&path).expect("read"), b"new contents");
        assert_eq!(names(dir.path()), ["out.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_committed_file_gets_the_usual_mode_not_a_private_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("report.json");
        write_atomically(&path, b"{}").expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        // 0666 less the process's umask (0022 or 0002 usually): readable by others.
        assert_eq!(mode & 0o044, 0o044, "mode {mode:o}");
    }

    #[test]
    fn an_abandoned_file_leaves_the_target_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.json");
        std::fs::write(&path, b"old").expect("write");
        let mut file = AtomicFile::create(&path).expect("create");
        file.write_all(b"half").expect("write");
        drop(file);
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        assert_eq!(names(dir.path()), ["model.json"]);
    }

    #[test]
    fn writing_into_a_missing_directory_is_an_output_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing/out.json");
        let err = write_atomically(&path, b"x").expect_err("no directory");
        assert!(matches!(err, Error::Output { .. }), "{err:?}");
        assert!(err.to_string().contains("missing/out.json"), "{err}");
    }
}
