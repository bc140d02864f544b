//! Sources: where rows come from.
//!
//! A source is a dataset split into [`Unit`]s, the smallest pieces that can be read
//! independently (a Parquet row group, or a row range of a memory-mapped shard). The pipeline
//! only sees the [`Source`] trait: it plans units, hands them to reader threads and receives
//! row-major [`RowBlock`](crate::data::RowBlock)s. Sources know nothing of threads, shuffling
//! or models.
//!
//! - `contract`: the [`Source`] trait, [`Unit`] and [`ChunkSink`].
//! - `info`: what [`Source::describe`] tells `inspect` ([`SourceInfo`], [`ColumnInfo`]).
//! - `identity`: [`FileIdentity`], what a checkpoint records of each data file.
//! - `format`: the registry of input formats ([`SourceFormat`], [`FORMATS`]) and [`open`].
//! - `mapped_file`: data files as the formats open them: regular files only, mapped and
//!   watched (with `map_guard`, the `SIGBUS` guard) for shrinking while they are read.
//! - [`parquet`]: Parquet files through a memory map (the only module that touches the
//!   arrow/parquet readers).
//! - [`remote`]: object storage and HTTP URLs as data (listing, ranged reads, redaction).
//! - `partitioned`: hive partition keys as features ([`PartitionedSource`]).
//! - `read_mode`: whether local files are read through their maps or by explicit reads
//!   ([`ReadMode`]; explicit for data larger than memory).
//! - [`shard`]: streamfit's own fixed-stride shards through a memory map (no decoding).
//! - [`write`](mod@write): the Parquet writers of `generate` and `predict`.

mod contract;
mod format;
mod identity;
mod info;
mod map_guard;
mod mapped_file;
pub mod parquet;
mod partitioned;
mod read_mode;
pub mod remote;
pub mod shard;
pub mod write;

pub use self::contract::{ChunkSink, Source, Unit};
pub use self::format::{
    FORMATS, OnBadFile, OpenOptions, SkippedFiles, SourceFormat, open, open_with,
};
pub use self::identity::{FileIdentity, TAIL_BYTES};
pub use self::info::{ColumnInfo, ColumnRole, SourceInfo};
pub(crate) use self::mapped_file::stat_error;
pub use self::parquet::{ParquetFormat, ParquetSource};
pub use self::partitioned::{PARTITION_STORED_TYPE, PartitionedSource};
pub(crate) use self::read_mode::Access;
pub use self::read_mode::ReadMode;
pub use self::shard::{ShardFormat, ShardSource};
