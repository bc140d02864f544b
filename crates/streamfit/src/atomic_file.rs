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
//!
//! A URL (`s3://`, `gs://`, `az://`) is written to a temporary local file and sent by the
//! commit in one PUT, which the store makes atomic (no rename is needed).
//!
//! A target that exists and is not a regular file (`/dev/null`, a terminal, a FIFO such as a
//! shell's `>(...)`) is written through, opened in place: renaming over it would replace the
//! device or the pipe with a regular file. A target that is a directory is refused.

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
    target: Target,
    path: PathBuf,
}

/// Where the bytes go.
#[derive(Debug)]
enum Target {
    /// A temporary file renamed over the path by the commit.
    Temporary(NamedTempFile),
    /// The existing device or FIFO at the path, written in place.
    Direct(File),
    /// An object-storage URL: the bytes go to a temporary local file and are sent by the
    /// commit in one PUT, which the store makes atomic.
    Remote(NamedTempFile),
}

impl AtomicFile {
    /// Starts writing `path`: a temporary file `.NAME.XXXXXX.tmp` in the same directory, or,
    /// when `path` is an existing device or FIFO, the path itself (opening a FIFO waits for
    /// its reader, as a shell's redirection does). A directory is an [`Error::Output`].
    pub fn create(path: &Path) -> Result<Self> {
        if crate::data::source::remote::is_url(path) {
            let temp = tempfile::Builder::new()
                .prefix(".streamfit-upload.")
                .tempfile()
                .map_err(|e| Error::output(path, e))?;
            return Ok(AtomicFile {
                target: Target::Remote(temp),
                path: path.to_path_buf(),
            });
        }
        let target = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(Error::output(path, "it is a directory"));
            }
            Ok(meta) if !meta.is_file() => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| Error::output(path, format!("{} ({e})", file_kind(&meta))))?;
                Target::Direct(file)
            }
            _ => Target::Temporary(temporary_beside(path)?),
        };
        Ok(AtomicFile {
            target,
            path: path.to_path_buf(),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file being written (for writers that need a `File`).
    pub fn as_file_mut(&mut self) -> &mut File {
        match &mut self.target {
            Target::Temporary(temp) | Target::Remote(temp) => temp.as_file_mut(),
            Target::Direct(file) => file,
        }
    }

    /// Flushes and fsyncs the file, renames it to its final name and fsyncs the directory.
    /// A device or FIFO written in place is flushed (and fsynced where it supports that).
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let fail = |e: std::io::Error| Error::output(&path, e);
        match self.target {
            Target::Temporary(mut temp) => {
                temp.flush().map_err(fail)?;
                temp.as_file().sync_all().map_err(fail)?;
                temp.persist(&path).map_err(|e| fail(e.error))?;
                sync_dir(parent_dir(&path)).map_err(fail)
            }
            Target::Remote(mut temp) => {
                use std::io::{Read, Seek};
                let mut bytes = Vec::new();
                temp.flush()
                    .and_then(|_| temp.rewind())
                    .and_then(|_| temp.read_to_end(&mut bytes))
                    .map_err(|e| {
                        Error::output(
                            crate::data::source::remote::redact(&path.to_string_lossy()),
                            e,
                        )
                    })?;
                crate::data::source::remote::put(&path, bytes)
            }
            Target::Direct(mut file) => {
                file.flush().map_err(fail)?;
                match file.sync_all() {
                    // A pipe or a character device has nothing to sync.
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
                    other => other.map_err(fail),
                }
            }
        }
    }
}

/// A temporary file `.NAME.XXXXXX.tmp` beside `path`.
fn temporary_beside(path: &Path) -> Result<NamedTempFile> {
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
    builder
        .tempfile_in(parent_dir(path))
        .map_err(|e| Error::output(path, e))
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.as_file_mut().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.as_file_mut().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.as_file_mut().flush()
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

/// What kind of file `meta` describes, for messages: `a fifo`, `a directory`...
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let file_type = meta.file_type();
    if file_type.is_dir() {
        return "a directory";
    }
    if file_type.is_symlink() {
        return "a symlink";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a fifo";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
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

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_through_and_stays_a_fifo() {
        use std::io::Read;
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("out.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut text = String::new();
                File::open(&fifo)
                    .expect("open for reading")
                    .read_to_string(&mut text)
                    .expect("read");
                text
            })
        };
        write_atomically(&fifo, b"through the pipe").expect("write");
        assert_eq!(reader.join().expect("reader"), "through the pipe");
        let kind = std::fs::symlink_metadata(&fifo).expect("stat").file_type();
        assert!(kind.is_fifo(), "replaced by {kind:?}");
        assert_eq!(names(dir.path()), ["out.fifo"]);
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = write_atomically(dir.path(), b"x").expect_err("a directory");
        assert!(matches!(err, Error::Output { .. }), "{err:?}");
        assert!(err.to_string().contains("is a directory"), "{err}");
        assert!(dir.path().is_dir());
    }
}
