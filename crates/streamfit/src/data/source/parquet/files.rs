//! Parquet files on disk or in remote storage: listing a dataset's files, mapping one (or
//! fetching a remote one's tail) and parsing its footer (with
//! the `footer_repair` glue for footers a writer got wrong, and the refusal of encrypted
//! files and of files without the `PAR1` magic at both ends), and probing the length of a
//! variable list column from its first row, and counting a row group's null labels (for
//! «drop_null_labels»: from the footer's statistics, else by reading the label column).
//!
//! It knows nothing of which columns are used (`columns.rs`) or how rows are decoded
//! (`decode.rs`); [`ParquetFile`] only holds what opening found.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::{ParquetMetaDataReader, ParquetStatisticsPolicy};

use crate::data::discover::list_files;
use crate::data::source::mapped_file::MappedFile;
use crate::data::source::parquet::columns::Layout;
use crate::data::source::parquet::data::FileData;
use crate::data::source::parquet::page_bounds;
use crate::data::source::parquet::ranges::ByteRanges;
use crate::error::{Error, Result};

/// One opened file: where its bytes are, its parsed footer and where the used columns sit.
pub(super) struct ParquetFile {
    pub(super) data: FileData,
    pub(super) metadata: ArrowReaderMetadata,
    pub(super) mask: ProjectionMask,
    pub(super) layout: Layout,
    /// The used columns' leaves (features, then the label when read) when every one is a flat
    /// float32 column: row groups without dictionaries are then read page by page
    /// ([`pages`](super::pages)).
    pub(super) flat: Option<Vec<usize>>,
}

/// Owner that lets `Bytes` borrow a shared memory map.
struct MapOwner(Arc<MappedFile>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Lists the Parquet files named by `paths`, as [`list_files`] does: files as given,
/// directories searched recursively, glob patterns matched and URL prefixes listed (hidden
/// and `_`-prefixed entries skipped), each argument's files in relative-path order. An entry
/// that cannot be read as a file (a dangling symbolic link, a FIFO) is listed: opening it
/// fails, like any unreadable file.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(list_files(paths)?.into_iter().map(|f| f.path).collect())
}

/// An opened file: where its bytes are and its parsed footer.
pub(super) type Opened = (FileData, ArrowReaderMetadata);

/// Remote files whose footers are fetched at once when a dataset is opened.
const CONCURRENT_REMOTE_OPENS: usize = 8;

/// Opens every file of `paths` ([`open_file`]); the results are in `paths`' order. When some
/// are remote, up to [`CONCURRENT_REMOTE_OPENS`] are opened at a time (each footer is a
/// request or two: their latencies overlap), on named threads `open-N` besides the caller's;
/// local files alone are opened one after another (a map and a parse: nothing to wait on).
/// With `stop_at_error`, no file after a failed one is started; those results are `None`
/// (every file before the first failure is opened, so that failure comes first in order).
pub(super) fn open_all(paths: &[PathBuf], stop_at_error: bool) -> Vec<Option<Result<Opened>>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let remote = paths
        .iter()
        .filter(|p| crate::data::source::remote::is_url(p))
        .count();
    if remote < 2 {
        let mut opened = Vec::with_capacity(paths.len());
        for path in paths {
            let result = open_file(path);
            let failed = result.is_err();
            opened.push(Some(result));
            if failed && stop_at_error {
                break;
            }
        }
        opened.resize_with(paths.len(), || None);
        return opened;
    }
    let next = AtomicUsize::new(0);
    let first_failure = AtomicUsize::new(usize::MAX);
    let slots: Vec<Mutex<Option<Result<Opened>>>> =
        paths.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        loop {
            let k = next.fetch_add(1, Ordering::SeqCst);
            if k >= paths.len() || k > first_failure.load(Ordering::SeqCst) {
                return;
            }
            let result = open_file(&paths[k]);
            if result.is_err() && stop_at_error {
                first_failure.fetch_min(k, Ordering::SeqCst);
            }
            *slots[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for i in 1..CONCURRENT_REMOTE_OPENS.min(paths.len()) {
            // A thread that cannot start leaves its share to the others.
            let _ = std::thread::Builder::new()
                .name(format!("open-{i}"))
                .spawn_scoped(scope, work);
        }
        work();
    });
    slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// Opens a file (mapped, or a remote object read by ranges) and parses its footer. A footer
/// the parquet crate panics on is corrupt.
pub(super) fn open_file(path: &Path) -> Result<(FileData, ArrowReaderMetadata)> {
    crate::guard::catch(|| open_file_unguarded(path)).unwrap_or_else(|reason| {
        Err(Error::Corrupt {
            file: path.to_path_buf(),
            row_group: None,
            reason,
        })
    })
}

