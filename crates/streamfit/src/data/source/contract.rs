//! The contract between a dataset and the pipeline: the [`Source`] trait, the [`Unit`]s a
//! source is split into, and the [`ChunkSink`] a reader fills.
//!
//! Nothing here reads a file: the formats implement the trait (`parquet`, `shard`, or a
//! caller's own), and the pipeline plans units and drives readers through it without knowing
//! which format it has.

use std::ops::ControlFlow;
use std::path::PathBuf;

use crate::data::sketch::CategoryCounts;
use crate::data::source::shard::Preprocessing;
use crate::data::source::{FileIdentity, SourceInfo};
use crate::data::{RowBlock, Schema};
use crate::error::{Error, Result};

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
    /// Values per row in the blocks [`Source::read_unit`] delivers: the features, then, for a
    /// source read with a weight column ([`ColumnSpec::weight`](crate::data::ColumnSpec)),
    /// the row's weight as one trailing value. What the pipeline sizes its blocks by; only
    /// the trainer splits the weight off. A source that wraps another must return the inner
    /// one's. By default the features.
    fn row_width(&self) -> usize {
        self.num_features()
    }
    /// Bytes of the files on disk.
    fn file_bytes(&self) -> u64;
    /// Columns, roles and codecs, for `inspect`.
    fn describe(&self) -> SourceInfo;
    /// Bytes this source may hold fetched but not yet decoded (remote data's fetch budget),
    /// counted in the memory budget. By default none.
    fn fetch_budget_bytes(&self) -> u64 {
        0
    }
    /// Reads local files by explicit reads into the readers' own buffers, dropping the pages
    /// from the page cache behind them (`true`), or through their memory maps (`false`, the
    /// default); see [`ReadMode`](crate::data::ReadMode). Set between passes, never during
    /// one; the rows read are the same either way. By default ignored.
    fn read_explicitly(&self, explicit: bool) {
        let _ = explicit;
    }
    /// The most bytes one reader holds to decode one unit, beyond the blocks it fills: the
    /// unit's bytes as stored (its mapped pages, or the buffer of an explicit read or a
    /// remote fetch) plus its decompressed pages. Counted once per reader in the memory
    /// budget. By default none.
    fn unit_io_bytes(&self) -> u64 {
        0
    }
    /// Tells the source which units a pass is about to read, in the order its readers will
    /// ask for them, so that it may fetch them ahead (remote data reads ahead within
    /// «fetch_ahead_bytes»). A hint only: the readers' `read_unit` calls must give the same
    /// rows with or without it, never wait on a budget, and a later hint replaces an earlier
    /// one. By default nothing is done.
    fn plan_hint(&self, units_in_read_order: &[usize]) {
        let _ = units_in_read_order;
    }

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

    /// What identifies the data, file by file in order, so that a checkpoint can refuse to
    /// resume on changed data. By default each of [`Source::files`] as
    /// [`FileIdentity::of`] reads it (its size and the CRC32C of its last 64 KiB); a source
    /// whose data is not in files returns identities of its own. An unreadable file is an
    /// `Err` naming it.
    fn identity(&self) -> Result<Vec<FileIdentity>> {
        self.files().iter().map(|p| FileIdentity::of(p)).collect()
    }

    /// The smallest and largest value of each feature over the whole dataset, from metadata
    /// alone (no data is read): `Some` only when every file stores them for every feature.
    /// Used to judge whether the features need standardising. By default `None`.
    fn feature_ranges(&self) -> Option<Vec<(f64, f64)>> {
        None
    }

    /// The scalar feature columns this source decodes from stored values, each of which it
    /// can centre in f64 before the f32 cast ([`ColumnSpec::centre`](crate::data::ColumnSpec)).
    /// By default none.
    fn centrable_columns(&self) -> Vec<String> {
        Vec::new()
    }

    /// The preprocessing already applied to the rows this source stores (a shard dataset that
    /// `convert` wrote with preprocessing options): a run on it applies none of it again,
    /// and saves it with its model. By default none.
    fn stored_preprocessing(&self) -> Option<&Preprocessing> {
        None
    }

    /// Estimated distinct values of each of `columns` (columns the source does not read, such
    /// as strings) in its first unit only: a lower bound of the dataset's, for telling a user
    /// whether one-hot encoding suits a column. `None` where it cannot count. By default
    /// `None` for every column.
    fn first_unit_distinct(&self, columns: &[String]) -> Result<Vec<Option<u64>>> {
        Ok(vec![None; columns.len()])
    }

    /// The categorical columns the source reads, in the order of their features (with
    /// «categorical» `auto` resolved to names). By default none.
    fn categorical_columns(&self) -> Vec<String> {
        Vec::new()
    }

    /// Counts the values of the categorical columns of unit `unit` into `counts`, row by row
    /// in file order (the vocabulary pass). By default an error: the source holds no raw
    /// columns to count.
    fn count_categories(&self, unit: usize, counts: &mut CategoryCounts) -> Result<()> {
        let _ = (unit, counts);
        Err(Error::config(
            "categorical",
            "applies to Parquet data as it is decoded; a shard dataset holds rows already \
             decoded, encoded as `convert` was asked (drop the option, or convert again with it)",
        ))
    }
}
