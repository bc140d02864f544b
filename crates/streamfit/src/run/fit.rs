//! Fitting a run's preprocessing before its data is opened for training, from the training
//! rows only: the encoding of «categorical» columns ([`categories`](super::categories)) and
//! the fill values and indicators of «fill_nulls» and «null_indicators»
//! ([`missing`](super::missing)), fitted over [`training_part`] of the data (the units
//! «valid_fraction» holds out are left out, exactly those the run holds out later, and the
//! rows «drop_null_labels» leaves out are never counted). `train` fits them while preparing
//! ([`PreparedRun`](super::PreparedRun)); `convert` with [`fit_preprocessing`], then stores
//! them in the shard manifest. A run on such shards fits nothing: [`adopt_stored`] takes the
//! stored preprocessing into the trainer's settings (so the model file and the checkpoints'
//! fingerprint carry it), and the scale check's verdict with it.

use std::sync::Arc;
use std::time::Instant;

use crate::config::TrainConfig;
use crate::data::source::Source;
use crate::error::{Error, Result};
use crate::train::Standardize;

use super::PrepareEvent;
use super::categories::resolve_categories;
use super::missing::resolve_missing;
use super::subset::SubsetSource;

/// `source` less the units «valid_fraction» holds out: the same units
/// [`SubsetSource::hold_out`] holds out of the opened training data (chosen from the unit
/// count and the seed alone, so a probe opened with other column settings holds out the
/// same ones). `source` itself without «valid_fraction».
pub(super) fn training_part(
    config: &TrainConfig,
    source: Arc<dyn Source>,
) -> Result<Arc<dyn Source>> {
    match config.valid_fraction {
        None => Ok(source),
        Some(fraction) => {
            let (train, _, _) =
                SubsetSource::hold_out(&source, fraction, config.trainer.init_seed)?;
            Ok(Arc::new(train))
        }
    }
}

/// Fits the preprocessing `config` asks for («categorical», «max_categories»,
/// «hash_buckets», «fill_nulls», «null_indicators») into `config.columns`, from the training
/// rows only (see the module docs), and copies the whole fitted column preprocessing
/// («positive_label» and «drop_null_labels» too) into the trainer's settings. Each pass is
/// reported to `on_event` as it ends.
pub fn fit_preprocessing(
    config: &mut TrainConfig,
    on_event: &mut dyn FnMut(PrepareEvent),
) -> Result<()> {
    if let Some(event) = resolve_categories(config)? {
        on_event(event);
    }
    let started = Instant::now();
    if let Some(counts) = resolve_missing(config)? {
        on_event(PrepareEvent::MissingCounted {
            counts,
            indicators: config.columns.missing.indicators.clone(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    config.trainer.missing = config.columns.missing.clone();
    config.trainer.positive_label = config.columns.positive_label.clone();
    config.trainer.categorical = config.columns.categorical.clone();
    config.trainer.drop_null_labels = config.columns.drop_null_labels;
    Ok(())
}

/// With data whose rows are stored encoded (shards `convert` wrote with preprocessing), sets
/// the trainer's preprocessing to the stored one: the saved model and the checkpoints carry
/// it as a run on the source would. «standardize» never is refused on rows whose columns
/// were centred (only a standardised model records the centres `predict` must subtract).
pub(super) fn adopt_stored(config: &mut TrainConfig, source: &Arc<dyn Source>) -> Result<()> {
    let Some(stored) = source.stored_preprocessing() else {
        return Ok(());
    };
    if config.standardize == Standardize::Never && !stored.centre.is_empty() {
        let columns: Vec<&str> = stored.centre.iter().map(|c| c.column.as_str()).collect();
        return Err(Error::config(
            "standardize",
            format!(
                "cannot be `never` on {}: `convert` stored column(s) {} centred in f64, which \
                 only a standardised model records for `predict`; train with standardisation, \
                 or convert again with «no_centre»",
                config.data[0].display(),
                columns.join(", ")
            ),
        ));
    }
    config.trainer.missing = stored.missing.clone();
    config.trainer.positive_label = stored.positive_label.clone();
    config.trainer.categorical = stored.categorical.clone();
    config.trainer.drop_null_labels = stored.drop_null_labels;
    Ok(())
}
