//! Settings of a pipeline pass: batch and step sizes, shuffling, prefetch depth, readers.
//!
//! [`PipelineConfig`] is plain data with defaults, checked once by [`PipelineConfig::check`]
//! before any thread starts; it also derives what follows from the settings (the batch-buffer
//! count, the resident-memory budget, the evaluation pass's settings). It starts nothing and
//! reads nothing.

use super::lanes::{LANE_CHUNK_ROWS, MAX_LANES};
use super::{ReaderSettings, Shuffle};
use crate::data::RowBlock;
use crate::data::source::OnBadFile;
use crate::error::{Error, Result};

/// What happens to a last batch smaller than the batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastBatch {
    /// Emit it (an epoch has ceil(N/b) steps).
    Keep,
    /// Drop its rows (an epoch has floor(N/b) steps).
    Drop,
}

/// Settings of one pipeline pass. Checked by [`PipelineConfig::check`] before any thread.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Rows per step (the batch size b). A step larger than `piece_rows` arrives in several
    /// batches, the last one marked [`Batch::ends_step`](super::Batch::ends_step).
    pub step_rows: u64,
    /// Largest batch the pipeline materialises. By default 16,384.
    pub piece_rows: usize,
    /// Keep or drop a final partial step. By default keep.
    pub last_batch: LastBatch,
    /// Unit and row order. By default seeded with 0.
    pub shuffle: Shuffle,
    /// Rows held by the shuffle buffer. By default 65,536.
    pub shuffle_buffer_rows: usize,
    /// Independent reservoirs the shuffle buffer is split into, run on up to that many
    /// threads ([`lanes`](super::lanes)); part of the batch order. By default 1 (one buffer
    /// on the `shuffle` thread).
    pub shuffle_lanes: usize,
    /// Threads that run the lanes: 0 for one per lane up to the machine's cores. It changes
    /// no batch. By default 0.
    pub lane_threads: usize,
    /// Batches queued ahead of the consumer. By default 4.
    pub prefetch: usize,
    /// Reader threads. By default 2.
    pub num_readers: usize,
    /// Rows per decoded block. By default 8,192.
    pub block_rows: usize,
    /// Blocks each reader may queue. By default 2.
    pub reader_channel_blocks: usize,
    /// This rank of a data-parallel run: it reads the units at plan positions ≡ rank (mod
    /// world). By default 0.
    pub rank: usize,
    /// Ranks of a data-parallel run. By default 1 (this process reads everything).
    pub world: usize,
    /// What a unit that fails while being read does: fail the pass, or (`Skip`, one process
    /// only) drop its file from that point on ([`dropped`](super::dropped)). By default fail.
    pub on_bad_file: OnBadFile,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            step_rows: 256,
            piece_rows: 16_384,
            last_batch: LastBatch::Keep,
            shuffle: Shuffle::Seeded(0),
            shuffle_buffer_rows: 65_536,
            shuffle_lanes: 1,
            lane_threads: 0,
            prefetch: 4,
            num_readers: 2,
            block_rows: 8_192,
            reader_channel_blocks: 2,
            rank: 0,
            world: 1,
            on_bad_file: OnBadFile::Error,
        }
    }
}

impl PipelineConfig {
    /// Validates the settings.
    pub fn check(&self) -> Result<()> {
        if self.step_rows == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if self.piece_rows == 0 || self.block_rows == 0 {
            return Err(Error::config("piece/block rows", "must be at least 1"));
        }
        check_readers("readers", self.num_readers)?;
        if self.world == 0 || self.rank >= self.world {
            return Err(Error::internal(format!(
                "rank {} of a world of {}",
                self.rank, self.world
            )));
        }
        if self.world > 1 && self.last_batch == LastBatch::Drop {
            return Err(Error::config(
                "drop_last",
                "is not supported in a data-parallel (MPI) run",
            ));
        }
        if matches!(self.shuffle, Shuffle::Seeded(_)) && self.shuffle_buffer_rows == 0 {
            return Err(Error::config(
                "shuffle_buffer",
                "must be at least 1 row (use «no_shuffle» to read in file order)",
            ));
        }
        if self.shuffle_lanes == 0 || self.shuffle_lanes > MAX_LANES {
            return Err(Error::config(
                "shuffle_lanes",
                format!("must be between 1 and {MAX_LANES}"),
            ));
        }
        if self.lanes() > 1 {
            if self.shuffle_lanes > self.shuffle_buffer_rows {
                return Err(Error::config(
                    "shuffle_lanes",
                    format!(
                        "must be at most «shuffle_buffer» ({} rows): each lane holds at least one row",
                        self.shuffle_buffer_rows
                    ),
                ));
            }
            if self.on_bad_file == OnBadFile::Skip {
                return Err(Error::config(
                    "shuffle_lanes",
                    "above 1 is not supported with «on_bad_file» skip",
                ));
            }
        }
        Ok(())
    }

    /// Shuffle lanes in use: `shuffle_lanes` when shuffling, else 1.
    pub fn lanes(&self) -> usize {
        match self.shuffle {
            Shuffle::Off => 1,
            Shuffle::Seeded(_) => self.shuffle_lanes.max(1),
        }
    }

