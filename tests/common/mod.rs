//! Helpers shared by the integration tests: small generated datasets and the built binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use streamfit::config::TrainConfig;
use streamfit::data::source::Source;
use streamfit::data::source::write::Compression;
use streamfit::generate::{GenerateConfig, Task, Truth, generate};
use streamfit::pipeline::Pipeline;
use streamfit::train::{BatchSize, Eval, TrainerConfig};

/// Writes a generated dataset into `dir` and returns its truth.
pub fn dataset(
    dir: &Path,
    task: Task,
    rows: u64,
    features: usize,
    shards: usize,
    row_group_rows: usize,
    seed: u64,
) -> Truth {
    generate(
        &GenerateConfig {
            task,
            rows,
            features,
            shards,
            row_group_rows,
            compression: Compression::Snappy,
            seed,
            noise_std: 0.1,
            out: dir.to_path_buf(),
            ..GenerateConfig::default()
        },
        &|_| {},
    )
    .expect("generate")
}

/// A training configuration over `dir` with quiet test defaults.
pub fn config(dir: &Path, batch: BatchSize) -> TrainConfig {
    TrainConfig {
        data: vec![dir.to_path_buf()],
        batch_size: batch,
        shuffle_buffer_rows: 1_000,
        trainer: TrainerConfig {
            eval: Eval::Off,
            num_threads: 2,
            ..TrainerConfig::default()
        },
        ..TrainConfig::default()
    }
}

/// The pipeline of a checked configuration.
pub fn pipeline(config: &TrainConfig) -> Pipeline {
    config.check().expect("valid config");
    let source: Arc<dyn Source> = config.open_source().expect("open");
    let rows = source.num_rows();
    Pipeline::new(source, config.pipeline_config(rows))
}

/// Row ids of every batch of one epoch, grouped by step.
pub fn steps_of_epoch(pipeline: &Pipeline, epoch: u64) -> Vec<Vec<u64>> {
    let mut steps = vec![Vec::new()];
    for batch in pipeline.epoch(epoch).expect("start epoch") {
        let batch = batch.expect("batch");
        steps
            .last_mut()
            .unwrap()
            .extend_from_slice(batch.rows.row_ids());
        if batch.ends_step {
            steps.push(Vec::new());
        }
    }
    let last = steps.pop().unwrap();
    assert!(last.is_empty(), "rows after the last step end");
    steps
}

/// The built `streamfit` binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamfit"))
}

/// Runs the binary with `args`, failing the test if it takes longer than `timeout`.
pub fn run(args: &[&str], timeout: Duration) -> Output {
    let mut command = Command::new(binary());
    command.args(args);
    run_command(command, timeout)
}

/// Runs `command` with its output captured, failing the test if it takes longer than `timeout`.
pub fn run_command(mut command: Command, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!("{command:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cosine similarity of two weight vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}
