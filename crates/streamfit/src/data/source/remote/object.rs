//! [`RemoteObject`]: one object of remote data, as listed (size, ETag), and its ranged reads.
//!
//! Listing remembers every object it finds in a process-wide table keyed by the object's
//! redacted name, so opening a listed file costs no second request. Every ranged read checks
//! the object against that listing: a size or ETag that differs is [`Error::Changed`], never
//! a silent mixture of two versions. Reads of one call run concurrently (close ranges
//! coalesced into one request); the bytes fetched and not yet decoded are counted for the
//! whole process. Reads run on the I/O runtime: blocking ([`RemoteObject::read_ranges`], a
//! reader's own fetch) or as a future ([`RemoteObject::fetch_ranges`], read-ahead).

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::data::source::remote::ListedObject;
use crate::data::source::remote::store::{block_on, store_error, store_for};
use crate::data::source::remote::url::{redact, scheme};
use crate::error::{Error, Result};

/// Ranges closer than this are fetched as one request.
const COALESCE_GAP_BYTES: u64 = 1 << 20;
/// Requests in flight for one read call.
const CONCURRENT_REQUESTS: usize = 8;

/// One object of remote data.
#[derive(Debug)]
pub struct RemoteObject {
    /// The redacted URL: what messages and checkpoints name.
    name: PathBuf,
    store: Arc<dyn ObjectStore>,
    location: StorePath,
    size: u64,
    /// The ETag when the listing (or the first read) gave one.
    etag: Mutex<Option<String>>,
}

type Objects = Mutex<HashMap<PathBuf, Arc<RemoteObject>>>;
static OBJECTS: OnceLock<Objects> = OnceLock::new();

fn objects() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Arc<RemoteObject>>> {
    OBJECTS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// See [`super::list`].
pub(super) fn list(url: &Path) -> Result<Vec<ListedObject>> {
    let text = url.to_string_lossy().into_owned();
    let name = PathBuf::from(redact(&text));
    if objects().contains_key(&name) {
        // Listed already (the file list of a tree is listed again when its files open).
        return Ok(vec![ListedObject {
            name,
            relative: String::new(),
        }]);
    }
    let (store, location) = store_for(&text)?;
    let is_http = scheme(&text).is_some_and(|s| s.starts_with("http"));
    let mut found = Vec::new();
    if !is_http {
        let prefix = (!location.as_ref().is_empty()).then_some(&location);
        let metas: Vec<ObjectMeta> = block_on(store.list(prefix).try_collect())?
            .map_err(|e| store_error(&name.to_string_lossy(), &e))?;
        let base = name.to_string_lossy().trim_end_matches('/').to_string();
        for meta in metas {
            let key = meta.location.as_ref();
            let relative = match location.as_ref() {
                "" => key.to_string(),
                prefix => match key.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
                    Some(r) => r.to_string(),
                    None => continue,
                },
            };
            let object_name = PathBuf::from(format!("{base}/{relative}"));
            remember(&object_name, store.clone(), meta);
            found.push(ListedObject {
                name: object_name,
                relative,
            });
        }
    }
    if found.is_empty() && !text.ends_with('/') {
        // Not a prefix: the object the URL names.
        let meta = match block_on(store.head(&location))? {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) if !is_http => return Ok(Vec::new()),
            Err(e) => return Err(store_error(&name.to_string_lossy(), &e)),
        };
        remember(&name, store, meta);
        found.push(ListedObject {
            name,
            relative: String::new(),
        });
    }
    Ok(found)
}

fn remember(name: &Path, store: Arc<dyn ObjectStore>, meta: ObjectMeta) {
    let object = RemoteObject {
        name: name.to_path_buf(),
        store,
        location: meta.location,
        size: meta.size,
        etag: Mutex::new(meta.e_tag),
    };
    objects().insert(name.to_path_buf(), Arc::new(object));
}

/// Bytes fetched and not yet released, for the whole process (read ahead or held by readers).
struct Budget {
    in_use: Mutex<u64>,
}

static BUDGET: Budget = Budget {
    in_use: Mutex::new(0),
};

/// A share of the fetched bytes, given back when dropped.
#[derive(Debug)]
pub struct FetchPermit {
    bytes: u64,
}

impl Budget {
    /// Counts `bytes` as fetched. It never waits: a reader holds its unit's bytes while it
    /// hands rows on, and the pipeline may need another reader's unit first, so waiting here
    /// could deadlock. Read-ahead keeps itself within «fetch_ahead_bytes» (it fetches a unit
    /// only when the unit fits), so this counter is at most that budget plus the units the
    /// readers hold; it is traced, for checking that.
    fn acquire(&self, bytes: u64) -> FetchPermit {
        let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        *in_use += bytes;
        tracing::trace!(in_use = *in_use, "fetched bytes held");
        FetchPermit { bytes }
    }
}

impl Drop for FetchPermit {
    fn drop(&mut self) {
        let mut in_use = BUDGET.in_use.lock().unwrap_or_else(|e| e.into_inner());
        *in_use = in_use.saturating_sub(self.bytes);
    }
}

impl RemoteObject {
    /// The object named `name` (a redacted URL that listing returned), or a fresh look-up of
    /// it when it was not listed.
    pub fn open(name: &Path) -> Result<Arc<RemoteObject>> {
        if let Some(object) = objects().get(name) {
            return Ok(object.clone());
        }
        list(name)?;
        objects().get(name).cloned().ok_or_else(|| {
            Error::io(
                name,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
            )
        })
    }

