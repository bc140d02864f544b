//! One run per checkpoint directory: an exclusive lock held for the run's lifetime.
//!
//! Two runs writing checkpoints into one directory would delete each other's files (each keeps
//! only its newest few). [`CheckpointLock`] takes an exclusive `flock` on the file `.lock` in
//! the directory and writes the holder's pid into it, for the message a second run gets. The
//! kernel releases the lock when the process ends, however it ends, so a lock file left by a
//! killed run blocks nobody: the pid in it is only informative. Within one process the lock is
//! shared: taking it again (the trainer, after the prepared run took it before loading the
//! checkpoint to resume from) returns the same lock. It knows nothing of checkpoint files.
//!
//! A prefix in object storage (`s3://bucket/run1/`) has no `flock`: the lock is the object
//! `.lock` under it, created with a conditional PUT (`If-None-Match: *`), so of two runs
//! starting together exactly one creates it; it holds `pid N on HOST` and is deleted when the
//! run ends. A killed run cannot delete it: a lock left by a process of this host that no
//! longer runs is taken over; one from another host is refused until someone deletes it (the
//! message names the object), as nothing tells a dead remote run from a live one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use crate::data::source::remote::{self, is_url, redact};
use crate::error::{Error, Result};

/// The name of the lock file inside a checkpoint directory.
pub const LOCK_FILE: &str = ".lock";

/// Directories this process holds the lock of (canonical paths).
static HELD: Mutex<Vec<(PathBuf, Weak<Held>)>> = Mutex::new(Vec::new());

/// The exclusive right of this process to write checkpoints into a directory, until dropped.
#[derive(Debug, Clone)]
pub struct CheckpointLock {
    held: Arc<Held>,
}

#[derive(Debug)]
struct Held {
    dir: PathBuf,
    hold: Hold,
}

#[derive(Debug)]
enum Hold {
    /// The locked file: closing it (when the last clone drops) releases the lock.
    File(File),
    /// The lock object this run created under a prefix: deleted when the last clone drops.
    Object(PathBuf),
}

impl CheckpointLock {
    /// Takes the lock of checkpoint directory `dir` (created when missing), or shares the one
    /// this process holds. Another process holding it is an error naming its pid.
    pub fn acquire(dir: &Path) -> Result<CheckpointLock> {
        let canonical = if is_url(dir) {
            PathBuf::from(dir.to_string_lossy().trim_end_matches('/'))
        } else {
            std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
            dir.canonicalize().map_err(|e| Error::output(dir, e))?
        };
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|(_, lock)| lock.strong_count() > 0);
        if let Some(lock) = held
            .iter()
            .find(|(path, _)| *path == canonical)
            .and_then(|(_, lock)| lock.upgrade())
        {
            return Ok(CheckpointLock { held: lock });
        }
        let hold = if is_url(dir) {
            Hold::Object(lock_object(&canonical)?)
        } else {
            Hold::File(lock_file(dir, &canonical)?)
        };
        let lock = Arc::new(Held {
            dir: canonical.clone(),
            hold,
        });
        held.push((canonical, Arc::downgrade(&lock)));
        Ok(CheckpointLock { held: lock })
    }

    /// The locked directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.held.dir
    }
}

/// Locks the local directory `dir` (canonically `canonical`): its `.lock` file, `flock`ed.
fn lock_file(dir: &Path, canonical: &Path) -> Result<File> {
    let path = canonical.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::output(&path, e))?;
    lock_exclusively(&file).map_err(|e| match e {
        Locked::ByAnother => Error::config(
            "checkpoint_dir",
            format!(
                "{} is in use by another run ({}); wait for it to end, or use another directory",
                dir.display(),
                holder(&path)
            ),
        ),
        Locked::Failed(e) => Error::output(&path, e),
    })?;
    record_pid(&file).map_err(|e| Error::output(&path, e))?;
    Ok(file)
}

/// Locks the prefix `dir`: creates its lock object, taking over one that a dead process of
/// this host left. Returns the lock object's URL.
fn lock_object(dir: &Path) -> Result<PathBuf> {
    let url = dir.join(LOCK_FILE);
    let me = format!("pid {} on {}\n", std::process::id(), hostname());
    if remote::create_new(&url, me.clone().into_bytes())? {
        return Ok(url);
    }
    let holder = remote::read(&url)
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    if left_by_a_dead_process(&holder) {
        tracing::info!(holder, "taking over the lock of a run that no longer runs");
        remote::delete(&url)?;
        if remote::create_new(&url, me.into_bytes())? {
            return Ok(url);
        }
    }
    let holder = if holder.is_empty() {
        "holder unknown".to_string()
    } else {
        holder
    };
    Err(Error::config(
        "checkpoint_dir",
        format!(
            "{} is in use by another run ({holder}); wait for it to end, or, if it was killed on another machine, delete the object {}",
            redact(&dir.to_string_lossy()),
            redact(&url.to_string_lossy())
        ),
    ))
}

