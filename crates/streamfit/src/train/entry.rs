//! The public ways to start a run: [`train`] on a pipeline, [`train_validated`] with a
//! validation set, [`train_ranks`] as one rank of a data-parallel run, and [`train_stream`] on
//! any [`BatchSource`].
//!
//! Each checks what it was given (the validation set's features, the model's size) and hands a
//! batch stream to the trainer; a data-parallel rank's pipeline becomes a [`RankShare`]. The
//! loop itself is in `trainer.rs`.

use super::trainer::Trainer;
use super::{CHUNK_ROWS, MAX_EPOCHS, TrainObserver, TrainResult, TrainerConfig};
use crate::comm::Collective;
use crate::error::{Error, Result};
use crate::pipeline::{BatchSource, Pipeline, RankShare};

/// Trains a model on `pipeline`'s data; see the module docs.
pub fn train(
    pipeline: &Pipeline,
    config: &TrainerConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainResult> {
    train_validated(pipeline, None, config, observer)
}

/// Trains like [`train`], evaluating on `valid` (a pipeline over other data with the same
/// columns, built with [`eval_config`](super::eval_config)) after every epoch (or every
/// `config.eval_every` steps), and stopping early on it when `config.early_stop` is set.
pub fn train_validated(
    pipeline: &Pipeline,
    valid: Option<&Pipeline>,
    config: &TrainerConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainResult> {
    debug_assert_eq!(pipeline.config().piece_rows % CHUNK_ROWS, 0);
    train_stream(
        pipeline,
        valid.map(|v| v as &dyn BatchSource),
        config,
        observer,
    )
}

/// Trains like [`train_validated`] as one rank of a data-parallel run: `pipeline` (and
/// `valid`) read this rank's share of the units ([`PipelineConfig::rank`]), and each is
/// trained on as a [`RankShare`]: every step, the ranks sum their gradient sums and row counts
/// with `comm` and apply the same update, so the parameters stay identical on every rank
/// (checked every 64 steps). A rank whose share is used up keeps stepping with zero rows until
/// the summed row count is zero, which ends the epoch on every rank at once. With a world of
/// one this is exactly [`train_validated`].
///
/// [`PipelineConfig::rank`]: crate::pipeline::PipelineConfig::rank
pub fn train_ranks(
    pipeline: &Pipeline,
    valid: Option<&Pipeline>,
    config: &TrainerConfig,
    observer: &mut dyn TrainObserver,
    comm: &dyn Collective,
) -> Result<TrainResult> {
    if comm.size() <= 1 {
        return train_validated(pipeline, valid, config, observer);
    }
    debug_assert_eq!(pipeline.config().piece_rows % CHUNK_ROWS, 0);
    let share = RankShare::new(pipeline, comm);
    let valid = valid.map(|v| RankShare::new(v, comm));
    train_stream(
        &share,
        valid.as_ref().map(|v| v as &dyn BatchSource),
        config,
        observer,
    )
}

/// Trains on any [`BatchSource`] (a [`Pipeline`], one rank's [`RankShare`], or a stream of
/// one's own), evaluating on `valid` after every epoch when given. Checkpoints and resume need
/// a stream that comes from a pipeline ([`BatchSource::config`]).
pub fn train_stream(
    stream: &dyn BatchSource,
    valid: Option<&dyn BatchSource>,
    config: &TrainerConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainResult> {
    check_inputs(stream, valid, config)?;
    let model = config.model.build(stream.schema().num_features());
    if model.num_params() > crate::model::MAX_PARAMS {
        return Err(Error::config(
            "hidden",
            format!(
                "the model would have {} parameters, more than the {} streamfit allows",
                model.num_params(),
                crate::model::MAX_PARAMS
            ),
        ));
    }
    Trainer::new(stream, valid, config, observer, model.as_ref())?.run()
}

/// Refuses an epoch count out of range, a validation set without the training data's
/// features, and early stopping or evaluations every so many steps without a validation set.
fn check_inputs(
    stream: &dyn BatchSource,
    valid: Option<&dyn BatchSource>,
    config: &TrainerConfig,
) -> Result<()> {
    if config.epochs == 0 || config.epochs > MAX_EPOCHS {
        return Err(Error::config(
            "epochs",
            format!("must be between 1 and {MAX_EPOCHS}"),
        ));
    }
    if config.early_stop.is_some() && valid.is_none() {
        return Err(Error::config(
            "early_stop",
            "needs validation data («valid»)",
        ));
    }
    match config.eval_every {
        Some(0) => return Err(Error::config("eval_every", "must be at least 1")),
        Some(_) if valid.is_none() => {
            return Err(Error::config(
                "eval_every",
                "needs validation data («valid»)",
            ));
        }
        _ => {}
    }
    if let Some(v) = valid
        && v.schema().feature_names != stream.schema().feature_names
    {
        let name = v.source().map_or("the validation data".to_string(), |s| {
            s.files()[0].display().to_string()
        });
        return Err(Error::config(
            "valid",
            format!(
                "{name} has features [{}], the training data [{}]",
                v.schema().feature_names.join(", "),
                stream.schema().feature_names.join(", ")
            ),
        ));
    }
    Ok(())
}
