//! Shuffle lanes (`--shuffle-lanes K`): with K > 1 every row still comes out exactly once per
//! epoch, the batches do not depend on the reader or lane-thread counts, a resume (from any
//! checkpoint, or after SIGKILLs) ends bit for bit like the uninterrupted run, and a resume
//! with another K is refused naming the flag.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use streamfit::config::TrainConfig;
use streamfit::generate::Task;
use streamfit::pipeline::{LastBatch, Pipeline, Shuffle};
use streamfit::train::{BatchSize, Checkpoint, CheckpointConfig};

/// Two datasets in one: 3,000 rows in 50-row row groups and 7,001 rows in 3,000-row row groups
/// (units of 50, 1,001 and 3,000 rows), 10,001 rows in all.
fn mixed_units(dir: &Path) -> Vec<PathBuf> {
    let (small, large) = (dir.join("small"), dir.join("large"));
    common::dataset(&small, Task::Logistic, 3_000, 3, 2, 50, 1);
    common::dataset(&large, Task::Logistic, 7_001, 3, 1, 3_000, 2);
    vec![small, large]
}

fn lanes_config(data: Vec<PathBuf>, batch: u64, lanes: usize) -> TrainConfig {
    let mut config = common::config(&data[0], BatchSize::Rows(batch));
    config.data = data;
    config.shuffle_buffer_rows = 500;
    config.shuffle_lanes = lanes;
    config
}

/// The pipeline of `config` with `lane_threads` threads running the lanes.
fn pipeline(config: &TrainConfig, lane_threads: usize) -> Pipeline {
    let pipeline = common::pipeline(config);
    let mut settings = pipeline.config().clone();
    settings.lane_threads = lane_threads;
    Pipeline::new(pipeline.source().clone(), settings)
}

#[test]
fn lanes_give_every_row_once_whatever_the_readers_and_lane_threads() {
    let dir = common::tempdir();
    let data = mixed_units(dir.path());
    let n = 10_001u64;
    let one_lane = common::steps_of_epoch(&pipeline(&lanes_config(data.clone(), 64, 1), 0), 0);
    for lanes in [2, 3, 7] {
        let mut config = lanes_config(data.clone(), 64, lanes);
        config.num_readers = 1;
        let reference = common::steps_of_epoch(&pipeline(&config, 1), 0);
        // ceil(N/b) steps, the last one short.
        assert_eq!(reference.len() as u64, n.div_ceil(64), "K = {lanes}");
        assert!(
            reference[..reference.len() - 1]
                .iter()
                .all(|s| s.len() == 64)
        );
        assert_eq!(reference.last().unwrap().len() as u64, n % 64);
        let mut ids = reference.concat();
        ids.sort_unstable();
        assert_eq!(
            ids,
            (0..n).collect::<Vec<_>>(),
            "K = {lanes}: each row once"
        );
        assert_ne!(
            reference, one_lane,
            "K = {lanes} is another order than K = 1"
        );
        for (readers, threads) in [(2, 2), (3, lanes), (5, 0)] {
            config.num_readers = readers;
            assert_eq!(
                common::steps_of_epoch(&pipeline(&config, threads), 0),
                reference,
                "K = {lanes}, {readers} readers, {threads} lane threads"
            );
        }
        let next = common::steps_of_epoch(&pipeline(&config, 2), 1);
        assert_ne!(next, reference, "a new epoch, a new order");
    }
}

#[test]
fn more_lanes_than_units_and_a_dropped_last_batch() {
    let dir = common::tempdir();
    // 3 units of 100 rows; 8 lanes (5 of them get no rows), a buffer larger than the data.
    common::dataset(dir.path(), Task::Logistic, 300, 2, 1, 100, 3);
    for (buffer, last) in [
        (64, LastBatch::Keep),
        (1_000, LastBatch::Keep),
        (64, LastBatch::Drop),
    ] {
        let mut config = lanes_config(vec![dir.path().to_path_buf()], 7, 8);
        config.shuffle_buffer_rows = buffer;
        config.last_batch = last;
        let steps = common::steps_of_epoch(&pipeline(&config, 3), 0);
        let mut ids = steps.concat();
        ids.sort_unstable();
        ids.dedup();
        match last {
            LastBatch::Keep => {
                assert_eq!(steps.len(), 43);
                assert_eq!(ids, (0..300).collect::<Vec<_>>(), "buffer {buffer}");
            }
            LastBatch::Drop => {
                assert_eq!(steps.len(), 42);
                assert_eq!(ids.len(), 294, "distinct rows");
            }
        }
    }
}

