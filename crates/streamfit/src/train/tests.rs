//! The trainer on batch streams other than one process's pipeline: a hand-made stream of
//! batches in memory ([`train_stream`] takes any [`BatchSource`], so a caller with no files
//! and no pipeline trains through the public API), and the ranks of a data-parallel run as
//! threads of one process (each rank's pipeline a [`RankShare`](crate::pipeline::RankShare)),
//! so the data-parallel path is tested without MPI.

use std::path::PathBuf;
use std::sync::Arc;

use crate::data::source::{ChunkSink, Source, SourceInfo, Unit};
use crate::data::{RowBlock, Schema};
use crate::error::{Error, Result};
use crate::model::ModelSpec;
use crate::pipeline::{Batch, BatchSource, EpochBatches, Pipeline, PipelineConfig, Shuffle};
use crate::train::{
    Checkpoint, CheckpointConfig, Eval, StepRecord, TrainObserver, TrainResult, TrainerConfig,
    train_ranks, train_stream,
};

/// A hand-made stream: the same steps, one batch each, in the same order every epoch.
struct InMemory {
    schema: Schema,
    steps: Vec<RowBlock>,
}

impl BatchSource for InMemory {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn num_rows(&self) -> u64 {
        self.steps.iter().map(|b| b.num_rows() as u64).sum()
    }

    fn steps_in_epoch(&self, _epoch: u64) -> u64 {
        self.steps.len() as u64
    }

    fn start_epoch(&self, _epoch: u64) -> Result<Box<dyn EpochBatches + '_>> {
        let batches: Vec<Result<Batch>> = self
            .steps
            .iter()
            .enumerate()
            .map(|(step, rows)| Ok(Batch::new(rows.clone(), step as u64, true)))
            .collect();
        Ok(Box::new(batches.into_iter()))
    }
}

/// 64 rows on an 8 × 8 grid of (x0, x1) in [−1, 0.75]², with the exact target
/// y = 2·x0 − 3·x1 + 0.5, in 4 steps of 16 rows.
fn grid_stream() -> InMemory {
    let mut steps = Vec::new();
    for step in 0..4u64 {
        let mut rows = RowBlock::with_capacity(2, 16);
        for id in step * 16..(step + 1) * 16 {
            let x0 = (id % 8) as f32 / 4.0 - 1.0;
            let x1 = (id / 8) as f32 / 4.0 - 1.0;
            rows.push_row(&[x0, x1], 2.0 * x0 - 3.0 * x1 + 0.5, id);
        }
        steps.push(rows);
    }
    InMemory {
        schema: Schema {
            feature_names: vec!["x0".into(), "x1".into()],
            label: "y".into(),
        },
        steps,
    }
}

fn config(epochs: usize) -> TrainerConfig {
    let mut config = TrainerConfig {
        model: ModelSpec::linear(),
        epochs,
        num_threads: 1,
        ..TrainerConfig::default()
    };
    config.optimizer.learning_rate = 0.1;
    config
}

/// Counts the steps it is shown.
#[derive(Default)]
struct StepCounter(u64);

impl TrainObserver for StepCounter {
    fn on_step(&mut self, step: &StepRecord) -> Result<()> {
        assert_eq!(step.rows, 16);
        self.0 += 1;
        Ok(())
    }
}

#[test]
fn a_hand_made_stream_trains_a_linear_model_to_its_exact_weights() {
    let stream = grid_stream();
    let mut steps = StepCounter::default();
    let mut config = config(150);
    config.eval = Eval::EveryEpoch;
    let result = train_stream(&stream, None, &config, &mut steps).expect("train");
    // The grid spans the plane and the target has no noise, so the least-squares solution is
    // the generating weights [2, −3] and bias 0.5.
    let expected = [2.0f32, -3.0, 0.5];
    for (p, e) in result.params.iter().zip(expected) {
        assert!((p - e).abs() < 1e-3, "{:?} vs {expected:?}", result.params);
    }
    assert_eq!(steps.0, 600);
    assert_eq!(result.iterations(), 600);
    assert_eq!(result.iterations_per_epoch, 4);
    assert_eq!(result.rows_per_epoch, 64);
    // The evaluation pass (by default the stream's epoch 0) saw every row.
    let last = result.epochs.last().expect("epochs");
    assert!(last.rmse.expect("regression metrics") < 1e-3, "{last:?}");
    assert_eq!(last.rows, 64);
    // An in-memory stream neither waits nor queues.
    assert_eq!(last.stall_fraction, 0.0);
    assert_eq!(last.queue_occupancy, 0.0);
}

#[test]
fn a_hand_made_stream_trains_identically_twice() {
    let stream = grid_stream();
    let mut config = config(3);
    config.eval = Eval::Off;
    let a = train_stream(&stream, None, &config, &mut ()).expect("train");
    let b = train_stream(&stream, None, &config, &mut ()).expect("train");
    assert_eq!(a.params, b.params);
    assert_eq!(a.epochs[2].full_loss, None);
}

