//! Preparing a run: from checked options to opened data, resolved settings, pipelines and
//! writable outputs, before any thread of the trainer starts.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::comm::Collective;
use crate::config::{Outputs, Resume, TrainConfig};
use crate::data::source::Source;
use crate::data::source::parquet::SkippedFiles;
use crate::error::{Error, Result};
use crate::inspect::dataset_stats;
use crate::output_path::{InputSet, WriteMode, check_writable};
use crate::pipeline::{Pipeline, Shuffle};
use crate::plot::LossCurves;
use crate::train::{Checkpoint, CheckpointConfig, CheckpointLock, MetricsWriter, eval_config};

use super::event::{Events, PrepareEvent};
use super::fit::{adopt_stored, fit_preprocessing};
use super::memory;
use super::missing::{check_positive_label_seen, count_dropped_labels};
use super::scale_check::{decide_standardize, encoded_features, resolve_standardization};
use super::subset::SubsetSource;
use super::weighting::{hold_out_weight, resolve_weights};

/// A run whose options are checked, data opened and settings resolved, ready to train.
pub struct PreparedRun<'c> {
    /// The options with everything resolved: K, the step size, rank and world, and the
    /// trainer's standardisation, checkpoint and resume settings.
    pub(super) config: TrainConfig,
    pub(super) comm: &'c dyn Collective,
    pub(super) source: Arc<dyn Source>,
    pub(super) valid_source: Option<Arc<dyn Source>>,
    /// Rows of the validation data before «valid_rows» cut it.
    pub(super) valid_total_rows: Option<u64>,
    pub(super) skipped: SkippedFiles,
    pub(super) pipeline: Pipeline,
    pub(super) valid_pipeline: Option<Pipeline>,
    pub(super) budget_bytes: u64,
    /// Local files are read explicitly, not through their maps (`read_mode`).
    pub(super) reads_explicitly: bool,
    /// Rank 0's hold on the checkpoint directory, from before the checkpoint to resume from
    /// is chosen until the run ends.
    pub(super) _checkpoint_lock: Option<CheckpointLock>,
    pub(super) events: Vec<PrepareEvent>,
    pub(super) metrics: Option<MetricsWriter>,
    /// Collected for `outputs.plot`.
    pub(super) curves: Option<LossCurves>,
}

impl<'c> PreparedRun<'c> {
    /// Prepares `config` for this process of `comm`'s job; see the module docs. The events
    /// are kept ([`PreparedRun::events`]).
    pub fn new(config: TrainConfig, comm: &'c dyn Collective) -> Result<Self> {
        Self::with_events(config, comm, &mut |_| {})
    }

