//! A file whose data fails mid-epoch under `OnBadFile::Skip`: dropped from the failing unit's
//! plan position on (the rows delivered before the failure stay), left out of later epochs,
//! the same batches for any reader count, and exact resume from any checkpoint around it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::tests::{RowIds, linear_row};
use crate::data::Schema;
use crate::data::source::{ChunkSink, OnBadFile, Source, SourceInfo, Unit};
use crate::error::{Error, Result};
use crate::model::ModelSpec;
use crate::pipeline::{LastBatch, Pipeline, PipelineConfig, Shuffle};
use crate::train::{Checkpoint, CheckpointConfig, Eval, TrainResult, TrainerConfig, train};

/// Rows of the failing unit delivered before its failure: two of the source's 64-row blocks.
const DELIVERED: u64 = 128;

/// Three files of four 250-row units each (3,000 rows, 2 features); unit `poisoned` (file 1)
/// fails after [`DELIVERED`] rows, every time it is read.
struct PoisonedSource {
    units: Vec<Unit>,
    schema: Schema,
    files: Vec<PathBuf>,
    poisoned: usize,
}

impl PoisonedSource {
    fn new(dir: &std::path::Path, poisoned: usize) -> Self {
        let files: Vec<PathBuf> = (0..3).map(|f| dir.join(format!("f{f}.bin"))).collect();
        for (f, file) in files.iter().enumerate() {
            std::fs::write(file, format!("file {f}")).expect("write");
        }
        let units = (0..12)
            .map(|u| Unit {
                file: u / 4,
                index_in_file: u % 4,
                num_rows: 250,
                first_row_id: u as u64 * 250,
            })
            .collect();
        PoisonedSource {
            units,
            schema: Schema {
                feature_names: vec!["x0".into(), "x1".into()],
                label: "y".into(),
            },
            files,
            poisoned,
        }
    }

    /// Rows of the poisoned unit's file.
    fn poisoned_file_rows(&self) -> BTreeSet<u64> {
        let file = self.units[self.poisoned].file;
        self.units
            .iter()
            .filter(|u| u.file == file)
            .flat_map(|u| u.first_row_id..u.first_row_id + u.num_rows)
            .collect()
    }
}

impl Source for PoisonedSource {
    fn units(&self) -> &[Unit] {
        &self.units
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn read_unit(
        &self,
        unit: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        let u = self.units[unit];
        let mut done = 0;
        while done < u.num_rows {
            if unit == self.poisoned && done == DELIVERED {
                return Err(Error::Corrupt {
                    file: self.files[u.file].clone(),
                    row_group: Some(u.index_in_file),
                    reason: "a page that does not decode".into(),
                });
            }
            let n = (u.num_rows - done).min(max_block_rows.min(64) as u64);
            let mut block = sink.empty_block();
            block.reset(2);
            for id in u.first_row_id + done..u.first_row_id + done + n {
                let (x, y) = linear_row(id);
                block.push_row(&x, y, id);
            }
            done += n;
            if sink.send(block).is_break() {
                return Ok(());
            }
        }
        Ok(())
    }

    fn file_bytes(&self) -> u64 {
        0
    }

    fn describe(&self) -> SourceInfo {
        SourceInfo {
            format: "in-memory",
            unit_kind: "unit",
            columns: Vec::new(),
            codecs: Vec::new(),
        }
    }
}

fn pipeline(source: &Arc<dyn Source>, readers: usize, last_batch: LastBatch) -> Pipeline {
    Pipeline::new(
        source.clone(),
        PipelineConfig {
            step_rows: 40,
            last_batch,
            shuffle: Shuffle::Seeded(5),
            shuffle_buffer_rows: 300,
            num_readers: readers,
            on_bad_file: OnBadFile::Skip,
            ..PipelineConfig::default()
        },
    )
}

fn config(epochs: usize) -> TrainerConfig {
    let mut config = TrainerConfig {
        model: ModelSpec::linear(),
        epochs,
        num_threads: 1,
        // The evaluation passes leave dropped files out too.
        eval: Eval::EveryEpoch,
        ..TrainerConfig::default()
    };
    config.optimizer.learning_rate = 0.05;
    config
}

fn run(source: &Arc<dyn Source>, readers: usize, config: &TrainerConfig) -> (TrainResult, RowIds) {
    let mut ids = RowIds::default();
    let result = train(
        &pipeline(source, readers, LastBatch::Keep),
        config,
        &mut ids,
    )
    .expect("train");
    (result, ids)
}

#[test]
fn a_file_failing_mid_epoch_is_dropped_from_there_on_whatever_the_reader_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let poisoned = PoisonedSource::new(dir.path(), 6);
    let file_rows = poisoned.poisoned_file_rows();
    let source: Arc<dyn Source> = Arc::new(poisoned);
    // Where the poisoned unit and its file's other units are in epoch 0's plan.
    let plan = pipeline(&source, 1, LastBatch::Keep).plan(0);
    let at = plan.iter().position(|&u| u == 6).expect("in the plan");
    let kept: BTreeSet<u64> = plan[..at]
        .iter()
        .filter(|&&u| u / 4 == 1)
        .flat_map(|&u| u as u64 * 250..(u as u64 + 1) * 250)
        .chain(6 * 250..6 * 250 + DELIVERED)
        .collect();
    let skipped = file_rows.len() as u64 - kept.len() as u64;
    assert!(skipped > 0 && skipped < 1_000);

