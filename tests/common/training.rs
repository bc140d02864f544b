//! Training through the library on a dataset directory: a quiet test configuration, its
//! pipeline, the batches of one epoch, a training run, and the comparisons tests make on the
//! trained parameters. Reading and writing files is `files`'s.

use std::sync::Arc;

use streamfit::config::TrainConfig;
use streamfit::data::source::Source;
use streamfit::pipeline::Pipeline;
use streamfit::train::{BatchSize, Eval, TrainObserver, TrainResult, TrainerConfig, train};

/// A training configuration over `dir` with quiet test defaults.
pub fn config(dir: &std::path::Path, batch: BatchSize) -> TrainConfig {
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

/// Trains `config` (on the pipeline of [`pipeline`]), telling `observer` about every step.
pub fn try_fit(
    config: &TrainConfig,
    observer: &mut dyn TrainObserver,
) -> streamfit::Result<TrainResult> {
    train(&pipeline(config), &config.trainer, observer)
}

/// Trains `config`, failing the test on an error.
pub fn fit(config: &TrainConfig) -> TrainResult {
    try_fit(config, &mut ()).expect("train")
}

/// The bit patterns of `params`, for comparing parameters exactly (NaN and -0.0 included).
pub fn bits(params: &[f32]) -> Vec<u32> {
    params.iter().map(|p| p.to_bits()).collect()
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