/// True when the lock object's `pid N on HOST` names this host and a process that no longer
/// runs (or this very process, which holds no lock it knows of).
fn left_by_a_dead_process(holder: &str) -> bool {
    let Some((pid, host)) = holder
        .strip_prefix("pid ")
        .and_then(|rest| rest.split_once(" on "))
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host == hostname() && (pid == std::process::id() || !process_runs(pid))
}

/// Whether process `pid` runs on this machine (`kill(pid, 0)`).
#[cfg(target_os = "linux")]
fn process_runs(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Other systems: every process counts as running (a lock is never taken over).
#[cfg(not(target_os = "linux"))]
fn process_runs(_pid: u32) -> bool {
    true
}

/// This machine's host name (`unknown` when it cannot be read).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

impl Drop for Held {
    fn drop(&mut self) {
        match &self.hold {
            // Still holding the lock: empty the file, so only a killed run leaves a pid
            // behind. Closing the file (after this) releases the lock.
            Hold::File(file) => {
                let _ = file.set_len(0);
            }
            Hold::Object(url) => {
                if let Err(e) = remote::delete(url) {
                    tracing::warn!(error = %e, "cannot delete the checkpoint lock object");
                }
            }
        }
    }
}

enum Locked {
    ByAnother,
    Failed(std::io::Error),
}

/// `flock(LOCK_EX | LOCK_NB)`. A file system without locks (`ENOLCK`, `EOPNOTSUPP`) leaves the
/// directory unlocked rather than refusing checkpoints altogether.
#[cfg(target_os = "linux")]
fn lock_exclusively(file: &File) -> std::result::Result<(), Locked> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a file descriptor this function borrows for the call's duration.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Err(Locked::ByAnother),
            Some(libc::ENOLCK | libc::EOPNOTSUPP) => return Ok(()),
            _ => return Err(Locked::Failed(e)),
        }
    }
}

/// Other systems: no lock (the pid is still recorded).
#[cfg(not(target_os = "linux"))]
fn lock_exclusively(_file: &File) -> std::result::Result<(), Locked> {
    Ok(())
}

/// Replaces the lock file's content with this process's pid.
fn record_pid(mut file: &File) -> std::io::Result<()> {
    use std::io::{Seek, Write};
    file.set_len(0)?;
    file.seek(std::io::SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

/// "pid N" from the lock file at `path`, as its holder wrote it.
fn holder(path: &Path) -> String {
    match std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_shared_within_a_process_and_released_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ck = dir.path().join("ck");
        let first = CheckpointLock::acquire(&ck).expect("lock");
        let pid = std::fs::read_to_string(ck.join(LOCK_FILE)).expect("lock file");
        assert_eq!(pid.trim(), std::process::id().to_string());
        // The same directory by another spelling: the same lock.
        let again = CheckpointLock::acquire(&dir.path().join("ck/../ck")).expect("shared");
        assert_eq!(first.dir(), again.dir());
        drop(first);
        drop(again);
        assert_eq!(std::fs::read_to_string(ck.join(LOCK_FILE)).unwrap(), "");
        // Released: another open file description can take it.
        let file = File::options()
            .read(true)
            .write(true)
            .open(ck.join(LOCK_FILE))
            .unwrap();
        assert!(lock_exclusively(&file).is_ok());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_directory_locked_elsewhere_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Another holder: a separate open file description, with a pid written in the file.
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join(LOCK_FILE))
            .unwrap();
        assert!(lock_exclusively(&file).is_ok());
        std::fs::write(dir.path().join(LOCK_FILE), "4242\n").unwrap();
        match CheckpointLock::acquire(dir.path()) {
            Err(Error::Config { field, reason }) => {
                assert_eq!(field, "checkpoint_dir");
                assert!(reason.contains("pid 4242"), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        drop(file);
        CheckpointLock::acquire(dir.path()).expect("free once the holder is gone");
    }

    #[test]
    fn a_remote_lock_is_taken_over_only_from_a_dead_process_of_this_host() {
        let host = hostname();
        let me = std::process::id();
        assert!(left_by_a_dead_process(&format!("pid {me} on {host}")));
        assert!(!left_by_a_dead_process(&format!("pid {me} on not-{host}")));
        // PID 1 always runs.
        #[cfg(target_os = "linux")]
        assert!(!left_by_a_dead_process(&format!("pid 1 on {host}")));
        assert!(!left_by_a_dead_process("garbage"));
        assert!(!left_by_a_dead_process(""));
    }
}
