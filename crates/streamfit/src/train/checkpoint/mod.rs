//! Crash-safe checkpoints and exact resume: the checkpoint logic in one place.
//!
//! A checkpoint is written at a step boundary (every «checkpoint_every» steps, at every epoch
//! end, and when a run is interrupted). It holds the parameters, the optimizer state (step count
//! and moments), the best model so far under «early_stop», the epoch summaries so far, the
//! iteration, the position of the running epoch's stream (absent at an epoch boundary), the
//! [`RunFingerprint`] of everything that shapes the batch sequence and the parameter
//! trajectory, and the identity of the data (each file's path, size and a CRC32C of its last
//! 64 KiB: the Parquet footer, or a shard's checksum table).
//!
//! - [`file`](mod@file): the [`Checkpoint`] and its file format (save, load, list, the data's identity);
//! - [`fingerprint`](mod@fingerprint): the [`RunFingerprint`] a resume must match;
//! - [`lock`]: the [`CheckpointLock`] that keeps a second run out of a directory in use;
//! - `writer`: the `Checkpointer` that writes a run's checkpoints at its step boundaries;
//! - `restore`: what a resumed run takes from its checkpoint, after checking it fits.
//!
//! The positions come from the batch stream's own tracker (the pipeline replays its shuffle
//! decisions on row ids), so nothing here knows how a stream is read.

pub mod file;
pub mod fingerprint;
pub mod lock;
pub(crate) mod restore;
pub(crate) mod writer;

use std::path::PathBuf;

pub use self::file::{Checkpoint, DataFile, RunningLoss, data_identity};
pub use self::fingerprint::{RunFingerprint, fingerprint};
pub use self::lock::CheckpointLock;

/// Where and how often checkpoints are written.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Directory of the checkpoint files (created when missing), or an object-storage prefix
    /// (`s3://bucket/run1/`: one object per checkpoint).
    pub dir: PathBuf,
    /// Also write one every this many iterations (besides every epoch end).
    pub every_steps: Option<u64>,
    /// Checkpoints kept; older ones are deleted. At least 1.
    pub keep: usize,
}
