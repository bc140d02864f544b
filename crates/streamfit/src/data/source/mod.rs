//! Sources: where rows come from.
//!
//! A source is a dataset split into [`Unit`]s, the smallest pieces that can be read
//! independently (a Parquet row group, or a row range of a memory-mapped shard). The pipeline
//! only sees the [`Source`] trait: it plans units, hands them to reader threads and receives
//! row-major [`RowBlock`]s. Sources know nothing of threads, shuffling or models.
//!
//! - [`parquet`]: Parquet files through a memory map (the only module that touches the
//!   arrow/parquet readers), with `footer_repair` for footers a writer gave a mistyped field.
//! - [`shard`]: streamfit's own fixed-stride shards through a memory map (no decoding).
//! - [`write`]: the Parquet writer used by `generate`.

mod footer_repair;
mod pages;
pub mod parquet;
pub mod shard;
pub mod write;

use std::ops::ControlFlow;
use std::path::PathBuf;

use serde::Serialize;

use crate::data::{RowBlock, Schema};
use crate::error::Result;

pub use self::parquet::ParquetSource;
pub use self::shard::ShardSource;

/// One independently readable piece of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Index of the file in the dataset.
    pub file: usize,
    /// Index of the piece inside the file (a row group).
    pub index_in_file: usize,
    /// Rows in the unit.
    pub num_rows: u64,
    /// Global id of the unit's first row: the number of rows before it in file order.
    pub first_row_id: u64,
}

/// What a column of a source is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnRole {
    /// A feature (or the list column holding all features).
    Feature,
    /// The label.
    Label,
    /// Not read.
    Unused,
}

/// One column of a source, as `inspect` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// How the file stores it (Parquet physical and logical type, or `f32` in shards).
    pub stored_type: String,
    /// Its Arrow type as decoded (before the cast to f32).
    pub arrow_type: String,
    /// Feature, label or unused.
    pub role: ColumnRole,
    /// The cast applied, or why an unused column is not a feature.
    pub note: String,
}

/// What a source is, for `inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    /// `parquet` or `shards`.
    pub format: &'static str,
    /// What one unit is (`row group`, `row range`).
    pub unit_kind: &'static str,
    /// Every top-level column of the (first) file.
    pub columns: Vec<ColumnInfo>,
    /// Compression codecs of the used column chunks.
    pub codecs: Vec<String>,
}

/// Where a reader puts decoded rows.
///
/// The reader asks for an empty block with [`ChunkSink::empty_block`] (so blocks can be
/// recycled), fills it with at most the requested number of rows, and passes it on with
/// [`ChunkSink::send`]. `send` returns `ControlFlow::Break` when nobody is listening any more,
/// and the reader must then stop early without error.
pub trait ChunkSink {
    /// An empty block to fill.
    fn empty_block(&mut self) -> RowBlock;
    /// Hands a filled block on.
    fn send(&mut self, block: RowBlock) -> ControlFlow<()>;
}

/// Collects every block (for tests and small reads; memory grows with the data).
impl ChunkSink for Vec<RowBlock> {
    fn empty_block(&mut self) -> RowBlock {
        RowBlock::default()
    }

    fn send(&mut self, block: RowBlock) -> ControlFlow<()> {
        self.push(block);
        ControlFlow::Continue(())
    }
}

/// A dataset that can be read unit by unit from several threads at once.
///
/// Contract: `read_unit(u)` delivers exactly `units()[u].num_rows` rows, in file order, with
/// ids `first_row_id..first_row_id + num_rows`, in blocks of at most `max_block_rows` rows,
/// or returns an error naming the file, the unit and (where known) the row and column. Bad
/// data is an `Err`, never a panic. An out-of-range unit index is a caller bug and panics.
pub trait Source: Send + Sync {
    /// The units in file order.
    fn units(&self) -> &[Unit];
    /// Feature names and label.
    fn schema(&self) -> &Schema;
    /// The files of the dataset, in order.
    fn files(&self) -> &[PathBuf];
    /// Reads one unit into `sink`.
    fn read_unit(&self, unit: usize, max_block_rows: usize, sink: &mut dyn ChunkSink)
    -> Result<()>;

    /// Total number of rows.
    fn num_rows(&self) -> u64 {
        self.units().iter().map(|u| u.num_rows).sum()
    }
    /// Number of features per row.
    fn num_features(&self) -> usize {
        self.schema().num_features()
    }
    /// Bytes of the files on disk.
    fn file_bytes(&self) -> u64;
    /// Columns, roles and codecs, for `inspect`.
    fn describe(&self) -> SourceInfo;

    /// Reads at least the rows at `offsets` (sorted, within the unit) of one unit into `sink`
    /// and returns how many rows were read. By default the whole unit is read; a source with
    /// direct row access reads just those rows (used to refill a shuffle buffer on resume).
    fn read_rows(
        &self,
        unit: usize,
        offsets: &[u64],
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<u64> {
        let _ = offsets;
        self.read_unit(unit, max_block_rows, sink)?;
        Ok(self.units()[unit].num_rows)
    }
}