    /// The redacted URL.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Size in bytes, as listed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The ETag, as listed (or as the first read saw it when the listing gave none).
    pub fn etag(&self) -> Option<String> {
        self.etag.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fetches `ranges` (within the object) concurrently, close ones coalesced, counted as
    /// fetched until the returned permit is dropped. Each result is
    /// the bytes of the range at the same index. A failed request is an error naming the
    /// object; an object whose size or ETag is not the listed one is [`Error::Changed`].
    pub fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<(Vec<Bytes>, FetchPermit)> {
        block_on(self.fetch_ranges(ranges))?
    }

    /// [`RemoteObject::read_ranges`] as a future, for tasks on the I/O runtime (read-ahead).
    pub async fn fetch_ranges(&self, ranges: &[Range<u64>]) -> Result<(Vec<Bytes>, FetchPermit)> {
        if let Some(r) = ranges.iter().find(|r| r.start > r.end || r.end > self.size) {
            return Err(Error::Corrupt {
                file: self.name.clone(),
                row_group: None,
                reason: format!(
                    "bytes {}..{} lie outside the object's {} bytes",
                    r.start, r.end, self.size
                ),
            });
        }
        let merged = coalesce(ranges);
        let total: u64 = merged.iter().map(|r| r.end - r.start).sum();
        let permit = BUDGET.acquire(total);
        tracing::trace!(bytes = total, requests = merged.len(), "fetch");
        let fetched: Vec<Bytes> = futures::stream::iter(merged.iter().cloned())
            .map(|range| self.fetch(range))
            .buffered(CONCURRENT_REQUESTS)
            .try_collect()
            .await?;
        let out = ranges
            .iter()
            .map(|r| {
                let at = merged
                    .iter()
                    .position(|m| m.start <= r.start && r.end <= m.end)
                    .expect("every range lies in a merged range");
                let base = merged[at].start;
                fetched[at].slice((r.start - base) as usize..(r.end - base) as usize)
            })
            .collect();
        Ok((out, permit))
    }

    /// One ranged GET, checked against the listing.
    async fn fetch(&self, range: Range<u64>) -> Result<Bytes> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let expected = self.etag();
        let request = GetOptions {
            if_match: expected.clone(),
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let name = self.name.to_string_lossy();
        let result = match self.store.get_opts(&self.location, request).await {
            Ok(result) => result,
            Err(object_store::Error::Precondition { .. }) => {
                return Err(self.changed("its ETag is no longer the one listed"));
            }
            Err(e) => return Err(store_error(&name, &e)),
        };
        if result.meta.size != self.size {
            return Err(self.changed(&format!(
                "it is {} bytes, listed as {}",
                result.meta.size, self.size
            )));
        }
        match (&expected, &result.meta.e_tag) {
            (Some(listed), Some(now)) if listed != now => {
                return Err(self.changed(&format!("its ETag is {now}, listed as {listed}")));
            }
            (None, Some(now)) => {
                *self.etag.lock().unwrap_or_else(|e| e.into_inner()) = Some(now.clone());
            }
            _ => {}
        }
        let bytes = result.bytes().await.map_err(|e| store_error(&name, &e))?;
        if bytes.len() as u64 != range.end - range.start {
            return Err(self.changed(&format!(
                "a read of bytes {}..{} returned {} bytes",
                range.start,
                range.end,
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    fn changed(&self, reason: &str) -> Error {
        Error::Changed {
            file: self.name.clone(),
            reason: reason.to_string(),
        }
    }
}

/// Writes `bytes` as the object `url` names (`s3://`, `gs://`, `az://`): one PUT, which the
/// stores make atomic (a reader sees the old object or the whole new one). An `http(s)://`
/// URL is refused (plain HTTP is read-only here). Errors name the redacted URL.
pub(super) fn put(url: &Path, bytes: Bytes) -> Result<()> {
    let text = url.to_string_lossy().into_owned();
    let name = redact(&text);
    if scheme(&text).is_some_and(|s| s.starts_with("http")) {
        return Err(Error::output(
            Path::new(&name),
            "an http(s):// URL is read-only; write to s3://, gs:// or az://",
        ));
    }
    let (store, location) = store_for(&text)?;
    if location.as_ref().is_empty() {
        return Err(Error::output(Path::new(&name), "the URL names no object"));
    }
    block_on(store.put(&location, object_store::PutPayload::from(bytes)))?
        .map_err(|e| store_error(&name, &e))?;
    objects().remove(Path::new(&name));
    Ok(())
}

/// `ranges` sorted and merged where they overlap or lie within [`COALESCE_GAP_BYTES`].
fn coalesce(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| !r.is_empty()).cloned().collect();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(COALESCE_GAP_BYTES) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    if out.is_empty() && !ranges.is_empty() {
        out.push(0..0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_ranges_are_coalesced_and_far_ones_are_not() {
        let mb = 1u64 << 20;
        assert_eq!(
            coalesce(&[10 * mb..11 * mb, 0..100, 200..300, 150..250]),
            [0..300, 10 * mb..11 * mb]
        );
        let merged = coalesce(&[0..10, 10 + mb..20 + mb]);
        assert_eq!((merged.len(), merged[0].clone()), (1, 0..20 + mb));
    }
}
