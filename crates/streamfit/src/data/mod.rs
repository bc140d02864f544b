//! Data: rows, schemas and the sources that decode files into rows.
//!
//! Layer 1: knows files and formats, nothing of threads, models or training.
//!
//! - [`discover`]: the files named by DATA arguments (directories searched recursively, glob
//!   patterns), with their hive partition values; [`partition`] types those and filters files.
//! - [`RowBlock`]: row-major rows with targets and global row ids (chunks and batches).
//! - [`ColumnSpec`] / [`Schema`]: which columns are features and label, asked and resolved.
//! - [`categorical`]: categorical columns and their fitted encoding (one-hot or hashing);
//!   [`sketch`] counts their values in bounded memory.
//! - [`stats`]: per-column count, mean, std, min, max, nulls and non-finite values.
//! - [`transpose`]: eight float32 columns into row-major rows, checking for NaN/inf.
//! - [`source`]: the [`Source`](source::Source) trait, its Parquet and shard implementations,
//!   and [`open`](source::open), which picks the format of a dataset.

pub mod categorical;
pub mod discover;
pub mod partition;
pub mod rows;
pub mod schema;
pub mod sketch;
pub mod source;
pub mod stats;
pub mod transpose;

pub use self::rows::RowBlock;
pub use self::schema::{ColumnSpec, FeatureSelection, Schema};
pub use self::source::ReadMode;
