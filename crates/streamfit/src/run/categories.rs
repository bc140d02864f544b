//! Resolving «categorical», «max_categories» and «hash_buckets» into the encoding the
//! decoder applies ([`Categorical`] in the run's column spec), before the run's sources are
//! opened.
//!
//! The columns are resolved once (`auto` becomes the names it found, so a later file with
//! more string columns changes nothing). Hashing needs no pass. One-hot needs the vocabulary
//! pass: every unit of the training data is read, in unit order (never a unit held out by
//! «valid_fraction», nor a row «drop_null_labels» leaves out), and each categorical
//! column's values are counted into a bounded sketch ([`crate::data::sketch`],
//! [`sketch_capacity`] counters a column, whatever its number of distinct values); each
//! column's vocabulary is its «max_categories» most frequent values, ties broken by value.
//! The pass reads the units one after another on the calling thread, so the vocabulary is a
//! pure function of the data and the settings (never of «readers»). Nothing here decodes.

use std::time::Instant;

use crate::config::TrainConfig;
use crate::data::categorical::{Categorical, CategoricalColumns, Encoding, Vocabulary};
use crate::data::schema::MissingValues;
use crate::data::sketch::{CategoryCounts, sketch_capacity};
use crate::error::Result;

use super::PrepareEvent;
use super::fit::training_part;

/// What the vocabulary pass found of one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnVocabulary {
    /// The column.
    pub column: String,
    /// Values given a feature (at most «max_categories»).
    pub kept: usize,
    /// Distinct values (estimated).
    pub distinct: u64,
    /// Nulls.
    pub nulls: u64,
}

/// Sets `config.columns.categorical` from «categorical», «max_categories» and
/// «hash_buckets» (unchanged when «categorical» is unset: a caller may have set a fitted
/// encoding itself). Returns what was done, as an event.
pub(super) fn resolve_categories(config: &mut TrainConfig) -> Result<Option<PrepareEvent>> {
    if config.categorical == CategoricalColumns::None {
        return Ok(None);
    }
    let started = Instant::now();
    let mut probe = config.clone();
    probe.columns.categorical = Categorical {
        columns: config.categorical.clone(),
        encoding: Encoding::Unfitted,
    };
    probe.columns.missing = MissingValues::default();
    let source = training_part(config, probe.open_source()?)?;
    let columns = source.categorical_columns();
    if let Some(buckets) = config.hash_buckets {
        config.columns.categorical = Categorical {
            columns: CategoricalColumns::Named(columns.clone()),
            encoding: Encoding::Hash { buckets },
        };
        return Ok(Some(PrepareEvent::CategoriesHashed { columns, buckets }));
    }
    let mut counts = CategoryCounts::new(sketch_capacity(config.max_categories));
    if !columns.is_empty() {
        for unit in 0..source.units().len() {
            source.count_categories(unit, &mut counts)?;
        }
    }
    let mut vocabularies = Vec::with_capacity(columns.len());
    let mut found = Vec::with_capacity(columns.len());
    for column in &columns {
        let counted = counts.column(column);
        let values: Vec<String> = counted
            .values
            .top(config.max_categories)
            .into_iter()
            .map(|(value, _)| value)
            .collect();
        found.push(ColumnVocabulary {
            column: column.clone(),
            kept: values.len(),
            distinct: counted.distinct.estimate(),
            nulls: counted.nulls,
        });
        vocabularies.push(Vocabulary {
            column: column.clone(),
            values,
            null: counted.nulls > 0,
        });
    }
    config.columns.categorical = Categorical {
        columns: CategoricalColumns::Named(columns),
        encoding: Encoding::OneHot(vocabularies),
    };
    Ok(Some(PrepareEvent::CategoriesCounted {
        columns: found,
        rows: source.num_rows(),
        seconds: started.elapsed().as_secs_f64(),
    }))
}
