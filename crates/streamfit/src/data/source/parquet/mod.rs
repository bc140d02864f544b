//! Parquet files read through a memory map (or, for remote data, by ranged reads of the
//! footer and of each unit's used column chunks), one row group per unit.
//!
//! Each file (a regular file with the `PAR1` magic at both ends) is mapped once, watched for
//! shrinking (a unit whose file changes under it fails with "changed while being read"; see
//! `mapped_file`), and its footer parsed once at open. A unit (row group) whose used
//! columns are all flat, PLAIN-encoded float32 columns is read page by page straight into rows
//! (`pages`: one copy fewer than the arrow reader). Any other unit is decoded by the arrow
//! reader with a projection mask so only the feature and label columns are read, in record
//! batches of at most `max_block_rows` rows, so a huge row group is never materialised whole.
//! Each batch is checked (nulls, non-finite values, list lengths) and transposed into a
//! row-major [`RowBlock`](crate::data::RowBlock). Float64, integer and boolean columns are
//! cast to f32. After a unit is read its byte range is released from this process's resident
//! set (`MADV_DONTNEED`; the page cache keeps it), so mapped files do not grow the resident
//! memory with the dataset.
//!
//! This module is the only one that touches the arrow/parquet readers. One file per job:
//!
//! - `source`: [`ParquetSource`] (opening a dataset, its [`Source`](super::Source) impl) and
//!   [`ParquetFormat`], its registration in [`FORMATS`](super::FORMATS).
//! - `data`: where a file's bytes are ([`FileData`](self::data): a map, or a remote object)
//!   and `ranges`, the byte ranges every decoder reads through (`ByteRanges`).
//! - `files`: listing files ([`expand_paths`]), mapping one and parsing its footer (with
//!   `footer_repair` for footers a writer got wrong), probing a variable list's length.
//! - `columns`: which columns are the features and the label, and where they sit in a batch;
//!   `absent`: a named feature column some files lack (an error, or null there with a fill);
//!   `categories` which are categorical, how they are read and counted.
//! - `read`: reading one unit, by `pages` (flat float32 columns) or by the arrow reader,
//!   once `page_bounds` has checked the unit's page headers (no page may declare more bytes
//!   than its values can need).
//! - `thrift`: the bounds-checked Thrift compact reader of `footer_repair` and `page_bounds`.
//! - `decode`: arrow record batches into row-major rows, with the null/NaN/type checks;
//!   `encode` writes categorical columns as one-hot or hashed features (and counts them).
//! - `prefetch`: read-ahead of remote units in the order a pass reads them, within
//!   «fetch_ahead_bytes».
//! - `passthrough`: `predict --keep`'s columns copied beside the predictions.
//! - `stats`: `inspect --stats`'s lenient statistics of a unit.
//! - `preprocess`: each feature column's fill value, indicator and f64 centre, resolved.
//! - `footer_stats`: the features' ranges from the footers' column statistics (the scale
//!   check of `train`'s default standardisation).

mod absent;
mod categories;
mod columns;
mod data;
mod decode;
mod distinct;
mod encode;
mod files;
mod footer_repair;
mod footer_stats;
mod page_bounds;
mod pages;
mod passthrough;
#[cfg(feature = "remote")]
mod prefetch;
mod preprocess;
mod ranges;
mod read;
mod source;
mod stats;
mod thrift;

pub use self::files::expand_paths;
pub use self::passthrough::{KeptRows, KeptSchema, Passthrough};
pub use self::source::{ParquetFormat, ParquetSource};
pub use crate::data::source::SkippedFiles;
