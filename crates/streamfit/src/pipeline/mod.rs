//! The bounded pipeline from a [`Source`](crate::data::source::Source) to a stream of batches.
//!
//! ```text
//!  plan ──► reader-0..R ──blocks──► shuffle ──batches──► prefetch queue (P) ──► consumer
//!                        bounded    (ShuffleBuffer +      bounded
//!                        channels    batcher)
//!                                        ◄──── batch buffers recycled on drop ◄────
//! ```
//! Layer 2: spawns the reader threads and the `shuffle` thread (and, with
//! [`PipelineConfig::shuffle_lanes`] above 1, the `shuffle-lane-N` threads of
//! [`lanes`]), knows nothing of models or training. [`Pipeline::epoch`] starts one pass and returns a [`BatchStream`]; the batch
//! sequence is a pure function of (data, seed, epoch, config), whatever the reader count or
//! timing, because readers take units round-robin and the shuffle stage consumes them in plan
//! order. Every channel is bounded and batch buffers come from a fixed pool, so resident
//! memory is bounded by [`PipelineConfig::memory_budget_bytes`]. An error anywhere ends the
//! stream with that error promptly; dropping the stream early stops and joins every thread.
//!
//! What a trainer consumes is the [`BatchSource`] trait: epochs of batches, resumable from a
//! [`StreamPosition`]. The [`Pipeline`] implements it for one process, and [`RankShare`] for one
//! rank of a data-parallel run.

pub mod batch;
pub mod batch_source;
pub mod config;
pub mod dropped;
mod lane_resume;
mod lane_segment;
mod lane_stage;
pub mod lanes;
pub mod passes;
pub mod plan;
pub mod reader;
pub mod resume;
pub mod share;
pub mod shuffle;
mod stage;

pub use self::batch::{Batch, BatchStream, QueueStats, Waited};
pub use self::batch_source::{
    BatchSource, EpochBatches, PositionTracker, ResumedEpoch, StreamPosition,
};
pub use self::config::{
    GROUP_ROWS, LANE_ROUNDS, LastBatch, MAX_READERS, PipelineConfig, check_readers,
};
pub use self::dropped::{DroppedFiles, FileDrop};
pub use self::lane_resume::LaneCursor;
pub use self::lanes::{LANE_CHUNK_ROWS, MAX_LANES};
pub use self::passes::Pipeline;
pub use self::plan::{RngStream, Shuffle, epoch_plan, rng_for};
pub use self::reader::{ErrorSlot, Next, PlanOrderReceiver, ReaderSettings, spawn_readers};
pub use self::resume::{CursorTracker, StreamCursor};
pub use self::share::RankShare;
pub use self::shuffle::ShuffleBuffer;