    let (reference, ids) = run(&source, 1, &config(3));
    for readers in [2, 3, 5] {
        let (result, other) = run(&source, readers, &config(3));
        assert_eq!(result.params, reference.params, "{readers} readers");
        assert_eq!(other.0, ids.0, "{readers} readers: the same batches");
    }
    // Epoch 1: every row once but the skipped ones, which are exactly the file's rows after
    // the failure in plan order.
    let first: BTreeSet<u64> = ids.0[0].iter().copied().collect();
    assert_eq!(first.len(), ids.0[0].len(), "no row twice");
    let expected: BTreeSet<u64> = (0..3_000)
        .filter(|id| !file_rows.contains(id) || kept.contains(id))
        .collect();
    assert_eq!(first, expected);
    let summary = &reference.epochs[0];
    assert_eq!(summary.rows, 3_000 - skipped);
    assert_eq!(summary.rows_skipped, skipped);
    assert_eq!(summary.iterations, (3_000 - skipped).div_ceil(40));
    assert_eq!(summary.files_dropped.len(), 1);
    let drop = &summary.files_dropped[0];
    assert_eq!(
        (
            drop.file,
            drop.row_group,
            drop.rows_delivered,
            drop.position
        ),
        (1, 2, DELIVERED, at)
    );
    assert!(drop.error.contains("does not decode"), "{}", drop.error);
    // Later epochs leave the file out, and their evaluation passes too.
    for epoch in 1..3 {
        let rows: BTreeSet<u64> = ids.0[epoch].iter().copied().collect();
        let expected: BTreeSet<u64> = (0..3_000).filter(|id| !file_rows.contains(id)).collect();
        assert_eq!(rows, expected, "epoch {}", epoch + 1);
        let summary = &reference.epochs[epoch];
        assert_eq!(summary.rows, 2_000);
        assert_eq!(summary.rows_skipped, 0);
        assert_eq!(summary.iterations, 50);
        assert!(summary.full_loss.is_some_and(f64::is_finite));
    }
}

#[test]
fn without_skip_the_failure_stops_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source: Arc<dyn Source> = Arc::new(PoisonedSource::new(dir.path(), 6));
    let mut config = pipeline(&source, 2, LastBatch::Keep).config().clone();
    config.on_bad_file = OnBadFile::Error;
    let err = train(&Pipeline::new(source, config), &self::config(2), &mut ())
        .expect_err("the corrupt unit stops the run");
    assert!(err.to_string().contains("does not decode"), "{err}");
}

#[test]
fn with_drop_last_the_epoch_has_the_whole_steps_of_the_rows_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source: Arc<dyn Source> = Arc::new(PoisonedSource::new(dir.path(), 6));
    let pipeline = pipeline(&source, 3, LastBatch::Drop);
    let result = train(&pipeline, &config(2), &mut ()).expect("train");
    let skipped = result.epochs[0].rows_skipped;
    assert!(skipped > 0);
    assert_eq!(result.epochs[0].iterations, (3_000 - skipped) / 40);
    assert_eq!(result.epochs[0].rows, (3_000 - skipped) / 40 * 40);
    assert_eq!(result.epochs[1].iterations, 2_000 / 40);
}

#[test]
fn resuming_from_any_checkpoint_around_a_dropped_file_matches_the_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source: Arc<dyn Source> = Arc::new(PoisonedSource::new(dir.path(), 6));
    let checkpoints = dir.path().join("checkpoints");
    let mut config = config(3);
    config.eval = Eval::Off;
    let mut full = config.clone();
    full.checkpoint = Some(CheckpointConfig {
        dir: checkpoints.clone(),
        every_steps: Some(7),
        keep: 1_000,
    });
    let (reference, _) = run(&source, 2, &full);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&checkpoints)
        .expect("checkpoints")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sfck"))
        .collect();
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    for file in &files {
        let checkpoint = Checkpoint::load(file).expect("load");
        if checkpoint.next_epoch > 0 {
            assert_eq!(checkpoint.files_dropped.len(), 1, "{}", file.display());
        }
        let mut resumed = config.clone();
        resumed.resume = Some(Box::new(checkpoint));
        for readers in [1, 3] {
            let (result, _) = run(&source, readers, &resumed);
            assert_eq!(
                result.params,
                reference.params,
                "from {} with {readers} readers",
                file.display()
            );
        }
    }
}
