//! Validated configuration of a training run.
//!
//! Layer 3: [`TrainConfig`] gathers what the user chose (plain data, `Default` = the documented
//! defaults); [`TrainConfig::check`] validates it once, before any file is opened or thread
//! started, and [`TrainConfig::pipeline_config`] derives the pipeline's settings. Running code
//! never re-validates.

use std::path::PathBuf;
use std::sync::Arc;

use crate::data::ColumnSpec;
use crate::data::source::parquet::SkippedFiles;
use crate::data::source::shard::is_shard_dataset;
use crate::data::source::{ParquetSource, ShardSource, Source};
use crate::error::{Error, Result};
use crate::pipeline::{LastBatch, PipelineConfig, Shuffle};
use crate::train::{BatchSize, CHUNK_ROWS, TrainerConfig, step_rows};

/// Rows of the largest batch the pipeline materialises: a multiple of the gradient chunk.
pub const PIECE_ROWS: usize = 16 * CHUNK_ROWS;

/// Everything a `train` run needs.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Parquet files and/or directories of them, or one shard dataset directory.
    pub data: Vec<PathBuf>,
    /// Feature and label columns.
    pub columns: ColumnSpec,
    /// Rows per step. By default 256.
    pub batch_size: BatchSize,
    /// Keep or drop the last partial batch. By default keep.
    pub last_batch: LastBatch,
    /// Seed of every random choice. By default 0.
    pub seed: u64,
    /// Shuffle units and rows. By default on.
    pub shuffle: bool,
    /// Rows in the shuffle buffer. By default 65,536.
    pub shuffle_buffer_rows: usize,
    /// Batches prefetched ahead of the trainer. By default 4.
    pub prefetch: usize,
    /// Reader threads. By default 2.
    pub num_readers: usize,
    /// Check each block of shard rows against its checksum on first touch. By default on.
    pub verify_checksums: bool,
    /// Leave out Parquet files that cannot be opened (see
    /// [`TrainConfig::open_source_skipping`]). By default off.
    pub skip_bad_files: bool,
    /// Validation data (`--valid`): Parquet files and/or directories, or one shard dataset,
    /// with the training data's columns. By default none.
    pub valid: Vec<PathBuf>,
    /// This process's rank in a data-parallel run. By default 0.
    pub rank: usize,
    /// Ranks of a data-parallel run (each reads 1/world of the units and contributes about
    /// b/world rows per step). By default 1.
    pub world: usize,
    /// Model, optimizer and loop settings.
    pub trainer: TrainerConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: Vec::new(),
            columns: ColumnSpec::default(),
            batch_size: BatchSize::Rows(256),
            last_batch: LastBatch::Keep,
            seed: 0,
            shuffle: true,
            shuffle_buffer_rows: 65_536,
            prefetch: 4,
            num_readers: 2,
            verify_checksums: true,
            skip_bad_files: false,
            valid: Vec::new(),
            rank: 0,
            world: 1,
            trainer: TrainerConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Validates every setting that does not need the data.
    pub fn check(&self) -> Result<()> {
        if self.data.is_empty() {
            return Err(Error::config("data", "no input files or directories given"));
        }
        if self.batch_size == BatchSize::Rows(0) {
            return Err(Error::config(
                "batch_size",
                "must be at least 1 (or `full`)",
            ));
        }
        if let Some((field, reason)) = self
            .trainer
            .optimizer
            .problem()
            .or_else(|| self.trainer.model.problem())
        {
            return Err(Error::config(field, reason));
        }
        if self.trainer.early_stop == Some(0) {
            return Err(Error::config("early_stop", "patience must be at least 1"));
        }
        if self.trainer.early_stop.is_some() && self.valid.is_empty() {
            return Err(Error::config(
                "early_stop",
                "needs validation data («valid»)",
            ));
        }
        if self.trainer.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        if self.trainer.num_threads == 0 || self.trainer.num_threads > 1024 {
            return Err(Error::config("threads", "must be between 1 and 1024"));
        }
        if self.prefetch > 1024 {
            return Err(Error::config("prefetch", "must be at most 1024"));
        }
        self.pipeline_config(1).check()
    }

    /// The pipeline settings for a dataset of `num_rows` rows. In a data-parallel run each
    /// rank's step is ceil(b / world) rows (`full`: all of its rows).
    pub fn pipeline_config(&self, num_rows: u64) -> PipelineConfig {
        let global = step_rows(self.batch_size, num_rows);
        let local = match self.batch_size {
            BatchSize::Rows(b) if self.world > 1 => b.div_ceil(self.world as u64),
            _ => global,
        };
        PipelineConfig {
            step_rows: local,
            rank: self.rank,
            world: self.world.max(1),
            piece_rows: PIECE_ROWS,
            last_batch: self.last_batch,
            shuffle: if self.shuffle {
                Shuffle::Seeded(self.seed)
            } else {
                Shuffle::Off
            },
            shuffle_buffer_rows: self.shuffle_buffer_rows,
            prefetch: self.prefetch,
            num_readers: self.num_readers,
            ..PipelineConfig::default()
        }
    }

    /// Resident-memory budget of training on `source` with these settings: the larger of the
    /// training pipeline's and the evaluation pass's (they never run at once), plus the model
    /// and its optimizer and gradient buffers ([`crate::train::model_memory_bytes`]).
    pub fn memory_budget_bytes(&self, source: &Arc<dyn Source>) -> u64 {
        let (rows, d) = (source.num_rows(), source.num_features());
        let train = self.pipeline_config(rows);
        let eval = crate::train::eval_config(&train, source);
        let model = self.trainer.model.build(d);
        let model_bytes = crate::train::model_memory_bytes(
            model.as_ref(),
            train.piece_rows,
            self.trainer.num_threads,
        );
        train
            .memory_budget_bytes(d, rows)
            .max(eval.memory_budget_bytes(d, rows))
            + model_bytes
    }

    /// True when the data is one shard dataset directory.
    pub fn is_shard_dataset(&self) -> bool {
        self.data.len() == 1 && is_shard_dataset(&self.data[0])
    }

    /// Opens the data: a directory with a shard manifest is a shard dataset (given alone);
    /// anything else is Parquet (every footer parsed once). Any unreadable file is an error.
    pub fn open_source(&self) -> Result<Arc<dyn Source>> {
        Ok(self.open(false)?.0)
    }

    /// Opens the data like [`TrainConfig::open_source`], but with `skip_bad_files` leaves out
    /// Parquet files that cannot be opened and returns them with their errors.
    pub fn open_source_skipping(&self) -> Result<(Arc<dyn Source>, SkippedFiles)> {
        self.open(self.skip_bad_files)
    }

    /// Opens the validation data (`valid`), when given, with the training data's columns.
    pub fn open_valid(&self) -> Result<Option<Arc<dyn Source>>> {
        if self.valid.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.open_paths(&self.valid, false)?.0))
    }

    fn open(&self, skip_unreadable: bool) -> Result<(Arc<dyn Source>, SkippedFiles)> {
        self.open_paths(&self.data, skip_unreadable)
    }

    fn open_paths(
        &self,
        paths: &[PathBuf],
        skip_unreadable: bool,
    ) -> Result<(Arc<dyn Source>, SkippedFiles)> {
        if let Some(dir) = paths.iter().find(|p| is_shard_dataset(p)) {
            if paths.len() != 1 {
                return Err(Error::config(
                    "data",
                    format!(
                        "{} is a shard dataset; give it alone, not with other paths",
                        dir.display()
                    ),
                ));
            }
            let source = ShardSource::open(dir, &self.columns, self.verify_checksums)?;
            return Ok((Arc::new(source), Vec::new()));
        }
        let (source, skipped) =
            ParquetSource::open_skipping(paths, &self.columns, skip_unreadable)?;
        if source.num_features() == 0 {
            return Err(Error::config(
                "features",
                format!(
                    "{}: no numeric feature columns besides the label `{}` (columns: {})",
                    source.files()[0].display(),
                    self.columns.label,
                    source
                        .describe()
                        .columns
                        .iter()
                        .map(|c| format!("{}: {}", c.name, c.arrow_type))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok((Arc::new(source), skipped))
    }
}
