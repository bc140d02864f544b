//! streamfit trains models by mini-batch gradient descent on Parquet datasets larger than
//! RAM, with memory bounded by construction.
//!
//! Rows flow from a [`Source`](data::source::Source) (Parquet files, one row group per unit)
//! through the [`Pipeline`](pipeline::Pipeline): reader threads decode units into row-major
//! [`RowBlock`](data::RowBlock)s, a [`ShuffleBuffer`](pipeline::ShuffleBuffer) mixes them, a
//! batcher packs batches into recycled buffers and a bounded prefetch queue hands them to
//! [`train`](train::train), which sums chunked gradients on rayon workers and steps the
//! optimizer. Batch GD (b = N), SGD (b = 1) and mini-batch GD are the same loop with one knob,
//! [`BatchSize`](train::BatchSize).
//!
//! ```no_run
//! use std::path::PathBuf;
//! use streamfit::config::TrainConfig;
//! use streamfit::pipeline::Pipeline;
//!
//! # fn main() -> streamfit::error::Result<()> {
//! let config = TrainConfig { data: vec![PathBuf::from("data/")], ..TrainConfig::default() };
//! config.check()?;
//! let source = config.open_source()?;
//! let pipeline = Pipeline::new(source.clone(), config.pipeline_config(source.num_rows()));
//! let result = streamfit::train::train(&pipeline, &config.trainer, &mut ())?;
//! println!("loss {:?} after {} iterations", result.final_loss(), result.iterations());
//! # Ok(())
//! # }
//! ```
//!
//! Layers (imports only go sideways or down): L0 [`error`], [`telemetry`], [`guard`],
//! [`atomic_file`]; L1 [`comm`], [`data`], [`model`], [`optim`]; L2 [`pipeline`], [`train`]; L3
//! [`config`], [`convert`], [`generate`], [`inspect`], [`loader`], [`output_path`], [`plot`], [`predict`], [`run`],
//! [`tune`]. The command line (the `streamfit-cli` package) sits on top; see
//! `docs/architecture.md`.

pub mod atomic_file;
pub mod comm;
pub mod config;
pub mod convert;
pub mod data;
pub mod error;
pub mod eval_metrics;
pub mod generate;
pub mod guard;
pub mod inspect;
pub mod loader;
pub mod model;
pub mod optim;
pub mod output_path;
pub mod pipeline;
pub mod plot;
pub mod predict;
pub mod run;
pub mod telemetry;
pub mod train;
pub mod tune;

pub use crate::error::{Error, Result};
