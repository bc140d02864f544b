//! streamfit shards: a fixed-stride binary format read through a memory map, with no decoding.
//!
//! A shard dataset is a directory with a `manifest.json` and one or more shard files. A shard
//! file is a 64-byte header, a JSON metadata block (feature names, label, unit sizes), the rows
//! (per row: the features then the target, little-endian f32) and one CRC32C per block of rows.
//! The layout is specified in `docs/shard-format.md`.
//!
//! - `header`: the file layout ([`Header`], [`ShardMeta`]), validated against the file's length.
//! - `manifest`: the dataset's [`Manifest`] (with the [`Preprocessing`] `convert` applied) and
//!   [`is_shard_dataset`].
//! - `writer`: [`ShardWriter`], one shard file as `convert` writes it.
//! - `source`: [`ShardSource`], the dataset read through maps, and [`ShardFormat`], its
//!   registration in [`FORMATS`](super::FORMATS).

mod header;
mod manifest;
mod source;
mod writer;

pub use self::header::{BLOCK_BYTES, HEADER_BYTES, Header, MAGIC, ShardMeta, VERSION};
pub use self::manifest::{
    MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, ManifestShard, ManifestSource,
    Preprocessing, is_shard_dataset,
};
pub use self::source::{ShardFormat, ShardSource};
pub use self::writer::ShardWriter;