#[test]
fn more_lanes_than_buffer_rows_is_refused() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Logistic, 100, 2, 1, 100, 3);
    let mut config = lanes_config(vec![dir.path().to_path_buf()], 7, 8);
    config.shuffle_buffer_rows = 4;
    let source = config.open_source().expect("open");
    let err = config
        .pipeline_config(source.num_rows())
        .check()
        .unwrap_err();
    assert!(err.to_string().contains("shuffle_lanes"), "{err}");
    config.shuffle_lanes = 0;
    config.shuffle_buffer_rows = 100;
    assert!(config.pipeline_config(100).check().is_err());
    // Without shuffling the lanes are unused, and any K is accepted.
    config.shuffle_lanes = 4;
    config.shuffle = Shuffle::Off;
    let steps = common::steps_of_epoch(&pipeline(&config, 0), 0);
    assert_eq!(steps.concat(), (0..100).collect::<Vec<_>>());
}

#[test]
fn resuming_with_lanes_from_any_checkpoint_matches_the_uninterrupted_run() {
    let dir = common::tempdir();
    let data = mixed_units(dir.path());
    let checkpoints = dir.path().join("checkpoints");
    let config = || {
        let mut c = lanes_config(data.clone(), 50, 3);
        c.shuffle_buffer_rows = 2_000;
        c.shuffle = Shuffle::Seeded(11);
        c.trainer.epochs = 2;
        c.trainer.optimizer.learning_rate = 0.05;
        c
    };
    let mut full = config();
    full.trainer.checkpoint = Some(CheckpointConfig {
        dir: checkpoints.clone(),
        every_steps: Some(37),
        keep: 1_000,
    });
    let reference = common::try_fit(&full, &mut ()).expect("uninterrupted run");
    // 201 steps per epoch; the last 40 come from the drain (185 is in it; 201 is the epoch's
    // end).
    assert_eq!(reference.iterations(), 402);
    for iteration in [37, 111, 185, 201, 222, 259, 370] {
        let path = checkpoints.join(format!("ckpt-{iteration:012}.sfck"));
        let checkpoint = Checkpoint::load(&path).unwrap_or_else(|e| panic!("{iteration}: {e}"));
        assert_eq!(checkpoint.fingerprint.shuffle_lanes, 3);
        if let Some(cursor) = &checkpoint.cursor {
            assert_eq!(cursor.lanes.len(), 3, "every lane's state");
        }
        let mut resumed = config();
        resumed.num_readers = 3;
        resumed.trainer.num_threads = 1;
        resumed.trainer.resume = Some(Box::new(checkpoint));
        let result = common::try_fit(&resumed, &mut ())
            .unwrap_or_else(|e| panic!("resume at {iteration}: {e}"));
        assert_eq!(
            common::bits(&result.params),
            common::bits(&reference.params),
            "resumed at iteration {iteration}"
        );
        assert_eq!(result.iterations(), 402);
    }
}

/// 400,000 rows × 8 features in 4 files of 25,000-row row groups.
fn kill_dataset(dir: &Path) -> String {
    let data = dir.join("data");
    common::dataset(&data, Task::Logistic, 400_000, 8, 4, 25_000, 5);
    data.to_str().unwrap().to_string()
}

/// One epoch of b = 1 (400,000 steps): SGD forgets an early difference over later epochs of
/// the same batches, so only a resume inside the last epoch shows in the final model.
fn train_args<'a>(data: &'a str, model: &'a str, lanes: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        data,
        "--batch-size",
        "1",
        "--epochs",
        "1",
        "--lr",
        "0.01",
        "--shuffle-buffer",
        "20000",
        "--shuffle-lanes",
        lanes,
        "--no-eval",
        "--quiet",
        "--save-model",
        model,
    ]
}