#[test]
fn checkpoints_need_a_stream_from_a_pipeline() {
    let stream = grid_stream();
    let mut config = config(1);
    config.checkpoint = Some(CheckpointConfig {
        dir: PathBuf::from("unused"),
        every_steps: Some(1),
        keep: 1,
    });
    let err = train_stream(&stream, None, &config, &mut ()).expect_err("refused");
    assert!(
        matches!(&err, Error::Config { field, .. } if *field == "checkpoint_dir"),
        "{err}"
    );
}

#[test]
fn a_bad_label_in_a_hand_made_stream_is_named_by_its_row_id() {
    let mut stream = grid_stream();
    // Targets 2·x0 − 3·x1 + 0.5 are no class ids of a 3-class head.
    let mut config = config(1);
    config.model = ModelSpec::softmax(3);
    stream.steps.truncate(1);
    let err = train_stream(&stream, None, &config, &mut ()).expect_err("refused");
    match err {
        Error::BadLabel {
            file, row, column, ..
        } => {
            assert_eq!(file, PathBuf::from("(batch stream)"));
            assert_eq!(row, 0);
            assert_eq!(column, "y");
        }
        other => panic!("{other}"),
    }
}

/// The ranks of a data-parallel run as threads of one process: each collective waits for
/// every rank and adds their values in rank order (so sums are deterministic).
mod threads {
    use std::sync::{Barrier, Mutex};

    use crate::comm::Collective;

    /// What the ranks share.
    pub struct Shared {
        barrier: Barrier,
        sums: Mutex<Vec<f64>>,
        values: Mutex<Vec<u64>>,
    }

    impl Shared {
        pub fn new(world: usize) -> Self {
            Shared {
                barrier: Barrier::new(world),
                sums: Mutex::new(Vec::new()),
                values: Mutex::new(Vec::new()),
            }
        }
    }

    /// One rank.
    pub struct ThreadRank<'a> {
        pub rank: usize,
        pub world: usize,
        pub shared: &'a Shared,
    }

    impl Collective for ThreadRank<'_> {
        fn rank(&self) -> usize {
            self.rank
        }

        fn size(&self) -> usize {
            self.world
        }

        fn sum_in_place(&self, values: &mut [f64]) {
            if self.rank == 0 {
                *self.shared.sums.lock().unwrap() = vec![0.0; values.len()];
            }
            self.shared.barrier.wait();
            for rank in 0..self.world {
                if rank == self.rank {
                    let mut sums = self.shared.sums.lock().unwrap();
                    sums.iter_mut()
                        .zip(values.iter())
                        .for_each(|(s, v)| *s += v);
                }
                self.shared.barrier.wait();
            }
            values.copy_from_slice(&self.shared.sums.lock().unwrap());
            self.shared.barrier.wait();
        }

        fn all_equal(&self, value: u64) -> bool {
            if self.rank == 0 {
                self.shared.values.lock().unwrap().clear();
            }
            self.shared.barrier.wait();
            self.shared.values.lock().unwrap().push(value);
            self.shared.barrier.wait();
            let equal = self
                .shared
                .values
                .lock()
                .unwrap()
                .iter()
                .all(|v| *v == value);
            self.shared.barrier.wait();
            equal
        }

        fn abort(&self, code: i32) {
            panic!("rank {} aborted the job with code {code}", self.rank);
        }
    }
}

/// An in-memory source of units of uneven sizes (300 rows each, the last 125), whose row
/// `id` is (x0, x1) = ((id mod 17)/8 − 1, (id mod 5)/2 − 1) with y = 2·x0 − 3·x1 + 0.5. Its
/// one "file" is a real file (a checkpoint records the data's identity).
struct UnevenSource {
    units: Vec<Unit>,
    schema: Schema,
    files: Vec<PathBuf>,
}

impl UnevenSource {
    fn new(file: PathBuf) -> Self {
        let mut units = Vec::new();
        let mut first_row_id = 0;
        for (i, num_rows) in [300, 300, 300, 300, 300, 300, 125].into_iter().enumerate() {
            units.push(Unit {
                file: 0,
                index_in_file: i,
                num_rows,
                first_row_id,
            });
            first_row_id += num_rows;
        }
        UnevenSource {
            units,
            schema: Schema {
                feature_names: vec!["x0".into(), "x1".into()],
                label: "y".into(),
            },
            files: vec![file],
        }
    }
}

