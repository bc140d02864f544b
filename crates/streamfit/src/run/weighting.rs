//! Row weights of a run: «weight_column» and «class_weight» resolved into the trainer's
//! [`RowWeights`].
//!
//! The weight column travels with the training batches only (one trailing value per row,
//! split off by the trainer). The passes before training (statistics, vocabularies, the scale
//! check, class counting) and the validation data read the data without it: while they run,
//! the column is held out of the spec as an excluded column, so it is never a feature and
//! never a statistic. `balanced` class weights come from exact label counts of one streamed
//! pass over the data (every row, held-out units too, as the class count is taken; integer
//! counts, so the same for any number of readers).

use std::sync::Arc;
use std::time::Instant;

use crate::config::TrainConfig;
use crate::data::FeatureSelection;
use crate::data::source::Source;
use crate::error::{Error, Result};
use crate::model::Head;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::train::{ClassWeight, RowWeights, balanced_weights};

use super::event::PrepareEvent;

/// Takes «weight_column» out of `config`'s columns for the passes before training (it joins
/// `exclude`, so it stays out of the default features) and returns it. Refuses it named as a
/// feature or a categorical column.
pub(super) fn hold_out_weight(config: &mut TrainConfig) -> Result<Option<String>> {
    let Some(weight) = config.columns.weight.take() else {
        return Ok(None);
    };
    let named = match &config.columns.features {
        FeatureSelection::Columns(names) => names.contains(&weight),
        FeatureSelection::ListColumn(_) => {
            return Err(Error::config(
                "weight_column",
                "row weights go with scalar feature columns, not with «features_column»",
            ));
        }
        FeatureSelection::AllNumeric => false,
    };
    let categorical = match &config.categorical {
        crate::data::categorical::CategoricalColumns::Named(names) => names.contains(&weight),
        _ => false,
    };
    if named || categorical {
        return Err(Error::config(
            if named { "features" } else { "categorical" },
            format!(
                "`{weight}` is the «weight_column»; a row's weight is never one of its features"
            ),
        ));
    }
    if config.columns.features == FeatureSelection::AllNumeric
        && !config.columns.exclude.contains(&weight)
    {
        config.columns.exclude.push(weight.clone());
    }
    Ok(Some(weight))
}

/// Puts the weight column back (out of `exclude`, into the spec the training data is read
/// with), and resolves the trainer's row weights: the column, and `balanced` class weights
/// counted now (the head's classes known). Returns the event that reports the class weights.
pub(super) fn resolve_weights(
    config: &mut TrainConfig,
    source: &Arc<dyn Source>,
    weight: Option<String>,
) -> Result<Option<PrepareEvent>> {
    if let Some(weight) = &weight {
        config.columns.exclude.retain(|c| c != weight);
        config.columns.weight = Some(weight.clone());
    }
    config.trainer.weights = RowWeights {
        column: weight,
        class_weights: Vec::new(),
    };
    if config.class_weight == ClassWeight::None {
        return Ok(None);
    }
    let classes = match config.trainer.model.head {
        Head::Binary => 2,
        Head::Multiclass(k) => k,
        Head::Regression => {
            return Err(Error::config(
                "class_weight",
                "weights the classes of a classifier, not a regression",
            ));
        }
    };
    let started = Instant::now();
    let counts = count_labels(source, config.num_readers, classes)?;
    let weights = balanced_weights(&counts);
    config.trainer.weights.class_weights = weights.clone();
    Ok(Some(PrepareEvent::ClassWeighted {
        counts,
        weights,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// Rows of each class 0..classes of `source` (its labels as training reads them: mapped by
/// «positive_label», null ones left out by «drop_null_labels»), in one unshuffled pass. A
/// label that is no class id is an error.
fn count_labels(source: &Arc<dyn Source>, num_readers: usize, classes: usize) -> Result<Vec<u64>> {
    let pipeline = Pipeline::new(source.clone(), PipelineConfig::file_order(num_readers));
    let mut counts = vec![0u64; classes];
    pipeline.scan(|block| {
        for &label in block.targets() {
            match counts.get_mut(label as usize) {
                Some(n) if label >= 0.0 && label.fract() == 0.0 => *n += 1,
                _ => {
                    return Err(Error::config(
                        "class_weight",
                        format!("label {label} is not a class id in 0..{classes}"),
                    ));
                }
            }
        }
        Ok(())
    })?;
    Ok(counts)
}
