//! The scale check: whether the raw features are on scales plain SGD cannot train on, so that
//! a run standardises by default ([`Standardize::Auto`](crate::train::Standardize)).
//!
//! Mixed scales are judged from each numeric feature's range (min and max), taken from
//! metadata where the source has it for every file ([`Source::feature_ranges`]: the Parquet
//! footer's column statistics), else from the first unit's values (one unit read, never an
//! extra pass over the data, and the same whatever the reader count). The features need
//! standardising when their ranges differ by more than a factor of [`SCALE_FACTOR`], or when a
//! column's centre lies more than [`SCALE_FACTOR`] of its ranges from zero (a timestamp near
//! 1.7e9 s whose values span days). One-hot, hashed and missing-value indicator features are
//! 0/1 by construction: they are left out of the check (and never standardised).
//! [`decide_standardize`] turns «standardize» and the check into a decision, with the
//! large-magnitude columns (those far off centre) to centre in f64 as they are decoded;
//! [`resolve_standardization`] computes the trainer's [`Standardization`] (one statistics
//! pass).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use crate::config::TrainConfig;
use crate::data::RowBlock;
use crate::data::schema::{ColumnCentre, indicator_name};
use crate::data::source::shard::Preprocessing;
use crate::data::source::{ChunkSink, Source};
use crate::error::Result;
use crate::inspect::dataset_stats;
use crate::train::{Standardization, Standardize};

use super::event::PrepareEvent;

/// How far apart (as a factor) two features' ranges, or a column's centre and its range, may
/// be before the features are standardised by default.
pub const SCALE_FACTOR: f64 = 100.0;

/// Rows per block of the first-unit read.
const CHECK_BLOCK_ROWS: usize = 4_096;

/// Where the ranges of the scale check came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleEvidence {
    /// The column statistics every file's metadata (the Parquet footer) stores.
    FileStatistics,
    /// The values of the dataset's first unit.
    FirstUnit,
    /// `convert`'s verdict on the source of a shard dataset it encoded; the ranges shown are
    /// the stored rows' (their first unit's).
    Conversion,
}

/// The smallest and largest value of one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRange {
    /// The feature.
    pub name: String,
    pub min: f64,
    pub max: f64,
}

impl ColumnRange {
    /// max − min.
    pub fn range(&self) -> f64 {
        self.max - self.min
    }

    /// The middle of the range.
    pub fn centre(&self) -> f64 {
        self.min / 2.0 + self.max / 2.0
    }

    /// True when the centre lies more than [`SCALE_FACTOR`] ranges from zero (a constant
    /// column away from zero too).
    fn is_off_centre(&self) -> bool {
        self.centre().abs() > SCALE_FACTOR * self.range()
    }
}

/// What the scale check found: the features whose ranges are narrowest and widest (among
/// those that vary), and every feature far off centre. Mixed when
/// [`ScaleCheck::is_mixed`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleCheck {
    pub evidence: ScaleEvidence,
    /// The varying feature with the smallest range.
    pub narrowest: Option<ColumnRange>,
    /// The varying feature with the largest range.
    pub widest: Option<ColumnRange>,
    /// The features whose centre lies more than [`SCALE_FACTOR`] ranges from zero.
    pub off_centre: Vec<ColumnRange>,
}

impl ScaleCheck {
    /// Judges `ranges` (the checked features only).
    pub fn judge(evidence: ScaleEvidence, ranges: Vec<ColumnRange>) -> Self {
        let varying = || ranges.iter().filter(|c| c.range() > 0.0);
        let by_range = |a: &&ColumnRange, b: &&ColumnRange| a.range().total_cmp(&b.range());
        ScaleCheck {
            evidence,
            narrowest: varying().min_by(by_range).cloned(),
            widest: varying().max_by(by_range).cloned(),
            off_centre: ranges
                .iter()
                .filter(|c| c.is_off_centre())
                .cloned()
                .collect(),
        }
    }

    /// True when the ranges differ by more than [`SCALE_FACTOR`] or a feature is far off
    /// centre: training on raw values would be dominated by one column.
    pub fn is_mixed(&self) -> bool {
        let ranges_differ = match (&self.narrowest, &self.widest) {
            (Some(narrow), Some(wide)) => wide.range() > SCALE_FACTOR * narrow.range(),
            _ => false,
        };
        ranges_differ || !self.off_centre.is_empty()
    }
}

