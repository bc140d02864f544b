//! The loader: a pipeline over a configuration, handed out one whole step at a time, for a
//! consumer that trains outside streamfit (the Python package's `streamfit.Loader`, or a Rust
//! caller with a model of its own).
//!
//! Layer 3. [`Loader::open`] takes the same [`TrainConfig`](crate::config::TrainConfig) the
//! trainer takes and builds the same [`Pipeline`](crate::pipeline::Pipeline), so its steps
//! are the batches `streamfit train` trains on, row for row; the pieces of a step larger than
//! the pipeline's largest batch are joined into one [`Step`]. Each step is a fresh set of
//! vectors the consumer owns (the pipeline's buffers go back to its pool at once), so a step
//! kept by the consumer never changes. [`LoaderState`] is where the loader stands (an epoch
//! and the steps taken in it), small serialisable data from which a new loader continues
//! exactly, by the trainer's own resume (the shuffle buffer's rows re-read, nothing replayed).
//! In a data-parallel setting each rank's loader reads the share the MPI trainer gives that
//! rank, and every rank's epoch has the same number of steps. It trains nothing, and installs
//! no tracing subscriber: [`Loader::profile`] turns span totals measured by the caller's
//! [`ProfileLayer`](crate::telemetry::ProfileLayer) into the stage figures.

pub mod batches;
pub mod state;

pub use self::batches::{Loader, NextStep, Step};
pub use self::state::{LoaderSettings, LoaderState};