#[test]
fn sigkills_and_resumes_with_lanes_end_bit_identical() {
    let dir = common::tempdir();
    let data = kill_dataset(dir.path());
    let reference_path = dir.path().join("reference.json");
    let started = Instant::now();
    common::run(
        &train_args(&data, reference_path.to_str().unwrap(), "3"),
        Duration::from_secs(120),
    )
    .ok();
    let reference_ms = started.elapsed().as_millis() as u64;
    let reference = std::fs::read(&reference_path).unwrap();
    let model = dir.path().join("model.json");
    let checkpoints = dir.path().join("checkpoints");
    let mut args = train_args(&data, model.to_str().unwrap(), "3");
    args.extend([
        "--checkpoint-dir",
        checkpoints.to_str().unwrap(),
        "--checkpoint-every",
        "20000",
        "--resume",
        "auto",
    ]);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
    let longest_ms = (reference_ms / 20).max(2);
    let latest = || {
        std::fs::read_dir(&checkpoints)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "sfck"))
                    .max()
            })
            .ok()
            .flatten()
    };
    let mut kills = 0;
    let mut mid_epoch = 0;
    let mut finished = false;
    for _ in 0..100 {
        let before = latest();
        let mut child = Command::new(common::binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Each run is killed a random moment after it wrote a checkpoint of its own, so every
        // resume starts from a later one.
        let mut kill_at: Option<Instant> = None;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if kill_at.is_none() && kills < 8 && latest() != before {
                let delay = Duration::from_millis(rng.random_range(0..longest_ms));
                kill_at = Some(Instant::now() + delay);
            }
            if kill_at.is_some_and(|t| Instant::now() >= t) {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                let checkpoint = Checkpoint::load(&latest().unwrap()).unwrap();
                mid_epoch += usize::from(checkpoint.cursor.is_some());
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if let Some(status) = status {
            let stderr = common::child_stderr(&mut child);
            assert!(status.success(), "a resume failed: {stderr}");
            finished = true;
            break;
        }
    }
    assert!(
        mid_epoch >= 4,
        "{mid_epoch} of the kills came after a mid-epoch checkpoint"
    );
    assert!(finished, "training never finished");
    assert_eq!(kills, 8);
    assert!(
        std::fs::read(&model).unwrap() == reference,
        "model differs from the uninterrupted run"
    );
}

#[test]
fn a_resume_with_another_lane_count_is_refused_naming_the_flag() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 5_000, 3, 1, 1_000, 4);
    let checkpoints = dir.path().join("checkpoints");
    let (data, checkpoints) = (data.to_str().unwrap(), checkpoints.to_str().unwrap());
    let run = |lanes: &'static str, epochs: &'static str| {
        vec![
            "train",
            data,
            "--epochs",
            epochs,
            "--no-eval",
            "--quiet",
            "--shuffle-lanes",
            lanes,
            "--checkpoint-dir",
            checkpoints,
        ]
    };
    // One lane writes the checkpoint as before lanes existed (no lane field, version 2).
    common::run_ok(&run("1", "1"));
    let file = std::fs::read_dir(checkpoints)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"streamfit-checkpoint 2 "));
    assert!(!String::from_utf8_lossy(&bytes).contains("shuffle_lanes"));
    let mut resume = run("2", "2");
    resume.extend(["--resume", "auto"]);
    let stderr = common::run_err(&resume, 2);
    assert!(
        stderr.contains("--shuffle-lanes was 1, now 2"),
        "names the flag: {stderr}"
    );
}

#[test]
fn a_resumed_lane_stream_continues_with_the_same_batches() {
    let dir = common::tempdir();
    let data = mixed_units(dir.path());
    for (lanes, buffer) in [(3, 2_000), (2, 500), (7, 64)] {
        let mut config = lanes_config(data.clone(), 50, lanes);
        config.shuffle_buffer_rows = buffer;
        let pipeline = pipeline(&config, 2);
        let full = common::steps_of_epoch(&pipeline, 1);
        let mut tracker = streamfit::pipeline::CursorTracker::new(&pipeline, 1);
        for steps in [0, 1, 37, 111, 160, 185, 200, 201] {
            let cursor = tracker.advance_to(steps);
            let (stream, _) = pipeline.resume(&cursor).expect("resume");
            let mut rest = vec![Vec::new()];
            for batch in stream {
                let batch = batch.expect("batch");
                rest.last_mut()
                    .unwrap()
                    .extend_from_slice(batch.rows.row_ids());
                if batch.ends_step {
                    rest.push(Vec::new());
                }
            }
            rest.pop();
            assert_eq!(rest.len(), full.len() - steps as usize);
            for (k, (a, b)) in rest.iter().zip(&full[steps as usize..]).enumerate() {
                assert!(
                    a == b,
                    "K = {lanes}, buffer {buffer}: resumed after step {steps}: step {} differs: {:?} vs {:?}",
                    steps as usize + k,
                    &a[..a.len().min(12)],
                    &b[..b.len().min(12)]
                );
            }
        }
    }
}

#[test]
fn the_ranks_of_a_data_parallel_run_share_every_row_once_with_lanes() {
    let dir = common::tempdir();
    let data = mixed_units(dir.path());
    let config = lanes_config(data, 32, 3);
    let single = common::pipeline(&config);
    let mut ids = Vec::new();
    for rank in 0..2 {
        let settings = streamfit::pipeline::PipelineConfig {
            rank,
            world: 2,
            ..single.config().clone()
        };
        let share = Pipeline::new(single.source().clone(), settings);
        ids.extend(common::steps_of_epoch(&share, 0).concat());
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..10_001).collect::<Vec<_>>());
}
