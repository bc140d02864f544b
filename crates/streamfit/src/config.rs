//! The options of a training run, in one type.
//!
//! Layer 3: [`TrainConfig`] gathers what the user chose, whichever front end built it (the
//! command line from flags, the Python package from keyword arguments, a Rust caller with
//! `..TrainConfig::default()`): the data, columns, pipeline, model, optimizer, checkpoints and
//! outputs. It is plain data whose `Default` is the documented defaults; [`TrainConfig::check`]
//! validates it once, before any file is opened or thread started, and errors name options by
//! their snake_case names (the command line shows them as flags). It also opens the data it
//! names and derives the pipeline's settings. It does not prepare or run anything: settings
//! that come from the data ([`Origin::FromData`]), the standardisation statistics, the
//! checkpoint to resume from and the outputs are the work of [`crate::run::PreparedRun`].

use std::path::PathBuf;
use std::sync::Arc;

use crate::data::categorical::CategoricalColumns;
use crate::data::schema::FillNulls;
pub use crate::data::source::OnBadFile;
use crate::data::source::shard::is_shard_dataset;
use crate::data::source::{OpenOptions, SkippedFiles, Source};
use crate::data::{ColumnSpec, FeatureSelection, ReadMode};
use crate::error::{Error, Result};
use crate::model::{Head, ModelSpec};
use crate::optim::{LrSchedule, OptimizerConfig};
use crate::pipeline::{LastBatch, PipelineConfig, Shuffle};
use crate::train::{BatchSize, CHUNK_ROWS, MAX_EPOCHS, TrainerConfig, step_rows};

/// Rows of the largest batch the pipeline materialises: a multiple of the gradient chunk.
pub const PIECE_ROWS: usize = 16 * CHUNK_ROWS;

/// The deepest prefetch queue, in batches.
pub const MAX_PREFETCH: usize = 1024;

/// Where a run continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// The newest usable checkpoint in [`TrainConfig::checkpoint_dir`], or a fresh start
    /// when it holds none yet.
    Auto,
    /// The newest usable checkpoint in this directory (an error when there is none).
    Path(PathBuf),
}

/// Where a setting that may depend on the data gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// As given in the model or optimizer settings. The default.
    #[default]
    Given,
    /// Found from the data when the run is prepared (the field's docs say how); the value in
    /// the model or optimizer settings is replaced.
    FromData,
}

/// The files a run writes besides checkpoints, and what it measures for them. Only rank 0 of
/// a data-parallel run writes them. By default none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// The trained model as JSON, written atomically and only when training succeeds.
    pub save_model: Option<PathBuf>,
    /// A JSON report at the end: iterations, loss, rows/s, stall, peak RSS, memory budget.
    pub report: Option<PathBuf>,
    /// JSON lines: one per iteration and one per epoch, written as training runs.
    pub metrics: Option<PathBuf>,
    /// An SVG chart of the per-iteration batch loss and the per-epoch full-data loss.
    pub plot: Option<PathBuf>,
    /// A log scale for the loss axis of `plot` (needs `plot`). By default off.
    pub plot_log: bool,
    /// A Chrome trace-event file of every stage's spans. The front end installs the tracing
    /// layer that writes it (the library installs no subscriber).
    pub trace: Option<PathBuf>,
    /// Per-stage busy time, throughput, stall and a diagnosis, in the report (the front end
    /// installs the [`crate::telemetry::ProfileLayer`] that measures it). By default off.
    pub profile: bool,
}