fn open_file_unguarded(path: &Path) -> Result<(FileData, ArrowReaderMetadata)> {
    if crate::data::source::remote::is_url(path) {
        return open_remote(path);
    }
    let map = Arc::new(MappedFile::open(path)?);
    let whole = ByteRanges::whole(Bytes::from_owner(MapOwner(map.clone())));
    // The file changing while its footer is read explains any error reading it.
    let parsed = parse_footer(path, &whole);
    map.check()?;
    Ok((FileData::Mapped { map, whole }, parsed?))
}

/// Opens a remote object: one ranged read of its last 64 KiB, a second only when the footer
/// is longer, then the footer parsed from them.
#[cfg(feature = "remote")]
fn open_remote(path: &Path) -> Result<(FileData, ArrowReaderMetadata)> {
    use crate::data::source::remote::RemoteObject;
    let object = RemoteObject::open(path)?;
    let len = object.size();
    let tail_len = len.min(crate::data::source::TAIL_BYTES);
    let (mut fetched, _permit) =
        object.read_ranges(std::slice::from_ref(&(len - tail_len..len)))?;
    let mut tail = fetched.pop().unwrap_or_default();
    if tail.len() >= 8 && tail.ends_with(b"PAR1") {
        let footer_len = u32::from_le_bytes(
            tail[tail.len() - 8..tail.len() - 4]
                .try_into()
                .expect("4 bytes"),
        );
        let needed = (u64::from(footer_len) + 8).min(len);
        if needed > tail_len {
            let (mut head, _permit) =
                object.read_ranges(std::slice::from_ref(&(len - needed..len - tail_len)))?;
            let mut joined = head.pop().unwrap_or_default().to_vec();
            joined.extend_from_slice(&tail);
            tail = Bytes::from(joined);
        }
    }
    let ranges = ByteRanges::pieces(len, vec![(len - tail.len() as u64, tail.clone())]);
    let metadata = parse_footer(path, &ranges)?;
    Ok((FileData::Remote { object, tail }, metadata))
}

#[cfg(not(feature = "remote"))]
fn open_remote(path: &Path) -> Result<(FileData, ArrowReaderMetadata)> {
    crate::data::source::remote::list(path)?;
    unreachable!("without the remote feature listing a URL fails")
}

/// Parses the footer of a file from `bytes`, which hold (at least) its tail. The leading
/// magic is checked when `bytes` hold the file's start (always for local files).
fn parse_footer(path: &Path, bytes: &ByteRanges) -> Result<ArrowReaderMetadata> {
    let len = bytes.file_len();
    let corrupt = |reason: String| Error::Corrupt {
        file: path.to_path_buf(),
        row_group: None,
        reason,
    };
    if len < 12 {
        return Err(corrupt(format!(
            "file is {len} bytes, too small to be a parquet file"
        )));
    }
    // Training never uses column statistics: do not decode them.
    let options = ArrowReaderOptions::new()
        .with_encoding_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_column_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_size_stats_policy(ParquetStatisticsPolicy::SkipAll);
    let encrypted = |detail: String| Error::Encrypted {
        file: path.to_path_buf(),
        detail,
    };
    if bytes.slice(len - 4, len) == Some(b"PARE") {
        return Err(encrypted("its footer is encrypted".to_string()));
    }
    if bytes.slice(0, 4).is_some_and(|start| start != b"PAR1") {
        return Err(corrupt(
            "not a parquet file (no PAR1 magic at the start)".to_string(),
        ));
    }
    let metadata = match ArrowReaderMetadata::load(bytes, options.clone()) {
        // Offset 0 is the magic, never a page: read such a footer without those offsets.
        Ok(metadata) if has_zero_dictionary_offset(&metadata) => {
            repaired_metadata(path, bytes, options).unwrap_or(metadata)
        }
        Ok(metadata) => metadata,
        Err(e) => {
            let reason = e.to_string();
            if reason.contains("encrypted") {
                return Err(encrypted(reason));
            }
            repaired_metadata(path, bytes, options).ok_or_else(|| corrupt(reason))?
        }
    };
    // A plaintext footer can still describe encrypted column chunks: never decode those.
    let encrypted_column = metadata
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .find(|c| c.crypto_metadata().is_some());
    if let Some(column) = encrypted_column {
        return Err(encrypted(format!(
            "column `{}` is encrypted; only the footer is plaintext",
            column.column_path().string()
        )));
    }
    Ok(metadata)
}