    /// Groups of batches being filled at once: one, or with lanes [`LANE_ROUNDS`].
    pub fn groups_in_flight(&self) -> usize {
        if self.lanes() > 1 { LANE_ROUNDS } else { 1 }
    }

    /// The settings of one pass over a source's rows in file order, unshuffled, with
    /// `num_readers` readers and the rest at their defaults (what `inspect --stats`, the class
    /// counts of «class_weight» and `convert` read with).
    pub fn file_order(num_readers: usize) -> PipelineConfig {
        PipelineConfig {
            shuffle: Shuffle::Off,
            num_readers,
            ..PipelineConfig::default()
        }
    }

    /// The settings of an evaluation pass over `num_rows` rows: file order, every row, batches
    /// as large as the pipeline allows (one step of all rows), a unit that fails stops the
    /// pass (the files training dropped are left out of it before it starts); readers, rank
    /// and the rest as these settings have them.
    pub fn for_evaluation(&self, num_rows: u64) -> PipelineConfig {
        PipelineConfig {
            step_rows: num_rows.max(1),
            last_batch: LastBatch::Keep,
            shuffle: Shuffle::Off,
            shuffle_lanes: 1,
            on_bad_file: OnBadFile::Error,
            ..self.clone()
        }
    }

    /// The reader threads' part of the settings.
    pub fn reader_settings(&self) -> ReaderSettings {
        ReaderSettings {
            num_readers: self.num_readers,
            block_rows: self.block_rows,
            channel_blocks: self.reader_channel_blocks,
            // The ranks of a data-parallel run would drop files independently and their
            // shares of later epochs would overlap: there a failing unit fails the run.
            on_bad_file: if self.world > 1 {
                OnBadFile::Error
            } else {
                self.on_bad_file
            },
        }
    }

    /// Rows of the largest batch: `min(step_rows, piece_rows)`.
    pub fn batch_rows(&self) -> usize {
        self.step_rows.min(self.piece_rows as u64) as usize
    }

    /// Batches handed over per message: small batches travel in groups of about
    /// [`GROUP_ROWS`] rows, so the shuffle thread wakes a waiting trainer once per group
    /// instead of once per batch (a wake-up costs microseconds, a 256-row batch about 20).
    pub fn batches_per_group(&self) -> usize {
        (GROUP_ROWS / self.batch_rows().max(1)).max(1)
    }

    /// Groups the prefetch queue holds: `prefetch` batches, rounded up to whole groups
    /// (0 keeps the queue a rendezvous).
    pub fn queue_groups(&self) -> usize {
        match self.prefetch {
            0 => 0,
            // Two groups at least: one queue slot alone makes the shuffle thread wait for
            // every group the trainer has not started yet.
            p => p.div_ceil(self.batches_per_group()).max(2),
        }
    }

    /// Batch buffers in circulation: the groups in the prefetch queue, the groups being
    /// filled and the group at the consumer.
    pub fn num_batch_buffers(&self) -> usize {
        (self.queue_groups() + 1 + self.groups_in_flight()) * self.batches_per_group()
    }

    /// The resident-memory budget this configuration implies for rows of `num_features`:
    /// shuffle buffer + batch buffers + reader blocks (queued, being decoded, being consumed).
    pub fn memory_budget_bytes(&self, num_features: usize, num_rows: u64) -> u64 {
        let row = RowBlock::bytes_per_row(num_features) as u64;
        let shuffle_rows = match self.shuffle {
            Shuffle::Off => 0,
            Shuffle::Seeded(_) => (self.shuffle_buffer_rows as u64).min(num_rows),
        };
        let batch_rows = (self.num_batch_buffers() * self.batch_rows()) as u64;
        // Per reader: queued blocks, the block being filled and the decoder's arrow batch;
        // plus the block the consumer holds.
        let block_rows = (self.num_readers * (self.reader_channel_blocks + 2) + 1) as u64
            * (self.block_rows as u64).min(num_rows);
        // With lanes: rows dealt to a lane and not yet taken (lanes stay within a few chunks
        // of each other in the plan stream, and a round takes at most a group's rows more).
        let lane_rows = match self.lanes() {
            1 => 0,
            lanes => (lanes as u64 * LANE_CHUNK_ROWS + GROUP_ROWS as u64).min(num_rows),
        };
        (shuffle_rows + batch_rows + block_rows + lane_rows) * row
    }
}

/// The most reader threads a pass may start.
pub const MAX_READERS: usize = 256;

/// Refuses a reader count outside 1..=[`MAX_READERS`] for the option `field`.
pub fn check_readers(field: &'static str, num_readers: usize) -> Result<()> {
    if num_readers == 0 || num_readers > MAX_READERS {
        return Err(Error::config(
            field,
            format!("must be between 1 and {MAX_READERS}"),
        ));
    }
    Ok(())
}

/// Groups of batches the lanes fill at once (one being filled while the one before finishes).
pub const LANE_ROUNDS: usize = 2;

/// Rows per message from the shuffle thread to the trainer (see
/// [`PipelineConfig::batches_per_group`]).
pub const GROUP_ROWS: usize = 4_096;
