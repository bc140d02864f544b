//! Data files as the sources open them: regular files only, mapped read-only and watched for
//! shrinking while they are read.
//!
//! [`open_regular`] refuses anything but a regular file before reading a byte (a FIFO would
//! block the open or the reads forever, a device would read without end) and names a dangling
//! symbolic link as such. [`MappedFile`] maps a file, registers the map with the `SIGBUS`
//! guard ([`map_guard`](super::map_guard)) and [`MappedFile::check`]s it: a fault inside the
//! map, or a size that differs from the one mapped, is [`Error::Changed`]. A source reads a
//! unit through [`MappedFile::read_watched`], which stops handing rows on once the map has
//! faulted (rows read from the zero pages the guard put in place never leave the reader) and
//! turns whatever the unit's read returned into that error when the file changed under it.

use std::fs::File;
use std::io::ErrorKind;
use std::ops::{ControlFlow, Deref};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::data::RowBlock;
use crate::data::source::ChunkSink;
use crate::data::source::map_guard::FaultWatch;
use crate::error::{Error, Result};

/// Opens `path` for reading if it is a regular file (following symbolic links); anything else
/// is an error naming the path and what it is, before it is opened for reading.
pub(crate) fn open_regular(path: &Path) -> Result<File> {
    let meta = std::fs::metadata(path).map_err(|e| stat_error(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Non-blocking, so that a file replaced by a FIFO since the check does not block the open.
    #[cfg(target_os = "linux")]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    Ok(file)
}

/// The error for a path that cannot be stat'ed: a dangling symbolic link says where it points.
pub(crate) fn stat_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == ErrorKind::NotFound
        && let Ok(target) = std::fs::read_link(path)
    {
        return Error::NotAFile {
            path: path.to_path_buf(),
            reason: format!(
                "a symbolic link to {}, which does not exist",
                target.display()
            ),
        };
    }
    Error::io(path, e)
}

fn not_regular(path: &Path, kind: &std::fs::FileType) -> Error {
    #[cfg(unix)]
    use std::os::unix::fs::FileTypeExt;
    #[cfg(unix)]
    let special = [
        (kind.is_fifo(), "a named pipe"),
        (kind.is_char_device(), "a character device"),
        (kind.is_block_device(), "a block device"),
        (kind.is_socket(), "a socket"),
    ];
    #[cfg(not(unix))]
    let special: [(bool, &str); 0] = [];
    let what = if kind.is_dir() {
        "a directory"
    } else {
        special
            .iter()
            .find(|(is, _)| *is)
            .map_or("not a file", |(_, what)| *what)
    };
    Error::NotAFile {
        path: path.to_path_buf(),
        reason: format!("not a regular file ({what}); data is read from regular files only"),
    }
}

/// A data file mapped read-only, with the `SIGBUS` guard watching the map.
pub(crate) struct MappedFile {
    path: PathBuf,
    /// Kept open to compare its size with the map's.
    file: File,
    // Declared before `map`: the watch ends before the map is unmapped.
    watch: FaultWatch,
    map: Mmap,
    /// The file opened for direct reads ([`MappedFile::read_at`]), on first use.
    direct: std::sync::OnceLock<Option<File>>,
    /// Set when the file system refused a direct read.
    direct_refused: std::sync::atomic::AtomicBool,
}

/// The buffer of one explicit read, returned to a pool when the last `Bytes` of it is
/// dropped: after the first units, a read costs no allocation, zeroing or page fault, and the
/// memory the readers hold stays that of the buffers in use (an allocator would keep freed
/// buffers of slightly different sizes side by side).
struct ReadBuffer(Vec<u8>);

/// Idle buffers kept for reuse (more are freed): as many as readers in use at once.
static IDLE_BUFFERS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// Idle buffers kept at most.
const MAX_IDLE_BUFFERS: usize = 16;

impl ReadBuffer {
    /// A buffer of at least `len` bytes (its contents are whatever an earlier read left).
    fn take(len: usize) -> ReadBuffer {
        let idle = IDLE_BUFFERS.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut buffer = idle.unwrap_or_default();
        if buffer.len() < len {
            buffer.resize(len, 0);
        }
        ReadBuffer(buffer)
    }
}

impl AsRef<[u8]> for ReadBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        let mut idle = IDLE_BUFFERS.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_BUFFERS {
            idle.push(std::mem::take(&mut self.0));
        }
    }
}

/// Alignment of direct reads: offsets, lengths and buffer addresses (the largest logical
/// block size in use).
const DIRECT_ALIGN: u64 = 4096;

