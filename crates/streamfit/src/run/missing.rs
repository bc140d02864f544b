//! Resolving «fill_nulls» and «null_indicators» into what the decoder applies
//! ([`MissingValues`] in the run's column spec), before the run's sources are opened; and
//! checking that «positive_label» occurs in the labels at all, and counting the rows
//! «drop_null_labels» leaves out.
//!
//! A fill of zero or of a number needs no pass over the data, unless indicators are asked
//! for. The means and the indicators come from one statistics pass
//! ([`dataset_stats`], streamed through the pipeline's readers, so memory stays bounded) over
//! the training rows (never the units «valid_fraction» holds out, nor the rows
//! «drop_null_labels» leaves out), opened to fill every feature column with 0 and to add every indicator: an
//! indicator's mean times the rows is its column's missing count, and a column's filled sum
//! over its present rows is the mean of its present values. Every feature column gets a
//! fill value (a null may first appear in the data `predict` sees); only the columns that
//! held a missing value get an indicator. Nothing here decodes: the fill is written by the
//! Parquet decoder into the row-major batch.

use std::sync::Arc;

use crate::config::TrainConfig;
use crate::data::categorical::{CategoricalColumns, Encoding};
use crate::data::schema::{ColumnFill, FeatureSelection, FillNulls, MissingValues, indicator_name};
use crate::data::source::Source;
use crate::error::{Error, Result};
use crate::inspect::dataset_stats;

/// What the statistics pass found: per feature column, its missing values (nulls and NaN),
/// and the rows read.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingCounts {
    /// `(column, missing values)` for each feature column, in feature order.
    pub columns: Vec<(String, u64)>,
    /// Rows of the training data read.
    pub rows: u64,
}

/// Sets `config.columns.missing` from «fill_nulls» and «null_indicators» (unchanged when
/// «fill_nulls» is unset). Returns the statistics pass's counts when one ran.
pub(super) fn resolve_missing(config: &mut TrainConfig) -> Result<Option<MissingCounts>> {
    let Some(fill_nulls) = config.fill_nulls else {
        return Ok(None);
    };
    let mut probe = config.clone();
    // Named feature columns are opened filled, so that one some files lack (read as null
    // there) does not fail the probe. Named categorical columns (resolved by now) are no
    // numeric features: they take no fill.
    let categorical = match &config.columns.categorical.columns {
        CategoricalColumns::Named(columns) => columns.as_slice(),
        _ => &[],
    };
    probe.columns.missing = match &config.columns.features {
        FeatureSelection::Columns(named) => MissingValues {
            fill: named
                .iter()
                .filter(|column| !categorical.contains(column))
                .map(|column| ColumnFill {
                    column: column.clone(),
                    value: 0.0,
                })
                .collect(),
            indicators: Vec::new(),
        },
        _ => MissingValues::default(),
    };
    // Fills are for the numeric columns: categorical columns give no feature here.
    probe.columns.categorical.encoding = Encoding::Unfitted;
    let names = probe.open_source()?.schema().feature_names.clone();
    let with = |fill: &dyn Fn(usize) -> f64, indicators: Vec<String>| MissingValues {
        fill: names
            .iter()
            .enumerate()
            .map(|(j, column)| ColumnFill {
                column: column.clone(),
                value: fill(j),
            })
            .collect(),
        indicators,
    };
    if fill_nulls != FillNulls::Mean && !config.null_indicators {
        let value = match fill_nulls {
            FillNulls::Value(v) => v,
            _ => 0.0,
        };
        config.columns.missing = with(&|_| value, Vec::new());
        return Ok(None);
    }
    probe.columns.missing = with(&|_| 0.0, names.clone());
    let source = super::fit::training_part(config, probe.open_source()?)?;
    let d = names.len();
    // Found by name: a source may place its own features (hive partition keys, which have
    // no indicator) after the indicators.
    let opened = source.schema().feature_names.clone();
    let at = |name: &str| opened.iter().position(|n| n == name);
    let stats = dataset_stats(source, config.num_readers)?;
    let rows = stats.rows;
    let missing: Vec<u64> = names
        .iter()
        .map(|column| {
            at(&indicator_name(column))
                .map_or(0, |k| (stats.features[k].mean * rows as f64).round() as u64)
        })
        .collect();
    let mean = |j: usize| {
        let present = rows.saturating_sub(missing[j]);
        let Some(k) = at(&names[j]) else {
            return 0.0;
        };
        let filled_mean = stats.features[k].mean;
        if present == 0 || !filled_mean.is_finite() {
            0.0
        } else {
            filled_mean * rows as f64 / present as f64
        }
    };
    let indicators = if config.null_indicators {
        (0..d)
            .filter(|&j| missing[j] > 0)
            .map(|j| names[j].clone())
            .collect()
    } else {
        Vec::new()
    };
    config.columns.missing = match fill_nulls {
        FillNulls::Mean => with(&mean, indicators),
        FillNulls::Zero => with(&|_| 0.0, indicators),
        FillNulls::Value(v) => with(&|_| v, indicators),
    };
    Ok(Some(MissingCounts {
        columns: names.into_iter().zip(missing).collect(),
        rows,
    }))
}

/// With «positive_label», one pass over the labels (mapped to 0/1) checks that the value
/// occurs at all: a misspelt value would otherwise train on labels that are all 0.
pub(crate) fn check_positive_label_seen(
    config: &TrainConfig,
    source: &Arc<dyn Source>,
) -> Result<()> {
    let Some(positive) = &config.columns.positive_label else {
        return Ok(());
    };
    let stats = dataset_stats(source.clone(), config.num_readers)?;
    if stats.label.count > 0 && stats.label.max > 0.0 {
        return Ok(());
    }
    Err(Error::config(
        "positive_label",
        format!(
            "`{positive}` never occurs in label column `{}` ({} rows read)",
            source.schema().label,
            stats.rows
        ),
    ))
}

/// With «drop_null_labels», the rows it left out: the training data's rows without the
/// option, less those with it (one more open of the footers; the null counts come from the
/// footers' statistics, or from reading the label column where a writer stored none).
pub(crate) fn count_dropped_labels(
    config: &TrainConfig,
    source: &Arc<dyn Source>,
) -> Result<Option<super::PrepareEvent>> {
    if !config.columns.drop_null_labels {
        return Ok(None);
    }
    let mut all = config.clone();
    all.columns.drop_null_labels = false;
    let (every_row, _) = all.open_source_skipping()?;
    let rows = source.num_rows();
    Ok(Some(super::PrepareEvent::NullLabelsDropped {
        dropped: every_row.num_rows().saturating_sub(rows),
        rows,
    }))
}
