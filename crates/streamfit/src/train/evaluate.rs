//! The full-data loss: a streamed pass over every row at fixed parameters.
//!
//! After each epoch the trainer evaluates the training data (and the validation data, when
//! given) in file order, in batches as large as the pipeline allows; `predict`'s evaluation
//! uses the same pass. Each rank of a data-parallel run evaluates its share and the sums are
//! added across ranks. Nothing here updates parameters.

use std::sync::Arc;

use super::labels::check_stream_labels;
use super::{GradientEngine, Standardization, check_labels};
use crate::comm::{Collective, SingleProcess};
use crate::data::source::Source;
use crate::error::{Error, Result};
use crate::model::{EvalSums, Metrics};
use crate::pipeline::{Batch, BatchSource, Pipeline, PipelineConfig};

/// The evaluation pass: file order, every row, batches as large as the pipeline allows.
pub fn eval_config(train: &PipelineConfig, source: &Arc<dyn Source>) -> PipelineConfig {
    train.for_evaluation(source.num_rows())
}

/// Mean loss and accuracy or RMSE over every row of `pipeline`'s data at `params`, streamed
/// (rows standardised first when `standardize` is given).
pub fn evaluate(
    pipeline: &Pipeline,
    engine: &mut GradientEngine<'_>,
    params: &[f32],
    standardize: Option<&Standardization>,
) -> Result<Metrics> {
    evaluate_ranks(pipeline, engine, params, standardize, &SingleProcess)
}

/// [`evaluate`] as one rank of a data-parallel run: each rank evaluates its share of the
/// units and the sums are added across ranks.
pub fn evaluate_ranks(
    pipeline: &Pipeline,
    engine: &mut GradientEngine<'_>,
    params: &[f32],
    standardize: Option<&Standardization>,
    comm: &dyn Collective,
) -> Result<Metrics> {
    let source = pipeline.source();
    let head = engine.head();
    let weighted = source.row_width() > source.num_features();
    let sums = sum_batches(
        pipeline.epoch(0)?,
        engine,
        params,
        (standardize, weighted),
        |rows| check_labels(source.as_ref(), head, rows),
    )?;
    metrics(sums, source.num_rows(), head, comm)
}

/// The full-data metrics of `stream` (its [`BatchSource::evaluation_pass`]) at `params`,
/// every rank's share together.
pub(crate) fn evaluate_stream(
    stream: &dyn BatchSource,
    engine: &mut GradientEngine<'_>,
    params: &[f32],
    standardize: Option<&Standardization>,
) -> Result<Metrics> {
    let head = engine.head();
    let weighted = stream
        .source()
        .is_some_and(|s| s.row_width() > s.num_features());
    let sums = sum_batches(
        stream.evaluation_pass()?,
        engine,
        params,
        (standardize, weighted),
        |rows| check_stream_labels(stream, head, rows),
    )?;
    metrics(sums, stream.evaluation_rows(), head, stream.collective())
}

/// This process's loss, correct-prediction and squared-error sums over `batches`. With
/// `weighted`, each row carries a weight after its features, which is set aside: evaluation
/// figures are unweighted.
fn sum_batches(
    batches: impl Iterator<Item = Result<Batch>>,
    engine: &mut GradientEngine<'_>,
    params: &[f32],
    (standardize, weighted): (Option<&Standardization>, bool),
    check: impl Fn(&crate::data::RowBlock) -> Result<()>,
) -> Result<EvalSums> {
    let mut sums = EvalSums::default();
    let mut weights = Vec::new();
    for batch in batches {
        let mut batch = batch?;
        check(&batch.rows)?;
        if weighted {
            weights.clear();
            batch.rows.split_off_last_column(&mut weights);
        }
        if let Some(s) = standardize {
            s.apply(&mut batch.rows);
        }
        sums.add(&engine.eval_sums(params, &batch.rows));
    }
    Ok(sums)
}

/// The metrics of every rank's `sums` together, which must cover `expected` rows.
fn metrics(
    mut sums: EvalSums,
    expected: u64,
    head: crate::model::Head,
    comm: &dyn Collective,
) -> Result<Metrics> {
    if comm.size() > 1 {
        let mut all = [
            sums.rows as f64,
            sums.loss,
            sums.correct as f64,
            sums.squared_error,
        ];
        comm.sum_in_place(&mut all);
        sums = EvalSums {
            rows: all[0] as u64,
            loss: all[1],
            correct: all[2] as u64,
            squared_error: all[3],
        };
    }
    if sums.rows != expected {
        return Err(Error::internal(format!(
            "evaluation saw {} rows, expected {expected}",
            sums.rows
        )));
    }
    Ok(sums.metrics(head))
}