/// Everything a `train` run needs. Field names are the option names errors use (the command
/// line's long flags, snake_case), except where a field's docs name the option.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Parquet files and/or directories of them, or one shard dataset directory.
    pub data: Vec<PathBuf>,
    /// Feature and label columns (options `features`, `features_column`, `label`).
    pub columns: ColumnSpec,
    /// Rows per step. By default 256.
    pub batch_size: BatchSize,
    /// Keep or drop the last partial batch (option `drop_last`). By default keep.
    pub last_batch: LastBatch,
    /// Unit and row order (options `seed`, `no_shuffle`). By default shuffled with seed 0.
    pub shuffle: Shuffle,
    /// Rows in the shuffle buffer (option `shuffle_buffer`). By default 65,536.
    pub shuffle_buffer_rows: usize,
    /// Independent reservoirs the shuffle buffer is split into, each run on a thread of its
    /// own up to the machine's cores (see [`crate::pipeline::lanes`]); part of the batch
    /// order. By default 1.
    pub shuffle_lanes: usize,
    /// Batches prefetched ahead of the trainer. By default 4.
    pub prefetch: usize,
    /// Reader threads (option `readers`). By default 2.
    pub num_readers: usize,
    /// Rows per block a reader decodes and queues (the readers' share of the memory budget;
    /// it changes no batch). By default 8,192; «memory_limit» may lower it.
    pub block_rows: usize,
    /// Check each block of shard rows against its checksum on first touch. By default on.
    pub verify_checksums: bool,
    /// Read local files through their memory maps or by explicit reads that drop the pages
    /// behind the readers (see [`ReadMode`]). It changes no batch. By default
    /// [`ReadMode::Auto`]: explicit reads when the data files are larger than the memory
    /// available beside the run's budget.
    pub read_mode: ReadMode,
    /// What to do with a file that cannot be opened, or whose data fails while being read. By
    /// default stop. With [`OnBadFile::Skip`] a file that cannot be opened is left out, and one
    /// that fails mid-epoch is dropped from that point on (its remaining rows are counted as
    /// skipped and later epochs leave it out; one process only: in a data-parallel run a
    /// failure while reading still stops the run).
    pub on_bad_file: OnBadFile,
    /// Validation data: Parquet files and/or directories, or one shard dataset, with the
    /// training data's columns, evaluated after every epoch (or every `trainer.eval_every`
    /// steps). By default none.
    pub valid: Vec<PathBuf>,
    /// Validate on the first this many rows (in file order) of the validation data only. By
    /// default all of them.
    pub valid_rows: Option<u64>,
    /// Hold out this fraction (in (0, 1)) of the training data's units (row groups, shard
    /// blocks) as validation data, instead of `valid`: round(fraction × units), at least one
    /// and at least one left to train on, chosen by `trainer.init_seed` (the command line's
    /// `--seed`), whatever the reader and thread counts. Training then never sees them: rows
    /// and steps per epoch and the standardisation statistics are the other units'. By
    /// default none.
    pub valid_fraction: Option<f64>,
    /// Size the shuffle buffer (then the prefetch depth) so that the memory budget fits this
    /// many MB (see [`crate::run::memory`]). By default the settings are used as given, and a
    /// budget larger than the memory available to the process is refused.
    pub memory_limit_mb: Option<u64>,
    /// This process's rank in a data-parallel run (a prepared run takes it from its
    /// communicator). By default 0.
    pub rank: usize,
    /// Ranks of a data-parallel run (each reads 1/world of the units and contributes about
    /// b/world rows per step). By default 1.
    pub world: usize,
    /// The K of a multiclass model's head (softmax, or an MLP with a multiclass head):
    /// given, or [`Origin::FromData`]: the largest label + 1, found by one streamed pass over
    /// the training labels. Ignored by other models. By default given.
    pub classes: Origin,
    /// Iterations between decays of a step learning-rate schedule: given, or
    /// [`Origin::FromData`]: the schedule's `every` counts epochs (0 or 1: one epoch), made
    /// iterations when the run is prepared. By default given.
    pub lr_step_size: Origin,
    /// Train on z-scored features (one streamed pass computes each feature's mean and std);
    /// the saved model carries them and `predict` applies them, so it takes raw features. By
    /// default when scales are mixed.
    pub standardize: crate::train::Standardize,
    /// Fill nulls and NaN in scalar feature columns (zero, each column's mean from a
    /// statistics pass, or a number); resolved into `columns.missing` when the run is
    /// prepared. By default none: a null is an error.
    pub fill_nulls: Option<FillNulls>,
    /// Add a 0/1 feature `COL_is_null` for each feature column that held a missing value
    /// (found by the statistics pass; needs `fill_nulls`). By default off.
    pub null_indicators: bool,
    /// Columns to encode as categorical (one-hot with vocabularies fitted by one counting
    /// pass, or hashed with `hash_buckets`); resolved into `columns.categorical` when the run
    /// is prepared. By default none.
    pub categorical: CategoricalColumns,
    /// Values of each categorical column that get a one-hot feature (the most frequent);
    /// every other value shares `COL=<other>`. By default 100.
    pub max_categories: usize,
    /// Hash the categorical columns into this many shared features instead of one-hot (no
    /// counting pass). By default off.
    pub hash_buckets: Option<u32>,
    /// Weight each class's rows (`balanced`: N / (C · n_c) from the label counts of one
    /// streamed pass), times any `columns.weight`; binary and multiclass heads. Resolved into
    /// `trainer.weights` when the run is prepared. By default none.
    pub class_weight: crate::train::ClassWeight,
    /// Write crash-safe checkpoints into this directory (created when missing): at every epoch
    /// end, every `checkpoint_every` iterations and when interrupted. It must hold no
    /// checkpoint unless the run resumes. By default none.
    pub checkpoint_dir: Option<PathBuf>,
    /// Also checkpoint every this many iterations (needs `checkpoint_dir`). By default only at
    /// epoch ends.
    pub checkpoint_every: Option<u64>,
    /// Checkpoints kept in `checkpoint_dir`; older ones are deleted. By default 2.
    pub keep_checkpoints: usize,
    /// Continue exactly where a run stopped. By default a fresh start.
    pub resume: Option<Resume>,
    /// Files written besides checkpoints. By default none.
    pub outputs: Outputs,
    /// Model, optimizer and loop settings. Its `checkpoint`, `resume` and `standardize` are
    /// set from the fields above when the run is prepared ([`crate::run::PreparedRun`]).
    pub trainer: TrainerConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: Vec::new(),
            columns: ColumnSpec::default(),
            batch_size: BatchSize::Rows(256),
            last_batch: LastBatch::Keep,
            shuffle: Shuffle::Seeded(0),
            shuffle_buffer_rows: 65_536,
            shuffle_lanes: 1,
            prefetch: 4,
            num_readers: 2,
            verify_checksums: true,
            read_mode: ReadMode::Auto,
            on_bad_file: OnBadFile::Error,
            valid: Vec::new(),
            valid_rows: None,
            valid_fraction: None,
            block_rows: PipelineConfig::default().block_rows,
            memory_limit_mb: None,
            rank: 0,
            world: 1,
            classes: Origin::Given,
            lr_step_size: Origin::Given,
            standardize: crate::train::Standardize::Auto,
            fill_nulls: None,
            null_indicators: false,
            categorical: CategoricalColumns::None,
            max_categories: 100,
            hash_buckets: None,
            class_weight: crate::train::ClassWeight::None,
            checkpoint_dir: None,
            checkpoint_every: None,
            keep_checkpoints: 2,
            resume: None,
            outputs: Outputs::default(),
            trainer: TrainerConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Validates every setting that does not need the data. A setting still to come from the
    /// data ([`Origin::FromData`]) is checked with a stand-in value.
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
            .optimizer_to_check()
            .problem()
            .or_else(|| self.model_to_check().problem())
        {
            return Err(Error::config(field, reason));
        }
        if self.memory_limit_mb == Some(0) {
            return Err(Error::config("memory_limit", "must be at least 1 (MB)"));
        }
        if let Some(filter) = &self.columns.filter {
            crate::data::partition::Filter::parse(filter)?;
        }
        if self.null_indicators && self.fill_nulls.is_none() {
            return Err(Error::config(
                "null_indicators",
                "needs «fill_nulls» (the value a missing one becomes)",
            ));
        }
        if self.is_shard_dataset() {
            let asked = [
                (
                    "fill_nulls",
                    self.fill_nulls.is_some() || !self.columns.missing.is_empty(),
                ),
                ("positive_label", self.columns.positive_label.is_some()),
                (
                    "categorical",
                    self.categorical != CategoricalColumns::None
                        || !self.columns.categorical.is_empty(),
                ),
                ("drop_null_labels", self.columns.drop_null_labels),
                ("weight_column", self.columns.weight.is_some()),
            ];
            if let Some((option, _)) = asked.iter().find(|(_, on)| *on) {
                return Err(Error::config(
                    option,
                    "applies to Parquet data as it is decoded; a shard dataset holds rows already \
                     decoded, encoded as `convert` was asked (its manifest's preprocessing is \
                     applied as stored, never again): drop the option, or convert again with it",
                ));
            }
        }
        self.check_categorical()?;
        if self.class_weight != crate::train::ClassWeight::None
            && self.trainer.model.head == crate::model::Head::Regression
        {
            return Err(Error::config(
                "class_weight",
                "weights the classes of a classifier (logistic, softmax, an MLP's classes), not a regression",
            ));
        }
        if let Some(FillNulls::Value(v)) = self.fill_nulls
            && !v.is_finite()
        {
            return Err(Error::config("fill_nulls", "must be a finite number"));
        }
        if self.trainer.early_stop == Some(0) {
            return Err(Error::config("early_stop", "patience must be at least 1"));
        }
        self.check_validation()?;
        if self.trainer.epochs == 0 || self.trainer.epochs > MAX_EPOCHS {
            return Err(Error::config(
                "epochs",
                format!("must be between 1 and {MAX_EPOCHS}"),
            ));
        }
        if self.trainer.num_threads == 0 || self.trainer.num_threads > 1024 {
            return Err(Error::config("threads", "must be between 1 and 1024"));
        }
        if self.prefetch > MAX_PREFETCH {
            return Err(Error::config(
                "prefetch",
                format!("must be at most {MAX_PREFETCH}"),
            ));
        }
        self.check_checkpoints()?;
        if self.outputs.plot_log && self.outputs.plot.is_none() {
            return Err(Error::config("plot_log", "needs «plot»"));
        }
        self.pipeline_config(1).check()
    }

    fn check_categorical(&self) -> Result<()> {
        if self.hash_buckets == Some(0) {
            return Err(Error::config("hash_buckets", "must be at least 1"));
        }
        if self.hash_buckets.is_some() && self.categorical == CategoricalColumns::None {
            return Err(Error::config(
                "hash_buckets",
                "needs «categorical» (the columns to hash)",
            ));
        }
        if self.max_categories == 0 {
            return Err(Error::config("max_categories", "must be at least 1"));
        }
        if matches!(self.columns.features, FeatureSelection::ListColumn(_))
            && self.categorical != CategoricalColumns::None
        {
            return Err(Error::config(
                "categorical",
                "categorical columns are scalar columns, not «features_column»",
            ));
        }
        Ok(())
    }

    /// True when the run has validation data: `valid`, or units held out by `valid_fraction`.
    pub fn has_validation(&self) -> bool {
        !self.valid.is_empty() || self.valid_fraction.is_some()
    }

    fn check_validation(&self) -> Result<()> {
        const NEEDS: &str = "needs validation data («valid» or «valid_fraction»)";
        if let Some(f) = self.valid_fraction {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::config(
                    "valid_fraction",
                    format!("must be between 0 and 1 (exclusive), got {f}"),
                ));
            }
            if !self.valid.is_empty() {
                return Err(Error::config(
                    "valid_fraction",
                    "holds out training data as validation data, so it cannot be combined with «valid»",
                ));
            }
        }
        if self.trainer.early_stop.is_some() && !self.has_validation() {
            return Err(Error::config("early_stop", NEEDS));
        }
        match self.trainer.eval_every {
            Some(0) => return Err(Error::config("eval_every", "must be at least 1")),
            Some(_) if !self.has_validation() => return Err(Error::config("eval_every", NEEDS)),
            _ => {}
        }
        match self.valid_rows {
            Some(0) => Err(Error::config("valid_rows", "must be at least 1")),
            Some(_) if !self.has_validation() => Err(Error::config("valid_rows", NEEDS)),
            _ => Ok(()),
        }
    }

    fn check_checkpoints(&self) -> Result<()> {
        match self.checkpoint_every {
            Some(0) => return Err(Error::config("checkpoint_every", "must be at least 1")),
            Some(_) if self.checkpoint_dir.is_none() => {
                return Err(Error::config("checkpoint_every", "needs «checkpoint_dir»"));
            }
            _ => {}
        }
        if self.keep_checkpoints == 0 {
            return Err(Error::config("keep_checkpoints", "must be at least 1"));
        }
        if self.resume == Some(Resume::Auto) && self.checkpoint_dir.is_none() {
            return Err(Error::config("resume", "`auto` needs «checkpoint_dir»"));
        }
        Ok(())
    }

    /// The model as checked: a K still to be counted stands in as 2.
    fn model_to_check(&self) -> ModelSpec {
        let mut model = self.trainer.model.clone();
        if self.needs_class_count() {
            model.head = Head::Multiclass(2);
        }
        model
    }

    /// The optimizer as checked: a step size still to come from the data stands in as 1.
    fn optimizer_to_check(&self) -> OptimizerConfig {
        let mut optimizer = self.trainer.optimizer.clone();
        if let (Origin::FromData, LrSchedule::Step { every, .. }) =
            (self.lr_step_size, &mut optimizer.schedule)
        {
            *every = 1;
        }
        optimizer
    }

    /// True when the model is multiclass and its K is to be counted from the labels.
    pub fn needs_class_count(&self) -> bool {
        self.classes == Origin::FromData && matches!(self.trainer.model.head, Head::Multiclass(_))
    }

    /// Sets the K of a multiclass model's head to `classes`, now given.
    pub fn set_classes(&mut self, classes: usize) {
        if let Head::Multiclass(k) = &mut self.trainer.model.head {
            *k = classes;
        }
        self.classes = Origin::Given;
    }

    /// Resolves a step schedule's step size still to come from the data, which holds a count
    /// of epochs (1 unless set), to that many epochs of `steps_per_epoch` iterations (at least
    /// 1); it is given from then on.
    pub fn set_epoch_steps(&mut self, steps_per_epoch: u64) {
        if let (Origin::FromData, LrSchedule::Step { every, .. }) =
            (self.lr_step_size, &mut self.trainer.optimizer.schedule)
        {
            *every = steps_per_epoch.saturating_mul((*every).max(1)).max(1);
        }
        self.lr_step_size = Origin::Given;
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
            shuffle: self.shuffle,
            shuffle_buffer_rows: self.shuffle_buffer_rows,
            shuffle_lanes: self.shuffle_lanes,
            prefetch: self.prefetch,
            num_readers: self.num_readers,
            block_rows: self.block_rows,
            on_bad_file: self.on_bad_file,
            ..PipelineConfig::default()
        }
    }

    /// True when the data is one shard dataset directory.
    pub fn is_shard_dataset(&self) -> bool {
        self.data.len() == 1 && is_shard_dataset(&self.data[0])
    }

    /// Opens the data: a directory with a shard manifest is a shard dataset (given alone);
    /// anything else is Parquet (every footer parsed once). Any unreadable file is an error.
    pub fn open_source(&self) -> Result<Arc<dyn Source>> {
        let source = self.open_paths(&self.data, OnBadFile::Error)?.0;
        self.apply_read_mode(&source);
        Ok(source)
    }

    /// Opens the data like [`TrainConfig::open_source`], but with [`OnBadFile::Skip`] leaves
    /// out Parquet files that cannot be opened and returns them with their errors.
    pub fn open_source_skipping(&self) -> Result<(Arc<dyn Source>, SkippedFiles)> {
        self.open_paths(&self.data, self.on_bad_file)
    }

    /// Opens the validation data (`valid`), when given, with the training data's columns (the
    /// columns' `filter` selects training files only: validation files are used as given).
    pub fn open_valid(&self) -> Result<Option<Arc<dyn Source>>> {
        if self.valid.is_empty() {
            return Ok(None);
        }
        let columns = ColumnSpec {
            filter: None,
            ..self.columns.clone()
        };
        Ok(Some(
            self.open_with_columns(&self.valid, columns, OnBadFile::Error)?
                .0,
        ))
    }

    fn open_paths(
        &self,
        paths: &[PathBuf],
        on_bad_file: OnBadFile,
    ) -> Result<(Arc<dyn Source>, SkippedFiles)> {
        self.open_with_columns(paths, self.columns.clone(), on_bad_file)
    }

    fn open_with_columns(
        &self,
        paths: &[PathBuf],
        columns: ColumnSpec,
        on_bad_file: OnBadFile,
    ) -> Result<(Arc<dyn Source>, SkippedFiles)> {
        crate::data::source::open(
            paths,
            &OpenOptions {
                columns,
                verify_checksums: self.verify_checksums,
                on_bad_file,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TrainConfig {
        TrainConfig {
            data: vec![PathBuf::from("data")],
            ..TrainConfig::default()
        }
    }

    /// The option an invalid `config` is refused for.
    fn refused_field(config: &TrainConfig) -> &'static str {
        match config.check() {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_pass_the_check() {
        config().check().unwrap();
    }

    #[test]
    fn checkpoint_options_are_checked_up_front() {
        let mut c = config();
        c.checkpoint_dir = Some(PathBuf::from("ck"));
        c.checkpoint_every = Some(0);
        assert_eq!(refused_field(&c), "checkpoint_every");
        c.checkpoint_every = Some(10);
        c.check().unwrap();
        c.checkpoint_dir = None;
        assert_eq!(refused_field(&c), "checkpoint_every");

        let mut c = config();
        c.keep_checkpoints = 0;
        assert_eq!(refused_field(&c), "keep_checkpoints");

        let mut c = config();
        c.resume = Some(Resume::Auto);
        assert_eq!(refused_field(&c), "resume");
        c.checkpoint_dir = Some(PathBuf::from("ck"));
        c.check().unwrap();
        c.checkpoint_dir = None;
        c.resume = Some(Resume::Path(PathBuf::from("ck")));
        c.check().unwrap();
    }

    #[test]
    fn validation_options_are_checked_up_front() {
        let mut c = config();
        c.trainer.eval_every = Some(10);
        assert_eq!(refused_field(&c), "eval_every", "no validation data");
        c.valid = vec![PathBuf::from("v")];
        c.check().unwrap();
        c.trainer.eval_every = Some(0);
        assert_eq!(refused_field(&c), "eval_every");
        c.trainer.eval_every = None;
        c.valid_rows = Some(0);
        assert_eq!(refused_field(&c), "valid_rows");
        c.valid_rows = Some(5);
        c.check().unwrap();
        c.valid_fraction = Some(0.2);
        assert_eq!(refused_field(&c), "valid_fraction", "with «valid»");
        c.valid.clear();
        c.check().unwrap();
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            c.valid_fraction = Some(bad);
            assert_eq!(refused_field(&c), "valid_fraction", "{bad}");
        }
        c.valid_fraction = None;
        assert_eq!(refused_field(&c), "valid_rows", "no validation data");
        c.valid_rows = None;
        c.trainer.early_stop = Some(2);
        assert_eq!(refused_field(&c), "early_stop");
        c.valid_fraction = Some(0.1);
        c.check().unwrap();
    }

    #[test]
    fn a_log_plot_needs_a_plot() {
        let mut c = config();
        c.outputs.plot_log = true;
        assert_eq!(refused_field(&c), "plot_log");
        c.outputs.plot = Some(PathBuf::from("loss.svg"));
        c.check().unwrap();
    }

    #[test]
    fn classes_from_the_data_are_checked_once_counted() {
        let mut c = config();
        c.trainer.model = ModelSpec::softmax(0);
        assert_eq!(refused_field(&c), "classes", "a given K of 0 is refused");
        c.classes = Origin::FromData;
        assert!(c.needs_class_count());
        c.check().unwrap();
        c.set_classes(1);
        assert_eq!(c.classes, Origin::Given);
        assert_eq!(c.trainer.model, ModelSpec::softmax(1));
        assert_eq!(refused_field(&c), "classes", "a counted K of 1 is refused");
        c.set_classes(3);
        c.check().unwrap();

        let mut binary = config();
        binary.classes = Origin::FromData;
        assert!(
            !binary.needs_class_count(),
            "only a multiclass head counts its classes"
        );
    }

    #[test]
    fn a_step_size_from_the_data_is_one_epoch() {
        let mut c = config();
        c.trainer.optimizer.schedule = LrSchedule::Step {
            every: 0,
            gamma: 0.5,
        };
        assert_eq!(refused_field(&c), "lr_step_size");
        c.lr_step_size = Origin::FromData;
        c.check().unwrap();
        c.set_epoch_steps(40);
        assert_eq!(c.lr_step_size, Origin::Given);
        assert_eq!(
            c.trainer.optimizer.schedule,
            LrSchedule::Step {
                every: 40,
                gamma: 0.5
            }
        );
        // An epoch of no full step still decays: every step.
        c.lr_step_size = Origin::FromData;
        c.set_epoch_steps(0);
        assert!(matches!(
            c.trainer.optimizer.schedule,
            LrSchedule::Step { every: 1, .. }
        ));
    }

    #[test]
    fn shuffle_reaches_the_pipeline() {
        let mut c = config();
        assert_eq!(c.pipeline_config(100).shuffle, Shuffle::Seeded(0));
        c.shuffle = Shuffle::Off;
        assert_eq!(c.pipeline_config(100).shuffle, Shuffle::Off);
        c.shuffle = Shuffle::Seeded(7);
        assert_eq!(c.pipeline_config(100).shuffle, Shuffle::Seeded(7));
    }
}
