//! A timed stretch of real training: the same pipeline and gradient code as `train`, timed
//! after two warm-up steps.

use std::sync::Arc;
use std::time::Instant;

use crate::config::TrainConfig;
use crate::data::RowBlock;
use crate::data::source::Source;
use crate::error::Result;
use crate::model::Model;
use crate::optim::Optimizer;
use crate::pipeline::Pipeline;
use crate::train::{BatchSize, GradientEngine};

/// What a timed stretch of training did.
pub(super) struct Timed {
    pub(super) iterations: u64,
    pub(super) rows: u64,
    pub(super) seconds: f64,
    pub(super) stall: f64,
}

/// Trains from `params` with batch size `b` for about `seconds` (at least a few steps; more
/// epochs when one is shorter than that; at most `max_steps` when given), timing after two
/// warm-up steps. With `collect`, also keeps the first rows seen. Rows are standardised as in
/// training when `base.trainer.standardize` is set (so are the collected ones).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_for(
    base: &TrainConfig,
    source: &Arc<dyn Source>,
    model: &dyn Model,
    params: &mut [f32],
    b: u64,
    seconds: f64,
    max_steps: Option<u64>,
    mut collect: Option<(&mut RowBlock, usize)>,
) -> Result<Timed> {
    let mut config = base.clone();
    config.batch_size = BatchSize::Rows(b);
    let pipeline = Pipeline::new(source.clone(), config.pipeline_config(source.num_rows()));
    let mut engine = GradientEngine::new(model, config.trainer.num_threads)?;
    let mut optimizer = Optimizer::new(
        config.trainer.optimizer.clone(),
        model.decays(),
        u64::MAX,
        None,
    );
    let mut grad = vec![0.0f32; params.len()];
    let (mut steps, mut timed_steps, mut rows) = (0u64, 0u64, 0u64);
    let mut started = Instant::now();
    let mut stall = 0.0;
    'epochs: for epoch in 0..1_000 {
        let mut stream = pipeline.epoch(epoch)?;
        let mut stall_from = 0.0;
        while let Some(batch) = stream.next() {
            let mut batch = batch?;
            if let Some(s) = &config.trainer.standardize {
                s.apply(&mut batch.rows);
            }
            if let Some((sample, limit)) = collect.as_mut() {
                let take = (*limit - sample.num_rows()).min(batch.rows.num_rows());
                sample.extend_from(&batch.rows, 0..take);
            }
            crate::train::check_labels(source.as_ref(), model.head(), &batch.rows)?;
            engine.accumulate(params, &batch.rows);
            if steps >= 2 {
                rows += batch.rows.num_rows() as u64;
            }
            if !batch.ends_step {
                continue;
            }
            drop(batch);
            engine.finish_step(&mut grad);
            if grad.iter().all(|g| g.is_finite()) {
                optimizer.step(params, &mut grad);
            }
            steps += 1;
            if steps == 2 {
                started = Instant::now();
                stall_from = stream.wait_time().as_secs_f64();
            } else if steps > 2 {
                timed_steps += 1;
            }
            let collecting = collect
                .as_ref()
                .is_some_and(|(sample, limit)| sample.num_rows() < *limit);
            let enough = steps > 2
                && timed_steps >= 3
                && started.elapsed().as_secs_f64() >= seconds
                && !collecting;
            if enough || max_steps.is_some_and(|m| steps >= m) {
                stall += stream.wait_time().as_secs_f64() - stall_from;
                break 'epochs;
            }
        }
        stall += stream.wait_time().as_secs_f64() - stall_from;
    }
    Ok(Timed {
        iterations: timed_steps,
        rows,
        seconds: started.elapsed().as_secs_f64(),
        stall: stall.max(0.0),
    })
}
