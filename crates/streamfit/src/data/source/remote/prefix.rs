//! A prefix of object storage used as a directory of outputs (`--checkpoint-dir s3://...`):
//! the names of the objects directly under it, whole-object reads, deletes, and a create that
//! fails when the object exists (the lock).
//!
//! Nothing here goes through the listing cache of [`RemoteObject`](super::RemoteObject): a
//! checkpoint prefix changes while the run writes it, so each call asks the store. Errors
//! name the redacted URL.

use std::path::Path;

use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::data::source::remote::store::{block_on, store_error, store_for};
use crate::data::source::remote::url::redact;
use crate::error::{Error, Result};

/// The names of the objects directly under the prefix `dir` (not those in deeper
/// "subdirectories"), in no particular order. A prefix with no objects is an empty list.
pub(super) fn names(dir: &Path) -> Result<Vec<String>> {
    let text = dir.to_string_lossy().into_owned();
    let name = redact(&text);
    let (store, location) = store_for(&text)?;
    let prefix = (!location.as_ref().is_empty()).then_some(&location);
    let listed = block_on(async {
        let result = store.list_with_delimiter(prefix).await?;
        Ok::<_, object_store::Error>(result.objects)
    })?
    .map_err(|e| store_error(&name, &e))?;
    Ok(listed
        .into_iter()
        .filter_map(|meta| meta.location.filename().map(str::to_string))
        .collect())
}

/// The whole object `url`.
pub(super) fn read(url: &Path) -> Result<Vec<u8>> {
    let text = url.to_string_lossy().into_owned();
    let name = redact(&text);
    let (store, location) = store_for(&text)?;
    block_on(async {
        let result = store.get(&location).await?;
        result.bytes().await
    })?
    .map(|bytes| bytes.to_vec())
    .map_err(|e| store_error(&name, &e))
}

/// Deletes the object `url` (a missing one is no error).
pub(super) fn delete(url: &Path) -> Result<()> {
    let text = url.to_string_lossy().into_owned();
    let name = redact(&text);
    let (store, location) = store_for(&text)?;
    match block_on(store.delete(&location))? {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_error(&name, &e)),
    }
}

/// Writes `bytes` as the object `url` unless it exists (`If-None-Match: *`): `Ok(true)` when
/// written, `Ok(false)` when the object was already there. A store without conditional
/// writes is an error saying so.
pub(super) fn create_new(url: &Path, bytes: Vec<u8>) -> Result<bool> {
    let text = url.to_string_lossy().into_owned();
    let name = redact(&text);
    let (store, location) = store_for(&text)?;
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match block_on(store.put_opts(&location, PutPayload::from(bytes), options))? {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. })
        | Err(object_store::Error::Precondition { .. }) => Ok(false),
        Err(object_store::Error::NotImplemented { .. }) => Err(Error::output(
            Path::new(&name),
            "this store cannot create an object only when it is absent",
        )),
        Err(e) => Err(store_error(&name, &e)),
    }
}
