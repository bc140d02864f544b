//! Exact resume: from any checkpoint (mid-epoch, mid-drain, at an epoch boundary, in the final
//! epoch), with readers and threads changed, training ends with the parameters of the
//! uninterrupted run, bit for bit, on Parquet and on shards. A changed run or dataset is
//! refused, naming what changed.

mod common;

use std::path::{Path, PathBuf};

use streamfit::config::TrainConfig;
use streamfit::generate::Task;
use streamfit::model::{Activation, Head, ModelSpec};
use streamfit::optim::{LrSchedule, OptimizerKind};
use streamfit::pipeline::Shuffle;
use streamfit::train::{BatchSize, Checkpoint, CheckpointConfig};

/// 12,000 rows × 5 features in 4 files of 1,000-row row groups; b = 50 (240 steps per epoch),
/// a 2,000-row shuffle buffer (so the last 40 steps of each epoch come from the drain), 3 epochs.
fn config(data: &Path) -> TrainConfig {
    let mut config = common::config(data, BatchSize::Rows(50));
    config.shuffle_buffer_rows = 2_000;
    config.shuffle = Shuffle::Seeded(11);
    config.trainer.epochs = 3;
    config.trainer.optimizer.learning_rate = 0.05;
    config
}

fn checkpoint_path(dir: &Path, iteration: u64) -> PathBuf {
    dir.join(format!("ckpt-{iteration:012}.sfck"))
}

fn resume_everywhere(data: &Path, what: &str) {
    resume_everywhere_with(data, what, |_| {});
}

/// [`resume_everywhere`] with `tweak` applied to the run's configuration.
fn resume_everywhere_with(data: &Path, what: &str, tweak: fn(&mut TrainConfig)) {
    let dir = common::tempdir();
    let checkpoints = dir.path().join("checkpoints");
    let config = |data: &Path| {
        let mut c = config(data);
        tweak(&mut c);
        c
    };
    let mut full = config(data);
    full.trainer.checkpoint = Some(CheckpointConfig {
        dir: checkpoints.clone(),
        every_steps: Some(37),
        keep: 1_000,
    });
    let reference = common::try_fit(&full, &mut ()).expect("uninterrupted run");
    assert_eq!(reference.iterations(), 720);
    // 37: early in epoch 1; 222: epoch 1's drain; 240: the epoch-1 boundary; 259: early in
    // epoch 2; 481: epoch 3's first step; 629 and 703: late in the final epoch.
    for iteration in [37, 222, 240, 259, 481, 629, 703] {
        let checkpoint = Checkpoint::load(&checkpoint_path(&checkpoints, iteration))
            .unwrap_or_else(|e| panic!("{what}: checkpoint {iteration}: {e}"));
        assert_eq!(checkpoint.iteration, iteration);
        assert_eq!(
            checkpoint.cursor.is_none(),
            iteration == 240,
            "{what} {iteration}"
        );
        let mut resumed = config(data);
        resumed.num_readers = 3;
        resumed.trainer.num_threads = 1;
        resumed.trainer.resume = Some(Box::new(checkpoint));
        let result = common::try_fit(&resumed, &mut ())
            .unwrap_or_else(|e| panic!("{what}: resume at {iteration}: {e}"));
        assert_eq!(
            common::bits(&result.params),
            common::bits(&reference.params),
            "{what}: resumed at iteration {iteration}"
        );
        assert_eq!(result.iterations(), 720, "{what} {iteration}");
        let info = result.resumed.expect("resume info");
        assert_eq!(info.from_iteration, iteration);
        // Shards are read row by row: exactly the buffered rows. Parquet re-reads the whole
        // row groups holding them (here all 12 units can still hold a row: the buffer keeps
        // about e^(-k/2) of the unit read k units ago).
        match what {
            "shards" => assert!(info.rows_reread <= 2_000, "re-read {}", info.rows_reread),
            _ => assert!(info.rows_reread <= 12_000, "re-read {}", info.rows_reread),
        }
    }
}

#[test]
fn resuming_from_any_checkpoint_matches_the_uninterrupted_run_on_parquet() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 12_000, 5, 4, 1_000, 7);
    resume_everywhere(&data, "parquet");
}

