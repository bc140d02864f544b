//! Data in object storage and on HTTP servers: `s3://`, `gs://`, `az://` (`abfs://`,
//! `abfss://`) and `http(s)://` URLs given as DATA.
//!
//! A URL is listed into the same files a local directory gives (a prefix is listed
//! recursively; an `http(s)://` URL names one file, plain HTTP having no listing), and each
//! file is then read by byte ranges: the Parquet reader asks for its footer and, per unit, the
//! used column chunks ([`RemoteObject::read_ranges`]), and decodes them with the code that
//! reads local files. Nothing is downloaded whole and nothing is written to disk.
//!
//! The stores are the arrow-rs `object_store` crate's, built from the environment (see
//! `docs/object-storage.md`); its async runtime (tokio) lives here and nowhere else: callers
//! block on it from their own threads. A secret never leaves this module in a message: every
//! URL is shown without its query string or user info ([`redact`]), and every message from
//! the store is scrubbed of the credentials the environment holds.
//!
//! - `url`: recognising URLs, redacting them and scrubbing messages.
//! - `store`: the runtime, the stores (one per bucket or URL), the process-wide settings
//!   ([`RemoteOptions`]) and store errors turned into streamfit errors.
//! - `object`: [`RemoteObject`], one listed object (size, ETag) and its ranged reads,
//!   checked against the listing so a file that changes while it is read is an error; and
//!   [`put`], an output file written as one object.
//! - `prefix`: a prefix used as a directory of outputs (checkpoints): [`names`] under it,
//!   whole-object [`read`]s, [`delete`]s and [`create_new`] (the lock's conditional write).

#[cfg(feature = "remote")]
mod object;
#[cfg(feature = "remote")]
mod prefix;
#[cfg(feature = "remote")]
mod store;
mod url;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(feature = "remote")]
pub use self::object::{FetchPermit, RemoteObject};
#[cfg(feature = "remote")]
pub use self::store::{configure, options, spawn};
pub use self::url::{is_url, redact, scrub};

/// How remote data is fetched: one setting for the whole process (the stores are shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteOptions {
    /// Bytes of column chunks that may be fetched ahead of the readers, in the order they
    /// will read them, and not yet taken by one; counted in the memory budget. By default
    /// 64 MiB. A unit larger than this is not read ahead (its reader fetches it).
    pub fetch_ahead_bytes: u64,
    /// Retries of a request that failed transiently (timeouts, 5xx, resets, throttling), with
    /// exponential backoff. By default 10.
    pub io_retries: usize,
    /// Time limit of one request, in milliseconds. By default 30,000.
    pub io_timeout_ms: u64,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            fetch_ahead_bytes: 64 << 20,
            io_retries: 10,
            io_timeout_ms: 30_000,
        }
    }
}

/// One object found under a URL: its redacted name and its key relative to the URL (the
/// path discovery orders files and reads hive partitions from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub name: PathBuf,
    pub relative: String,
}

/// The objects under `url`: a prefix listed recursively, or the object it names (an
/// `http(s)://` URL always names one object). Every object is remembered, with its size and
/// ETag, for [`RemoteObject::open`]. An empty prefix is an empty list; a missing bucket,
/// refused credentials or an unreachable store are errors naming the (redacted) URL.
#[cfg(feature = "remote")]
pub fn list(url: &Path) -> crate::error::Result<Vec<ListedObject>> {
    self::object::list(url)
}

/// Writes `bytes` as the object `url` names, in one atomic PUT (`s3://`, `gs://`, `az://`;
/// `http(s)://` is read-only). Errors name the redacted URL.
#[cfg(feature = "remote")]
pub fn put(url: &Path, bytes: Vec<u8>) -> crate::error::Result<()> {
    self::object::put(url, bytes.into())
}

/// The names of the objects directly under the prefix `dir` (a checkpoint directory).
#[cfg(feature = "remote")]
pub fn names(dir: &Path) -> crate::error::Result<Vec<String>> {
    self::prefix::names(dir)
}

/// The whole object `url`, read in one GET (a checkpoint).
#[cfg(feature = "remote")]
pub fn read(url: &Path) -> crate::error::Result<Vec<u8>> {
    self::prefix::read(url)
}

/// Deletes the object `url`; a missing one is no error.
#[cfg(feature = "remote")]
pub fn delete(url: &Path) -> crate::error::Result<()> {
    self::prefix::delete(url)
}

/// Writes `bytes` as the object `url` only if it does not exist (a conditional PUT,
/// `If-None-Match: *`): `Ok(false)` when it did.
#[cfg(feature = "remote")]
pub fn create_new(url: &Path, bytes: Vec<u8>) -> crate::error::Result<bool> {
    self::prefix::create_new(url, bytes)
}

/// Without the `remote` feature a URL names no object.
#[cfg(not(feature = "remote"))]
fn unsupported(url: &Path) -> crate::error::Error {
    crate::error::Error::output(
        Path::new(&redact(&url.to_string_lossy())),
        "this streamfit was built without the `remote` feature, so it reads and writes no URLs",
    )
}

/// Without the `remote` feature: an error.
#[cfg(not(feature = "remote"))]
pub fn names(dir: &Path) -> crate::error::Result<Vec<String>> {
    Err(unsupported(dir))
}

/// Without the `remote` feature: an error.
#[cfg(not(feature = "remote"))]
pub fn read(url: &Path) -> crate::error::Result<Vec<u8>> {
    Err(unsupported(url))
}

/// Without the `remote` feature: an error.
#[cfg(not(feature = "remote"))]
pub fn delete(url: &Path) -> crate::error::Result<()> {
    Err(unsupported(url))
}

/// Without the `remote` feature: an error.
#[cfg(not(feature = "remote"))]
pub fn create_new(url: &Path, _bytes: Vec<u8>) -> crate::error::Result<bool> {
    Err(unsupported(url))
}

/// Without the `remote` feature writing a URL is an output error.
#[cfg(not(feature = "remote"))]
pub fn put(url: &Path, _bytes: Vec<u8>) -> crate::error::Result<()> {
    Err(crate::error::Error::output(
        Path::new(&redact(&url.to_string_lossy())),
        "this streamfit was built without the `remote` feature, so it writes no URLs",
    ))
}

/// Without the `remote` feature a URL is a `data` error.
#[cfg(not(feature = "remote"))]
pub fn list(url: &Path) -> crate::error::Result<Vec<ListedObject>> {
    Err(crate::error::Error::config(
        "data",
        format!(
            "{}: this streamfit was built without the `remote` feature, so it reads no URLs",
            redact(&url.to_string_lossy())
        ),
    ))
}

/// Sets the process's [`RemoteOptions`] (without the `remote` feature there is nothing to
/// set).
#[cfg(not(feature = "remote"))]
pub fn configure(_options: RemoteOptions) {}

/// The process's [`RemoteOptions`].
#[cfg(not(feature = "remote"))]
pub fn options() -> RemoteOptions {
    RemoteOptions::default()
}