    /// Prepares like [`PreparedRun::new`], handing each event to `on_event` as it happens
    /// (a pass over the data can take a while).
    pub fn with_events(
        mut config: TrainConfig,
        comm: &'c dyn Collective,
        on_event: &mut dyn FnMut(&PrepareEvent),
    ) -> Result<Self> {
        let mut events = Events {
            seen: Vec::new(),
            on_event,
        };
        config.rank = comm.rank();
        config.world = comm.size();
        if comm.rank() != 0 {
            // Rank 0 alone writes files.
            config.outputs = Outputs::default();
        }
        config.check()?;
        let weight = hold_out_weight(&mut config)?;
        fit_preprocessing(&mut config, &mut |event| events.push(event))?;
        let (mut source, mut skipped) = config.open_source_skipping()?;
        adopt_stored(&mut config, &source)?;
        let decision = decide_standardize(&config, &source);
        if !decision.centre.is_empty() && source.stored_preprocessing().is_none() {
            // Large-magnitude columns are centred as they are decoded, before the f32 cast
            // (stored rows were centred by `convert`).
            config.columns.centre = decision.centre.clone();
            (source, skipped) = config.open_source_skipping()?;
        }
        if let Some(dropped) = count_dropped_labels(&config, &source)? {
            events.push(dropped);
        }
        check_positive_label_seen(&config, &source)?;
        let valid_source = config.open_valid()?;
        check_outputs(&config, comm, &source, valid_source.as_ref(), &skipped)?;
        // Classes are counted over every row, held-out ones too: their labels must be ids.
        if let Some(counted) = count_classes(&mut config, &source)? {
            events.push(counted);
        }
        if let Some(weighted) = resolve_weights(&mut config, &source, weight)? {
            events.push(weighted);
        }
        if config.columns.weight.is_some() {
            // The training data alone carries each row's weight.
            (source, skipped) = config.open_source_skipping()?;
        }
        config.check()?;
        for (path, error) in &skipped {
            events.push(PrepareEvent::FileSkipped {
                path: path.clone(),
                error: error.clone(),
            });
        }
        let Split {
            source,
            valid: valid_source,
            valid_total_rows,
        } = split_validation(&mut config, source, valid_source)?;
        let budget = |c: &TrainConfig| c.memory_budget_with_valid(&source, valid_source.as_ref());
        let available = memory::available();
        if let Some(fitted) = memory::fit(&mut config, &source, available.clone(), &budget)? {
            events.push(PrepareEvent::MemoryFitted(fitted));
        }
        let budget_bytes = budget(&config);
        let sources: Vec<_> = std::iter::once(&source).chain(&valid_source).collect();
        let reads_explicitly =
            memory::apply_read_mode(config.read_mode, &sources, budget_bytes, available.as_ref());
        config.trainer.standardize = None;
        if let Some(mixed) = decision.mixed {
            events.push(mixed);
        }
        if decision.standardize {
            let encoded = encoded_features(&config);
            let (mut standardization, event) =
                resolve_standardization(&source, config.num_readers, &encoded)?;
            standardization.centre = decision.centre;
            config.trainer.standardize = Some(standardization);
            events.push(event);
        }
        config.trainer.checkpoint = config.checkpoint_dir.clone().map(|dir| CheckpointConfig {
            dir,
            every_steps: config.checkpoint_every,
            keep: config.keep_checkpoints,
        });
        let checkpoint_lock = match &config.checkpoint_dir {
            Some(dir) if comm.rank() == 0 => Some(CheckpointLock::acquire(dir)?),
            _ => None,
        };
        config.trainer.resume = load_resume(&config, comm, &mut events)?.map(Box::new);
        let pipeline = Pipeline::new(source.clone(), config.pipeline_config(source.num_rows()));
        config.set_epoch_steps(pipeline.steps_in_epoch(0));
        let valid_pipeline = valid_source
            .as_ref()
            .map(|v| Pipeline::new(v.clone(), eval_config(pipeline.config(), v)));
        if pipeline.steps_per_epoch() == 0 {
            return Err(Error::config(
                "batch_size",
                format!(
                    "with «drop_last», a batch of {} rows leaves no full batch in {} rows",
                    pipeline.config().step_rows,
                    source.num_rows()
                ),
            ));
        }
        let outputs = &config.outputs;
        let metrics = outputs
            .metrics
            .as_deref()
            .map(MetricsWriter::create)
            .transpose()?;
        let curves = outputs.plot.as_ref().map(|_| LossCurves::default());
        Ok(PreparedRun {
            config,
            comm,
            source,
            valid_source,
            valid_total_rows,
            skipped,
            pipeline,
            valid_pipeline,
            budget_bytes,
            reads_explicitly,
            _checkpoint_lock: checkpoint_lock,
            events: events.seen,
            metrics,
            curves,
        })
    }

    /// The options, resolved: what the run will train with.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The training data (without the units held out by «valid_fraction»).
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// The validation data, when given or held out (its first «valid_rows» rows only, when
    /// set).
    pub fn valid_source(&self) -> Option<&Arc<dyn Source>> {
        self.valid_source.as_ref()
    }

    /// Rows of the validation data before «valid_rows» cut it to its first rows.
    pub fn valid_total_rows(&self) -> Option<u64> {
        self.valid_total_rows
    }

    /// Files of the training data left out as unreadable, with their errors.
    pub fn skipped_files(&self) -> &SkippedFiles {
        &self.skipped
    }

    /// The training pipeline (this rank's share in a data-parallel run).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Resident-memory budget of the run ([`TrainConfig::memory_budget_bytes`]).
    pub fn memory_budget_bytes(&self) -> u64 {
        self.budget_bytes
    }

    /// True when local files are read by explicit reads that drop their pages behind the
    /// readers, false when through their maps ([`ReadMode`](crate::data::ReadMode)).
    pub fn reads_explicitly(&self) -> bool {
        self.reads_explicitly
    }

    /// Rows the shuffle buffer holds: its size, or the dataset when smaller; 0 unshuffled.
    pub fn shuffle_rows(&self) -> u64 {
        match self.config.shuffle {
            Shuffle::Seeded(_) => self
                .config
                .shuffle_buffer_rows
                .min(self.source.num_rows() as usize) as u64,
            Shuffle::Off => 0,
        }
    }