/// True when a column chunk claims its dictionary page at offset 0.
fn has_zero_dictionary_offset(metadata: &ArrowReaderMetadata) -> bool {
    metadata
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .any(|c| c.dictionary_page_offset() == Some(0))
}

/// The metadata of a file whose footer a writer got wrong in optional column-metadata fields
/// (a field of the wrong type, a zero dictionary page offset; see `footer_repair`): decoded
/// from the footer without those fields. `None` when that does not help.
fn repaired_metadata(
    path: &Path,
    bytes: &ByteRanges,
    options: ArrowReaderOptions,
) -> Option<ArrowReaderMetadata> {
    let n = bytes.file_len();
    if n < 12 || bytes.slice(n - 4, n)? != b"PAR1" {
        return None;
    }
    let footer_len = u64::from(u32::from_le_bytes(
        bytes.slice(n - 8, n - 4)?.try_into().ok()?,
    ));
    let start = n.checked_sub(8)?.checked_sub(footer_len)?;
    let (fixed, dropped) = super::footer_repair::repair_footer(bytes.slice(start, n - 8)?)?;
    let metadata = ParquetMetaDataReader::decode_metadata(&fixed).ok()?;
    let metadata = ArrowReaderMetadata::try_new(Arc::new(metadata), options).ok()?;
    tracing::warn!(
        file = %path.display(),
        "the footer's column metadata has fields {dropped:?} of the wrong type or a zero dictionary page offset; read without them"
    );
    Some(metadata)
}

/// The nulls in row group `rg`'s label column (root `label_root`): the footer's null count
/// where the writer stored one, else counted by reading that one column chunk.
pub(super) fn count_null_labels(
    path: &Path,
    file: &ParquetFile,
    label_root: usize,
    rg: usize,
) -> Result<u64> {
    let schema = file.metadata.parquet_schema();
    let row_group = file.metadata.metadata().row_group(rg);
    let leaves: Vec<usize> = (0..schema.num_columns())
        .filter(|&l| schema.get_column_root_idx(l) == label_root)
        .collect();
    if let [leaf] = leaves[..]
        && let Some(nulls) = row_group
            .column(leaf)
            .statistics()
            .and_then(|s| s.null_count_opt())
    {
        return Ok(nulls);
    }
    let corrupt = |reason: String| Error::Corrupt {
        file: path.to_path_buf(),
        row_group: Some(rg),
        reason,
    };
    let mask = ProjectionMask::roots(schema, [label_root]);
    let bytes = file.data.chunks([row_group], &mask, false)?;
    page_bounds::check_row_group(&bytes, row_group, &mask).map_err(corrupt)?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, file.metadata.clone())
        .with_row_groups(vec![rg])
        .with_projection(mask)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    let mut nulls = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(e.to_string()))?;
        nulls += batch.column(0).null_count() as u64;
    }
    Ok(nulls)
}

/// Reads the first row of a variable-length list column to learn the feature count.
pub(super) fn probe_list_length(path: &Path, file: &ParquetFile) -> Result<Layout> {
    let Layout::List { column, label, .. } = file.layout else {
        unreachable!("probe only for list layouts")
    };
    let corrupt = |reason: String| Error::Corrupt {
        file: path.to_path_buf(),
        row_group: None,
        reason,
    };
    // The reader reads the row groups up to the first with rows: fetch and check their
    // pages first.
    let row_groups = file.metadata.metadata().row_groups();
    let first = row_groups
        .iter()
        .position(|rg| rg.num_rows() > 0)
        .unwrap_or(row_groups.len().saturating_sub(1));
    let bytes = file
        .data
        .chunks(row_groups.iter().take(first + 1), &file.mask, false)?;
    for (index, row_group) in row_groups.iter().enumerate().take(first + 1) {
        page_bounds::check_row_group(&bytes, row_group, &file.mask).map_err(|reason| {
            Error::Corrupt {
                file: path.to_path_buf(),
                row_group: Some(index),
                reason,
            }
        })?;
    }
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, file.metadata.clone())
        .with_row_groups((0..=first).collect())
        .with_projection(file.mask.clone())
        .with_batch_size(1)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(e.to_string()))?;
        if batch.num_rows() == 0 {
            continue;
        }
        let array = batch.column(column);
        let len = match array.data_type() {
            DataType::List(_) => array.as_list::<i32>().value_length(0) as usize,
            DataType::LargeList(_) => array.as_list::<i64>().value_length(0) as usize,
            _ => 0,
        };
        if len == 0 {
            return Err(corrupt(
                "the first row of the feature list is empty".to_string(),
            ));
        }
        return Ok(Layout::List { column, len, label });
    }
    Err(corrupt(
        "no rows to learn the feature list length from".to_string(),
    ))
}