/// The features of `config` that are 0/1 by construction (one-hot or hashed categorical
/// features, missing-value indicators): never checked, never standardised. Those of its
/// column settings, and of the trainer's (which hold a shard dataset's stored encoding).
pub fn encoded_features(config: &TrainConfig) -> Vec<String> {
    let mut names = Vec::new();
    for (categorical, missing) in [
        (&config.columns.categorical, &config.columns.missing),
        (&config.trainer.categorical, &config.trainer.missing),
    ] {
        let encoded = categorical
            .feature_names()
            .into_iter()
            .chain(missing.indicators.iter().map(|c| indicator_name(c)));
        for name in encoded {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Whether a run standardises, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardizeDecision {
    /// The run standardises its features.
    pub standardize: bool,
    /// «standardize» auto found mixed scales: the event that says so.
    pub mixed: Option<PrepareEvent>,
    /// The columns far off centre that the source decodes ([`Source::centrable_columns`]),
    /// to centre in f64 as they are decoded (standardising only).
    pub centre: Vec<ColumnCentre>,
}

/// Whether a run of `config` standardises: always or never as «standardize» says, or, when
/// `auto`, when the scale check of `source` (the whole training data, before any is held
/// out) finds mixed scales; and, when it standardises Parquet columns, the columns the check
/// found far off centre, with the centres of their ranges. Rows stored encoded by `convert`
/// bring the source's verdict and centres ([`Source::stored_preprocessing`]): the run
/// decides as one on the source would.
pub fn decide_standardize(config: &TrainConfig, source: &Arc<dyn Source>) -> StandardizeDecision {
    let check = match config.standardize {
        Standardize::Never => None,
        _ => check_scales(source, &encoded_features(config)),
    };
    if let Some(stored) = source.stored_preprocessing() {
        return decide_stored(config.standardize, check, stored);
    }
    let (standardize, mixed) = match (config.standardize, check.as_ref()) {
        (Standardize::Always, _) => (true, None),
        (Standardize::Auto, Some(check)) if check.is_mixed() => {
            (true, Some(PrepareEvent::ScalesMixed(check.clone())))
        }
        _ => (false, None),
    };
    // The Parquet decoder centres scalar columns; shards hold rows already decoded, and
    // partition keys are no stored values.
    let centrable = source.centrable_columns();
    let centre = match check {
        Some(check) if standardize => check
            .off_centre
            .iter()
            .filter(|c| centrable.contains(&c.name))
            .map(|c| ColumnCentre {
                column: c.name.clone(),
                value: c.centre(),
            })
            .collect(),
        _ => Vec::new(),
    };
    StandardizeDecision {
        standardize,
        mixed,
        centre,
    }
}

/// The decision on rows `convert` stored encoded with `stored`: `auto` follows the source's
/// verdict, and the event shows the stored rows' check (evidence
/// [`ScaleEvidence::Conversion`]; a centred column found off centre still is shown at its
/// source's centre).
fn decide_stored(
    standardize: Standardize,
    check: Option<ScaleCheck>,
    stored: &Preprocessing,
) -> StandardizeDecision {
    let standardize_now = match standardize {
        Standardize::Always => true,
        Standardize::Never => false,
        Standardize::Auto => stored.scales_mixed,
    };
    let mixed = match (standardize, check) {
        (Standardize::Auto, Some(mut check)) if stored.scales_mixed => {
            check.evidence = ScaleEvidence::Conversion;
            for range in &mut check.off_centre {
                if let Some(c) = stored.centre.iter().find(|c| c.column == range.name) {
                    range.min += c.value;
                    range.max += c.value;
                }
            }
            Some(PrepareEvent::ScalesMixed(check))
        }
        _ => None,
    };
    StandardizeDecision {
        standardize: standardize_now,
        mixed,
        centre: if standardize_now {
            stored.centre.clone()
        } else {
            Vec::new()
        },
    }
}

/// The standardisation of `source`'s features (one statistics pass through `num_readers`
/// readers), with `encoded` features kept as they are (mean 0, std 1), and the event that
/// reports the pass.
pub fn resolve_standardization(
    source: &Arc<dyn Source>,
    num_readers: usize,
    encoded: &[String],
) -> Result<(Standardization, PrepareEvent)> {
    let started = Instant::now();
    let stats = dataset_stats(source.clone(), num_readers)?;
    let mut standardization = Standardization::from_stats(&stats);
    for (j, name) in source.schema().feature_names.iter().enumerate() {
        if encoded.contains(name) {
            standardization.mean[j] = 0.0;
            standardization.std[j] = 1.0;
        }
    }
    let event = PrepareEvent::Standardized {
        num_features: source.num_features(),
        rows: stats.rows,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((standardization, event))
}

/// Checks the scales of `source`'s features, leaving out those named in `skip` (encoded
/// 0/1 features). `None` when there is nothing to judge: no checked feature, no rows, or a
/// first unit that cannot be read (training then reports that error where it always has).
pub fn check_scales(source: &Arc<dyn Source>, skip: &[String]) -> Option<ScaleCheck> {
    let names = &source.schema().feature_names;
    let checked: Vec<usize> = (0..names.len())
        .filter(|&j| !skip.contains(&names[j]))
        .collect();
    if checked.is_empty() || source.units().is_empty() {
        return None;
    }
    let (evidence, ranges) = match source.feature_ranges() {
        Some(ranges) => (ScaleEvidence::FileStatistics, ranges),
        None => (
            ScaleEvidence::FirstUnit,
            first_unit_ranges(source.as_ref())?,
        ),
    };
    let ranges = checked
        .iter()
        .filter_map(|&j| {
            let (min, max) = ranges[j];
            (min.is_finite() && max.is_finite()).then(|| ColumnRange {
                name: names[j].clone(),
                min,
                max,
            })
        })
        .collect();
    Some(ScaleCheck::judge(evidence, ranges))
}

/// The min and max of each feature over the first unit's finite values (infinite bounds for
/// a feature without any); `None` when the unit cannot be read.
fn first_unit_ranges(source: &dyn Source) -> Option<Vec<(f64, f64)>> {
    let d = source.num_features();
    let mut sink = RangeSink {
        ranges: vec![(f64::INFINITY, f64::NEG_INFINITY); d],
        spare: Some(RowBlock::with_capacity(d, CHECK_BLOCK_ROWS)),
    };
    source.read_unit(0, CHECK_BLOCK_ROWS, &mut sink).ok()?;
    Some(sink.ranges)
}

/// Folds each block's values into per-feature ranges, recycling one block.
struct RangeSink {
    ranges: Vec<(f64, f64)>,
    spare: Option<RowBlock>,
}

impl ChunkSink for RangeSink {
    fn empty_block(&mut self) -> RowBlock {
        self.spare.take().unwrap_or_default()
    }

    fn send(&mut self, mut block: RowBlock) -> ControlFlow<()> {
        let d = self.ranges.len();
        if d > 0 {
            for row in block.features().chunks_exact(d) {
                for (range, &v) in self.ranges.iter_mut().zip(row) {
                    if v.is_finite() {
                        let v = f64::from(v);
                        *range = (range.0.min(v), range.1.max(v));
                    }
                }
            }
        }
        block.reset(d);
        self.spare = Some(block);
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(name: &str, min: f64, max: f64) -> ColumnRange {
        ColumnRange {
            name: name.to_string(),
            min,
            max,
        }
    }

    #[test]
    fn ranges_a_hundredfold_apart_are_mixed_and_closer_ones_are_not() {
        let judge = |ranges| ScaleCheck::judge(ScaleEvidence::FirstUnit, ranges);
        let mixed = judge(vec![range("a", 0.0, 1.0), range("b", -5e5, 5e5)]);
        assert!(mixed.is_mixed());
        assert_eq!(mixed.narrowest.unwrap().name, "a");
        assert_eq!(mixed.widest.unwrap().name, "b");
        // 100 times exactly is not more than 100 times.
        assert!(!judge(vec![range("a", 0.0, 1.0), range("b", 0.0, 100.0)]).is_mixed());
        // A constant column at zero neither varies nor lies off centre.
        assert!(!judge(vec![range("a", 0.0, 1.0), range("c", 0.0, 0.0)]).is_mixed());
    }

    #[test]
    fn a_column_far_from_zero_for_its_range_is_mixed() {
        // A timestamp near 1.7e9 s spanning a day: its centre is ~2e4 ranges from zero.
        let ts = range("ts", 1.7e9, 1.7e9 + 86_400.0);
        let check = ScaleCheck::judge(ScaleEvidence::FileStatistics, vec![ts.clone()]);
        assert!(check.is_mixed());
        assert_eq!(check.off_centre, vec![ts]);
        // A centre 50 ranges out is fine.
        let near = range("x", 49.5, 50.5);
        assert!(!ScaleCheck::judge(ScaleEvidence::FirstUnit, vec![near]).is_mixed());
    }
}