impl MappedFile {
    /// Opens and maps the regular file at `path`.
    pub(crate) fn open(path: &Path) -> Result<MappedFile> {
        let file = open_regular(path)?;
        MappedFile::from_file(path, file)
    }

    /// Maps `file`, opened from `path` (with [`open_regular`]).
    pub(crate) fn from_file(path: &Path, file: File) -> Result<MappedFile> {
        // SAFETY: the map is read-only, and streamfit never writes its input files. Another
        // process may still shrink the file: a read past its new end raises SIGBUS, which the
        // guard registered here turns into zeros and a flag that `check` reports.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let watch = FaultWatch::register(map.as_ptr(), map.len());
        Ok(MappedFile {
            path: path.to_path_buf(),
            file,
            watch,
            map,
            direct: Default::default(),
            direct_refused: Default::default(),
        })
    }

    /// The map itself (for `madvise`).
    pub(crate) fn map(&self) -> &Mmap {
        &self.map
    }

    /// True once a read of the map faulted: the file shrank under it, and what was read past
    /// its end is zeros.
    pub(crate) fn faulted(&self) -> bool {
        self.watch.faulted()
    }

    /// [`Error::Changed`] when the map faulted or the file's size differs from the map's.
    pub(crate) fn check(&self) -> Result<()> {
        let changed = |reason: String| Error::Changed {
            file: self.path.clone(),
            reason,
        };
        let len = self
            .file
            .metadata()
            .map_err(|e| Error::io(&self.path, e))?
            .len();
        if self.faulted() {
            return Err(changed(format!(
                "it was {} bytes when opened and is {len} now; a read past its new end was stopped",
                self.map.len()
            )));
        }
        if len != self.map.len() as u64 {
            return Err(changed(format!(
                "it was {} bytes when opened and is {len} now",
                self.map.len()
            )));
        }
        Ok(())
    }

    /// Bytes `start..start + len` of the file read explicitly into a buffer of their own: the
    /// reading path for data larger than memory (see [`ReadMode`](crate::data::ReadMode)),
    /// where pages faulted in through the map, or read ahead by the kernel, are evicted and
    /// read again before a back-pressured reader gets to them. The read bypasses the page
    /// cache (`O_DIRECT`, in aligned pieces) where the file system allows it; elsewhere it is
    /// an ordinary `pread` whose pages are dropped from the page cache at once
    /// (`POSIX_FADV_DONTNEED`). Either way every byte is read from storage once. A read that
    /// ends early (the file shrank) is [`Error::Changed`].
    pub(crate) fn read_at(&self, start: u64, len: usize) -> Result<bytes::Bytes> {
        if let Some(direct) = self.direct()
            && let Some(bytes) = self.read_direct(direct, start, len)?
        {
            return Ok(bytes);
        }
        let mut buffer = ReadBuffer::take(len);
        self.file
            .read_exact_at(&mut buffer.0[..len], start)
            .map_err(|e| self.read_error(e, start, len))?;
        self.drop_cached(start, len);
        Ok(bytes::Bytes::from_owner(buffer).slice(..len))
    }