impl Source for UnevenSource {
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
            let n = (u.num_rows - done).min(max_block_rows as u64);
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

/// Row `id` of the in-memory test sources: two features and an exactly linear target,
/// y = 2·x0 − 3·x1 + 0.5.
pub(super) fn linear_row(id: u64) -> ([f32; 2], f32) {
    let x0 = (id % 17) as f32 / 8.0 - 1.0;
    let x1 = (id % 5) as f32 / 2.0 - 1.0;
    ([x0, x1], 2.0 * x0 - 3.0 * x1 + 0.5)
}

/// Collects the row ids each epoch trains on.
#[derive(Default)]
pub(super) struct RowIds(pub(super) Vec<Vec<u64>>);

impl TrainObserver for RowIds {
    fn on_batch(&mut self, epoch: usize, row_ids: &[u64]) -> Result<()> {
        if self.0.len() < epoch {
            self.0.resize(epoch, Vec::new());
        }
        self.0[epoch - 1].extend_from_slice(row_ids);
        Ok(())
    }
}

/// Trains `config` on `source` as `world` ranks in threads, each step 50 rows per rank
/// (a global batch of 100), shuffled with seed 9 through a 500-row buffer.
fn train_in_threads(
    source: &Arc<dyn Source>,
    world: usize,
    config: &TrainerConfig,
) -> Vec<(Result<TrainResult>, RowIds)> {
    let shared = threads::Shared::new(world);
    std::thread::scope(|scope| {
        let ranks: Vec<_> = (0..world)
            .map(|rank| {
                let shared = &shared;
                scope.spawn(move || {
                    let comm = threads::ThreadRank {
                        rank,
                        world,
                        shared,
                    };
                    let pipeline = Pipeline::new(
                        source.clone(),
                        PipelineConfig {
                            step_rows: 50,
                            shuffle: Shuffle::Seeded(9),
                            shuffle_buffer_rows: 500,
                            block_rows: 128,
                            rank,
                            world,
                            ..PipelineConfig::default()
                        },
                    );
                    let mut ids = RowIds::default();
                    let result = train_ranks(&pipeline, None, config, &mut ids, &comm);
                    (result, ids)
                })
            })
            .collect();
        ranks.into_iter().map(|r| r.join().expect("rank")).collect()
    })
}

fn uneven_source(dir: &std::path::Path) -> Arc<dyn Source> {
    let file = dir.join("data.bin");
    std::fs::write(&file, b"the identity of the data").expect("write");
    Arc::new(UnevenSource::new(file))
}

#[test]
fn two_ranks_in_threads_see_every_row_once_and_keep_identical_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = uneven_source(dir.path());
    let mut config = config(3);
    config.optimizer.learning_rate = 0.05;
    let ranks = train_in_threads(&source, 2, &config);
    let results: Vec<&TrainResult> = ranks
        .iter()
        .map(|(r, _)| r.as_ref().expect("train"))
        .collect();
    assert_eq!(results[0].params, results[1].params);
    let reference = Pipeline::new(
        source.clone(),
        PipelineConfig {
            step_rows: 50,
            shuffle: Shuffle::Seeded(9),
            world: 2,
            ..PipelineConfig::default()
        },
    );
    for epoch in 0..3 {
        // Every row once per epoch, across the ranks.
        let mut ids: Vec<u64> = ranks
            .iter()
            .flat_map(|(_, ids)| ids.0[epoch].iter().copied())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..1_925).collect::<Vec<u64>>(), "epoch {epoch}");
        // The epoch made the steps of its largest share.
        let summary = &results[0].epochs[epoch];
        assert_eq!(summary.iterations, reference.steps_in_epoch(epoch as u64));
        assert_eq!(summary.rows, 1_925);
        assert!(summary.shuffle_spearman.is_nan());
        // The running training loss sums every rank's steps: the same figure on each rank.
        assert_eq!(summary.train_loss_rows, 1_925);
        let loss = summary.train_loss.expect("a running loss");
        assert_eq!(
            results[1].epochs[epoch].train_loss.map(f64::to_bits),
            Some(loss.to_bits())
        );
    }
}

#[test]
fn two_ranks_in_threads_resume_from_any_checkpoint_to_the_same_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = uneven_source(dir.path());
    let checkpoints = dir.path().join("checkpoints");
    let mut config = config(2);
    config.optimizer.learning_rate = 0.05;
    config.eval = Eval::Off;
    let mut full = config.clone();
    full.checkpoint = Some(CheckpointConfig {
        dir: checkpoints.clone(),
        every_steps: Some(7),
        keep: 1_000,
    });
    let reference = train_in_threads(&source, 2, &full);
    let expected = reference[0].0.as_ref().expect("train").params.clone();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&checkpoints)
        .expect("checkpoints")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sfck"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in &files[..files.len() - 1] {
        let checkpoint = Checkpoint::load(file).expect("load");
        assert!(checkpoint.cursor.is_none());
        let mut resumed = config.clone();
        resumed.resume = Some(Box::new(checkpoint));
        for (rank, (result, _)) in train_in_threads(&source, 2, &resumed).iter().enumerate() {
            let result = result.as_ref().expect("resume");
            assert_eq!(
                result.params,
                expected,
                "rank {rank} from {}",
                file.display()
            );
            // The resumed epoch's running loss is the uninterrupted run's, bit for bit.
            let losses = |r: &TrainResult| -> Vec<Option<u64>> {
                r.epochs
                    .iter()
                    .map(|e| e.train_loss.map(f64::to_bits))
                    .collect()
            };
            let uninterrupted = reference[0].0.as_ref().expect("train");
            assert_eq!(
                losses(result),
                losses(uninterrupted),
                "from {}",
                file.display()
            );
        }
    }
}