#[test]
fn resuming_an_mlp_trained_with_adam_and_a_schedule_matches_the_uninterrupted_run() {
    // The optimizer's moments and step count (which drives the bias correction, the warm-up
    // and the cosine schedule) must come back from the checkpoint, or the runs drift apart.
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 12_000, 5, 4, 1_000, 7);
    resume_everywhere_with(&data, "parquet, mlp + adamw", |c| {
        c.trainer.model = ModelSpec::mlp(vec![8, 4], Activation::Tanh, Head::Binary);
        c.trainer.optimizer.kind = OptimizerKind::AdamW;
        c.trainer.optimizer.learning_rate = 0.01;
        c.trainer.optimizer.weight_decay = 0.01;
        c.trainer.optimizer.warmup_steps = 50;
        c.trainer.optimizer.schedule = LrSchedule::Cosine;
        c.trainer.init_seed = 3;
    });
}

#[test]
fn resuming_from_any_checkpoint_matches_the_uninterrupted_run_on_shards() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 12_000, 5, 4, 1_000, 7);
    let shards = dir.path().join("shards");
    common::to_shards(&data, &shards, Some(5_000), 2);
    resume_everywhere(&shards, "shards");
}

/// A one-epoch run of [`config`] on fresh data in `dir`, checkpointing every 100 steps and
/// keeping `keep`; returns the data and checkpoint directories.
fn one_epoch_with_checkpoints(dir: &Path, keep: usize) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    common::dataset(&data, Task::Logistic, 12_000, 5, 4, 1_000, 7);
    let checkpoints = dir.join("checkpoints");
    let mut full = config(&data);
    full.trainer.epochs = 1;
    full.trainer.checkpoint = Some(CheckpointConfig {
        dir: checkpoints.clone(),
        every_steps: Some(100),
        keep,
    });
    common::try_fit(&full, &mut ()).expect("run");
    (data, checkpoints)
}

#[test]
fn a_resume_with_a_changed_run_or_dataset_is_refused_naming_the_change() {
    let dir = common::tempdir();
    let (data, checkpoints) = one_epoch_with_checkpoints(dir.path(), 10);
    let checkpoint = Checkpoint::load(&checkpoint_path(&checkpoints, 100)).expect("load");
    let refused = |change: &dyn Fn(&mut TrainConfig), expected: &str| {
        let mut changed = config(&data);
        change(&mut changed);
        changed.trainer.resume = Some(Box::new(checkpoint.clone()));
        let err = common::try_fit(&changed, &mut ())
            .expect_err(expected)
            .to_string();
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    };
    // The library names options by their field names (the command line shows flags).
    refused(&|c| c.shuffle = Shuffle::Seeded(12), "seed");
    refused(&|c| c.batch_size = BatchSize::Rows(64), "batch_size");
    refused(&|c| c.shuffle_buffer_rows = 1_000, "shuffle_buffer");
    refused(&|c| c.trainer.optimizer.learning_rate = 0.5, "lr");
    refused(
        &|c| c.trainer.optimizer.kind = OptimizerKind::Adam,
        "the optimizer settings",
    );
    refused(&|c| c.trainer.model = ModelSpec::linear(), "model");
    // Rewrite one file with other rows: same name, different content.
    let other = dir.path().join("other");
    common::dataset(&other, Task::Logistic, 12_000, 5, 4, 1_000, 8);
    std::fs::copy(
        other.join("part-00001.parquet"),
        data.join("part-00001.parquet"),
    )
    .unwrap();
    refused(&|_| {}, "the data changed since the checkpoint");
}

#[test]
fn corrupt_checkpoints_are_never_loaded() {
    let dir = common::tempdir();
    let (_, checkpoints) = one_epoch_with_checkpoints(dir.path(), 2);
    // keep = 2: the checkpoints of iterations 200 and 240 (the epoch end) remain.
    let newest = checkpoint_path(&checkpoints, 240);
    assert!(newest.is_file() && checkpoint_path(&checkpoints, 200).is_file());
    assert!(!checkpoint_path(&checkpoints, 100).exists());
    let original = std::fs::read(&newest).unwrap();
    for (what, bytes) in [
        ("flipped byte", {
            let mut b = original.clone();
            let at = b.len() - 10;
            b[at] ^= 0x20;
            b
        }),
        ("truncated", original[..original.len() / 2].to_vec()),
    ] {
        std::fs::write(&newest, &bytes).unwrap();
        let err = Checkpoint::load(&newest).expect_err(what).to_string();
        assert!(err.contains("corrupt checkpoint"), "{what}: {err}");
        let (checkpoint, path, warnings) = Checkpoint::load_latest(&checkpoints).expect("fallback");
        assert_eq!(checkpoint.iteration, 200, "{what}");
        assert_eq!(path, checkpoint_path(&checkpoints, 200));
        assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
        assert!(warnings[0].contains("ckpt-000000000240"), "{warnings:?}");
    }
}