    /// The file opened a second time for reads that bypass the page cache, when the file
    /// system allows them and it is still the file mapped; `None` otherwise (also after a
    /// direct read was refused).
    fn direct(&self) -> Option<&File> {
        if self
            .direct_refused
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        self.direct
            .get_or_init(|| {
                #[cfg(target_os = "linux")]
                {
                    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
                    let direct = std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_DIRECT | libc::O_NONBLOCK)
                        .open(&self.path)
                        .ok()?;
                    let (a, b) = (direct.metadata().ok()?, self.file.metadata().ok()?);
                    (a.dev() == b.dev() && a.ino() == b.ino()).then_some(direct)
                }
                #[cfg(not(target_os = "linux"))]
                None
            })
            .as_ref()
    }

    /// Reads `start..start + len` through `direct` (whole aligned blocks into an aligned
    /// buffer, then the bytes asked for sliced out); `None` when the file system refuses the
    /// read (later reads of this file then go through the page cache).
    fn read_direct(&self, direct: &File, start: u64, len: usize) -> Result<Option<bytes::Bytes>> {
        let from = start - start % DIRECT_ALIGN;
        let to = (start + len as u64).next_multiple_of(DIRECT_ALIGN);
        let span = (to - from) as usize;
        let mut buffer = ReadBuffer::take(span + DIRECT_ALIGN as usize);
        let skip = buffer.0.as_ptr().align_offset(DIRECT_ALIGN as usize);
        let mut done = 0usize;
        while done < span {
            match direct.read_at(&mut buffer.0[skip + done..skip + span], from + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && done == 0 => {
                    self.direct_refused
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    return Ok(None);
                }
                Err(e) => return Err(self.read_error(e, start, len)),
            }
        }
        let wanted = (start - from) as usize + len;
        if done < wanted {
            return Err(self.read_error(ErrorKind::UnexpectedEof.into(), start, len));
        }
        let at = skip + (start - from) as usize;
        Ok(Some(bytes::Bytes::from_owner(buffer).slice(at..at + len)))
    }

    /// The error for a failed read of `start..start + len`: one that ended early means the
    /// file shrank.
    fn read_error(&self, e: std::io::Error, start: u64, len: usize) -> Error {
        if e.kind() == ErrorKind::UnexpectedEof {
            Error::Changed {
                file: self.path.clone(),
                reason: format!(
                    "it was {} bytes when opened; reading bytes {start}..{} ended early",
                    self.map.len(),
                    start + len as u64
                ),
            }
        } else {
            Error::io(&self.path, e)
        }
    }

    /// Asks the kernel to drop bytes `start..start + len` from the page cache (a hint: pages
    /// another process maps or has dirty stay).
    pub(crate) fn drop_cached(&self, start: u64, len: usize) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain syscall on an open descriptor; it reads no memory of ours.
            let _ = unsafe {
                libc::posix_fadvise(
                    self.file.as_raw_fd(),
                    start as libc::off_t,
                    len as libc::off_t,
                    libc::POSIX_FADV_DONTNEED,
                )
            };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (start, len);
    }

    /// Runs `read` (one unit's read into `sink`) so that no block is handed on once the map
    /// faulted, then [`check`](MappedFile::check)s the file: a change replaces whatever the
    /// read returned (an error decoding zeros, or success).
    pub(crate) fn read_watched<T>(
        &self,
        sink: &mut dyn ChunkSink,
        read: impl FnOnce(&mut dyn ChunkSink) -> Result<T>,
    ) -> Result<T> {
        let mut watched = WatchedSink {
            inner: sink,
            file: self,
        };
        let result = read(&mut watched);
        self.check()?;
        result
    }
}

impl Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

/// A sink that stops taking blocks once its file's map faulted.
struct WatchedSink<'a> {
    inner: &'a mut dyn ChunkSink,
    file: &'a MappedFile,
}

impl ChunkSink for WatchedSink<'_> {
    fn empty_block(&mut self) -> RowBlock {
        self.inner.empty_block()
    }

    fn send(&mut self, block: RowBlock) -> ControlFlow<()> {
        if self.file.faulted() {
            return ControlFlow::Break(());
        }
        self.inner.send(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_past_the_end_of_a_shrunk_file_is_zeros_and_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let page = 4096 * 4; // at least one page on any system streamfit runs on
        std::fs::write(&path, vec![7u8; 3 * page]).unwrap();
        let mapped = MappedFile::open(&path).unwrap();
        assert_eq!(mapped[2 * page + 5], 7);
        mapped.check().unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(page as u64)
            .unwrap();
        // The size check alone sees the change ...
        let err = mapped.check().unwrap_err();
        assert!(
            err.to_string().ends_with(&format!(
                "changed while being read (it was {} bytes when opened and is {page} now)",
                3 * page
            )),
            "{err}"
        );
        assert!(!mapped.faulted());
        // ... and a read past the new end, which would raise SIGBUS, reads zeros and flags it.
        let byte = std::hint::black_box(&mapped[..])[2 * page + 5];
        assert_eq!(byte, 0);
        assert!(mapped.faulted());
        assert!(mapped.check().unwrap_err().to_string().ends_with(&format!(
            "is {page} now; a read past its new end was stopped)"
        )),);
        // Other maps are not affected.
        let other_path = dir.path().join("other.bin");
        std::fs::write(&other_path, vec![1u8; page]).unwrap();
        let other = MappedFile::open(&other_path).unwrap();
        assert_eq!(other[10], 1);
        assert!(!other.faulted());
        other.check().unwrap();
    }

    #[test]
    fn only_regular_files_are_opened() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_regular(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("not a regular file (a directory)"),
            "{err}"
        );
        let link = dir.path().join("link.parquet");
        std::os::unix::fs::symlink(dir.path().join("gone.parquet"), &link).unwrap();
        let err = open_regular(&link).unwrap_err();
        assert!(
            err.to_string().contains("link.parquet: a symbolic link to"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("gone.parquet, which does not exist"),
            "{err}"
        );
        let err = open_regular(Path::new("/dev/null")).unwrap_err();
        assert!(
            err.to_string()
                .contains("not a regular file (a character device)"),
            "{err}"
        );
    }
}
