//! Per-column statistics for `inspect --stats` and `train --standardize`.
//!
//! [`Moments`] accumulates count, mean, M2 (sum of squared deviations), min and max of the
//! finite values of one column, plus the nulls and non-finite values it skipped. Values arrive
//! in slices; each slice is summarised exactly (two passes: its mean, then its squared
//! deviations) and merged with Chan's parallel formula, so the result is accurate to about
//! 1e-12 relative and depends only on the slice boundaries, which the sources fix (units,
//! then blocks of at most a fixed number of rows), never on thread count or timing.

use serde::{Deserialize, Serialize};

/// Running statistics of one column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    nulls: u64,
    non_finite: u64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            nulls: 0,
            non_finite: 0,
        }
    }
}

impl Moments {
    /// Adds a slice of values; NaN and infinities are counted, not added.
    pub fn add(&mut self, values: impl Iterator<Item = f64> + Clone) {
        let mut part = Moments::default();
        let mut sum = 0.0;
        for v in values.clone() {
            if v.is_finite() {
                part.count += 1;
                sum += v;
                part.min = part.min.min(v);
                part.max = part.max.max(v);
            } else {
                part.non_finite += 1;
            }
        }
        if part.count > 0 {
            part.mean = sum / part.count as f64;
            part.m2 = values
                .filter(|v| v.is_finite())
                .map(|v| (v - part.mean) * (v - part.mean))
                .sum();
        }
        self.merge(&part);
    }

    /// Counts `n` nulls.
    pub fn add_nulls(&mut self, n: u64) {
        self.nulls += n;
    }

    /// Merges another accumulator into this one (Chan et al.).
    pub fn merge(&mut self, other: &Moments) {
        self.nulls += other.nulls;
        self.non_finite += other.non_finite;
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            let (nulls, non_finite) = (self.nulls, self.non_finite);
            *self = Moments {
                nulls,
                non_finite,
                ..*other
            };
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        let (na, nb) = (self.count as f64, other.count as f64);
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The finished statistics of column `name`.
    pub fn finish(&self, name: &str) -> ColumnStats {
        let defined = self.count > 0;
        ColumnStats {
            name: name.to_string(),
            count: self.count,
            nulls: self.nulls,
            non_finite: self.non_finite,
            mean: if defined { self.mean } else { f64::NAN },
            std: if defined {
                (self.m2 / self.count as f64).sqrt()
            } else {
                f64::NAN
            },
            min: if defined { self.min } else { f64::NAN },
            max: if defined { self.max } else { f64::NAN },
        }
    }
}

/// Statistics of one column: finite values only in count, mean, std (population), min, max.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// Column (or list element, `name[i]`) name.
    pub name: String,
    /// Finite values.
    pub count: u64,
    /// Nulls.
    pub nulls: u64,
    /// NaN and infinite values.
    pub non_finite: u64,
    /// Mean of the finite values (NaN when there are none).
    pub mean: f64,
    /// Population standard deviation of the finite values.
    pub std: f64,
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
}

/// Statistics of every used column of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Rows read.
    pub rows: u64,
    /// One entry per feature, in row order.
    pub features: Vec<ColumnStats>,
    /// The label column.
    pub label: ColumnStats,
}

impl DatasetStats {
    /// The first column (features in order, then the label) holding a null or a non-finite
    /// value: training on this data would stop there.
    pub fn first_problem(&self) -> Option<&ColumnStats> {
        self.features
            .iter()
            .chain(std::iter::once(&self.label))
            .find(|c| c.nulls > 0 || c.non_finite > 0)
    }
}

/// Accumulators for `d` features and the label.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsAccumulator {
    /// Rows seen.
    pub rows: u64,
    /// One per feature.
    pub features: Vec<Moments>,
    /// The label's.
    pub label: Moments,
}

impl StatsAccumulator {
    /// Empty accumulators for `d` features.
    pub fn new(d: usize) -> Self {
        StatsAccumulator {
            rows: 0,
            features: vec![Moments::default(); d],
            label: Moments::default(),
        }
    }

    /// Adds row-major features (`rows × d`) and their targets.
    pub fn add_rows(&mut self, features: &[f32], targets: &[f32]) {
        let d = self.features.len();
        for (j, m) in self.features.iter_mut().enumerate() {
            m.add(features.iter().skip(j).step_by(d).map(|&v| f64::from(v)));
        }
        self.label.add(targets.iter().map(|&v| f64::from(v)));
        self.rows += targets.len() as u64;
    }

    /// Merges another accumulator (of a later part of the data) into this one.
    pub fn merge(&mut self, other: &StatsAccumulator) {
        self.rows += other.rows;
        for (a, b) in self.features.iter_mut().zip(&other.features) {
            a.merge(b);
        }
        self.label.merge(&other.label);
    }

    /// The finished statistics, named after `feature_names` and `label`.
    pub fn finish(&self, feature_names: &[String], label: &str) -> DatasetStats {
        DatasetStats {
            rows: self.rows,
            features: self
                .features
                .iter()
                .zip(feature_names)
                .map(|(m, name)| m.finish(name))
                .collect(),
            label: self.label.finish(label),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_slices_match_a_direct_computation() {
        let values: Vec<f64> = (0..1000).map(|i| 1e6 + (i as f64 * 0.37).sin()).collect();
        let mut m = Moments::default();
        for chunk in values.chunks(77) {
            m.add(chunk.iter().copied());
        }
        m.add([f64::NAN, f64::INFINITY].into_iter());
        m.add_nulls(3);
        let s = m.finish("x");
        let mean = values.iter().sum::<f64>() / 1000.0;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 1000.0;
        assert_eq!(s.count, 1000);
        assert_eq!((s.nulls, s.non_finite), (3, 2));
        assert!((s.mean - mean).abs() / mean < 1e-14);
        assert!((s.std - var.sqrt()).abs() / var.sqrt() < 1e-9);
        assert_eq!(s.min, values.iter().copied().fold(f64::INFINITY, f64::min));
    }

    #[test]
    fn a_column_without_values_has_undefined_moments() {
        let mut m = Moments::default();
        m.add_nulls(2);
        let s = m.finish("empty");
        assert_eq!(s.count, 0);
        assert!(s.mean.is_nan() && s.std.is_nan());
    }
}