    /// The checkpoint the run continues from, if any.
    pub fn resume(&self) -> Option<&Checkpoint> {
        self.config.trainer.resume.as_deref()
    }

    /// What preparing found, in order.
    pub fn events(&self) -> &[PrepareEvent] {
        &self.events
    }
}

/// The data a run trains and validates on.
struct Split {
    source: Arc<dyn Source>,
    valid: Option<Arc<dyn Source>>,
    /// Rows of the validation data before «valid_rows» cut it.
    valid_total_rows: Option<u64>,
}

/// The training and validation data of the run: `source` less the units held out by
/// «valid_fraction» (recorded in the trainer's settings), and `valid` or those units, cut to
/// their first «valid_rows» rows when set (with the validation rows before the cut).
fn split_validation(
    config: &mut TrainConfig,
    source: Arc<dyn Source>,
    valid: Option<Arc<dyn Source>>,
) -> Result<Split> {
    let (source, valid) = match config.valid_fraction {
        Some(fraction) => {
            let (train, held, record) =
                SubsetSource::hold_out(&source, fraction, config.trainer.init_seed)?;
            config.trainer.held_out = Some(record);
            let train: Arc<dyn Source> = Arc::new(train);
            let held: Arc<dyn Source> = Arc::new(held);
            (train, Some(held))
        }
        None => {
            config.trainer.held_out = None;
            (source, valid)
        }
    };
    let total = valid.as_ref().map(|v| v.num_rows());
    let valid = match (valid, config.valid_rows) {
        (Some(v), Some(rows)) => {
            Some(Arc::new(SubsetSource::first_rows(&v, rows)) as Arc<dyn Source>)
        }
        (v, _) => v,
    };
    Ok(Split {
        source,
        valid,
        valid_total_rows: total,
    })
}

/// When `config` needs its classes counted ([`TrainConfig::needs_class_count`]): K = the
/// largest label of `source` + 1, found by one streamed pass, set in the model's head.
/// Returns what it found.
pub fn count_classes(
    config: &mut TrainConfig,
    source: &Arc<dyn Source>,
) -> Result<Option<PrepareEvent>> {
    if !config.needs_class_count() {
        return Ok(None);
    }
    let started = Instant::now();
    let stats = dataset_stats(source.clone(), config.num_readers)?;
    let max = stats.label.max;
    if !(max.is_finite() && max >= 0.0 && max.fract() == 0.0 && max < 1e6) {
        return Err(Error::config(
            "classes",
            format!("the largest label is {max}, not a class id; multiclass labels are 0..K-1"),
        ));
    }
    let classes = max as usize + 1;
    config.set_classes(classes);
    Ok(Some(PrepareEvent::ClassesCounted {
        classes,
        largest_label: max,
        rows: stats.rows,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// Refuses a checkpoint directory that holds checkpoints of another run, and loads the
/// checkpoint to resume from, if any.
fn load_resume(
    config: &TrainConfig,
    comm: &dyn Collective,
    events: &mut Events<'_>,
) -> Result<Option<Checkpoint>> {
    if let (Some(dir), None) = (&config.checkpoint_dir, &config.resume)
        && Checkpoint::exists_in(dir)?
    {
        return Err(Error::config(
            "checkpoint_dir",
            format!(
                "{} already holds checkpoints; continue that run with «resume» auto, or use an empty directory",
                dir.display()
            ),
        ));
    }
    let dir = match (&config.resume, &config.checkpoint_dir) {
        (None, _) => return Ok(None),
        (Some(Resume::Auto), Some(dir)) if !Checkpoint::exists_in(dir)? => return Ok(None),
        (Some(Resume::Auto), Some(dir)) => dir,
        (Some(Resume::Auto), None) => {
            return Err(Error::config("resume", "`auto` needs «checkpoint_dir»"));
        }
        (Some(Resume::Path(dir)), _) => dir,
    };
    let (checkpoint, path, warnings) = Checkpoint::load_latest(dir)?;
    for warning in warnings {
        events.push(PrepareEvent::CheckpointSkipped { warning });
    }
    // Newer files were skipped as corrupt: set them aside (rank 0 does it in a data-parallel
    // run; it alone writes checkpoints).
    let newer = if comm.rank() == 0 {
        Checkpoint::corrupt_newer_than(dir, checkpoint.iteration)?
    } else {
        Vec::new()
    };
    for newer in newer {
        let aside = newer.with_extension("sfck.corrupt");
        if std::fs::rename(&newer, &aside).is_ok() {
            events.push(PrepareEvent::CheckpointMovedAside {
                from: newer,
                to: aside,
            });
        }
    }
    events.push(PrepareEvent::Resuming {
        path,
        iteration: checkpoint.iteration,
        epoch: checkpoint.next_epoch as usize + 1,
    });
    Ok(Some(checkpoint))
}

/// Refuses, before anything is read or written, an output of the run that is one of its
/// input files (training or validation data, files left out as unreadable) or lies inside a
/// shard dataset it reads, an output that is a directory, and an output (or checkpoint)
/// directory that does not take new files: a mistake fails at once, not after training, and
/// never destroys the data.
fn check_outputs(
    config: &TrainConfig,
    comm: &dyn Collective,
    source: &Arc<dyn Source>,
    valid_source: Option<&Arc<dyn Source>>,
    skipped: &SkippedFiles,
) -> Result<()> {
    let mut inputs = InputSet::new();
    inputs.add_dataset(source.as_ref(), &config.data);
    if let Some(valid) = valid_source {
        inputs.add_dataset(valid.as_ref(), &config.valid);
    }
    for (path, _) in skipped {
        inputs.add_file(path);
    }
    let outputs = &config.outputs;
    for (field, path, mode) in [
        ("save_model", &outputs.save_model, WriteMode::Replace),
        ("report", &outputs.report, WriteMode::Replace),
        ("plot", &outputs.plot, WriteMode::Replace),
        ("metrics", &outputs.metrics, WriteMode::Truncate),
        ("trace", &outputs.trace, WriteMode::Truncate),
    ] {
        if let Some(path) = path {
            inputs.check_file(field, path, mode)?;
        }
    }
    // Rank 0 alone writes checkpoints.
    if let (0, Some(dir)) = (comm.rank(), &config.checkpoint_dir) {
        inputs.check_dir("checkpoint_dir", dir)?;
    }
    Ok(())
}

/// Errors unless `path`'s directory exists and takes new files, so a typo or a read-only
/// directory fails before a long run, not after ([`check_writable`]).
pub fn check_output_dir(path: &Path) -> Result<()> {
    check_writable(path)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::comm::SingleProcess;
    use crate::config::Origin;
    use crate::generate::{GenerateConfig, Task, generate};
    use crate::model::{Head, ModelSpec};

    /// 2,000 rows × 3 features, labels 0..3, in 2 files of 500-row row groups.
    fn dataset(dir: &Path) -> PathBuf {
        let out = dir.join("data");
        generate(
            &GenerateConfig {
                task: Task::Multiclass,
                classes: 3,
                rows: 2_000,
                features: 3,
                shards: 2,
                row_group_rows: 500,
                out: out.clone(),
                ..GenerateConfig::default()
            },
            &|_| {},
        )
        .expect("generate");
        out
    }

    fn config(data: PathBuf) -> TrainConfig {
        let mut config = TrainConfig {
            data: vec![data],
            batch_size: crate::train::BatchSize::Rows(100),
            ..TrainConfig::default()
        };
        config.trainer.model = ModelSpec::softmax(0);
        config.trainer.num_threads = 1;
        config.classes = Origin::FromData;
        config
    }

    fn prepare(config: TrainConfig) -> Result<PreparedRun<'static>> {
        PreparedRun::new(config, &SingleProcess)
    }

    #[test]
    fn classes_are_counted_and_standardisation_computed_as_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dataset(dir.path()));
        config.standardize = crate::train::Standardize::Always;
        let mut heard = Vec::new();
        let run = PreparedRun::with_events(config, &SingleProcess, &mut |e| heard.push(e.clone()))
            .unwrap();
        assert_eq!(run.events(), heard.as_slice(), "kept as heard");
        assert!(matches!(
            heard[0],
            PrepareEvent::ClassesCounted {
                classes: 3,
                rows: 2_000,
                ..
            }
        ));
        assert!(matches!(
            heard[1],
            PrepareEvent::Standardized {
                num_features: 3,
                rows: 2_000,
                ..
            }
        ));
        assert_eq!(run.config().trainer.model.head, Head::Multiclass(3));
        assert_eq!(run.config().classes, Origin::Given);
        assert!(run.config().trainer.standardize.is_some());
        assert!(run.resume().is_none());
        assert!(heard.iter().all(|e| !e.is_warning()));
    }

    #[test]
    fn a_label_that_is_no_class_id_is_refused_when_counting() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("data");
        generate(
            &GenerateConfig {
                task: Task::Linear,
                rows: 500,
                features: 2,
                shards: 1,
                out: out.clone(),
                ..GenerateConfig::default()
            },
            &|_| {},
        )
        .unwrap();
        match prepare(config(out)) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "classes"),
            other => panic!("expected a classes error, got {:?}", other.err()),
        }
    }

    #[test]
    fn a_checkpoint_directory_of_another_run_is_refused_and_auto_resumes_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let ck = dir.path().join("ck");
        let with_checkpoints = |resume: Option<Resume>| {
            let mut config = config(data.clone());
            config.checkpoint_dir = Some(ck.clone());
            config.resume = resume;
            config
        };
        // A fresh directory: `auto` starts from scratch.
        let mut run = prepare(with_checkpoints(Some(Resume::Auto))).unwrap();
        assert!(run.resume().is_none());
        run.train(&mut ()).unwrap();
        assert!(Checkpoint::exists_in(&ck).unwrap());

        match prepare(with_checkpoints(None)) {
            Err(Error::Config { field, reason }) => {
                assert_eq!(field, "checkpoint_dir");
                assert!(reason.contains("«resume» auto"), "{reason}");
            }
            other => panic!("expected a checkpoint_dir error, got {:?}", other.err()),
        }

        // A corrupt newer file is skipped, moved aside, and the run resumes from the last good one.
        let corrupt = ck.join("ckpt-000000009999.sfck");
        std::fs::write(&corrupt, "garbage").unwrap();
        let run = prepare(with_checkpoints(Some(Resume::Auto))).unwrap();
        let events = run.events();
        assert!(matches!(events[0], PrepareEvent::ClassesCounted { .. }));
        assert!(matches!(events[1], PrepareEvent::CheckpointSkipped { .. }));
        assert_eq!(
            events[2],
            PrepareEvent::CheckpointMovedAside {
                from: corrupt.clone(),
                to: corrupt.with_extension("sfck.corrupt"),
            }
        );
        assert!(matches!(
            events[3],
            PrepareEvent::Resuming {
                iteration: 20,
                epoch: 2,
                ..
            }
        ));
        assert!(!corrupt.exists());
        assert_eq!(run.resume().map(|c| c.iteration), Some(20));
    }

    #[test]
    fn an_unwritable_output_fails_before_training() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dataset(dir.path()));
        config.outputs.report = Some(dir.path().join("missing").join("report.json"));
        match prepare(config) {
            Err(e @ Error::Output { .. }) => assert!(!e.is_input_error()),
            other => panic!("expected an output error, got {:?}", other.err()),
        }
    }

    #[test]
    fn a_trained_run_writes_every_output_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dataset(dir.path()));
        let out = |name: &str| Some(dir.path().join(name));
        config.outputs = Outputs {
            save_model: out("model.json"),
            report: out("report.json"),
            metrics: out("metrics.jsonl"),
            plot: out("loss.svg"),
            ..Outputs::default()
        };
        let mut run = prepare(config).unwrap();
        let result = run.train(&mut ()).unwrap();
        let report = run.report(&result, None);
        assert_eq!((report.rows, report.iterations), (2_000, 20));
        run.write_outputs(&result, &report).unwrap();
        let model = crate::train::ModelFile::load(&dir.path().join("model.json")).unwrap();
        assert_eq!(model.parameters(), result.params);
        let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(
            metrics.lines().count(),
            20 + 1,
            "a line per iteration and per epoch"
        );
        assert!(dir.path().join("report.json").is_file());
        assert!(dir.path().join("loss.svg").is_file());
    }

    /// Rank 1 of a world of 2 (no collective is used while preparing).
    struct SecondRank;

    impl Collective for SecondRank {
        fn rank(&self) -> usize {
            1
        }
        fn size(&self) -> usize {
            2
        }
        fn sum_in_place(&self, _values: &mut [f64]) {}
        fn all_equal(&self, _value: u64) -> bool {
            true
        }
        fn abort(&self, _code: i32) {}
    }

    #[test]
    fn only_rank_0_writes_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dataset(dir.path()));
        config.outputs.report = Some(dir.path().join("missing").join("report.json"));
        let run = PreparedRun::new(config, &SecondRank).unwrap();
        assert_eq!(run.config().outputs, Outputs::default());
        assert_eq!((run.config().rank, run.config().world), (1, 2));
        assert_eq!(run.pipeline().config().step_rows, 50, "half of each step");
    }
}
