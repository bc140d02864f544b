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

    /// Adds row-major features (`rows × d`) and their targets. Two passes over the rows in
    /// memory order (sums, then squared deviations from this block's means), each running
    /// across the columns of a row, so the block is read sequentially and the inner loops
    /// vectorise; the block's moments are then merged like any slice's.
    pub fn add_rows(&mut self, features: &[f32], targets: &[f32]) {
        let d = self.features.len();
        if d > 0 && !targets.is_empty() {
            let mut count = vec![0u64; d];
            let mut sum = vec![0f64; d];
            let mut min = vec![f64::INFINITY; d];
            let mut max = vec![f64::NEG_INFINITY; d];
            for row in features.chunks_exact(d) {
                for (j, &v) in row.iter().enumerate() {
                    let v = f64::from(v);
                    let finite = v.is_finite();
                    count[j] += u64::from(finite);
                    sum[j] += if finite { v } else { 0.0 };
                    min[j] = if finite { min[j].min(v) } else { min[j] };
                    max[j] = if finite { max[j].max(v) } else { max[j] };
                }
            }
            let mean: Vec<f64> = sum
                .iter()
                .zip(&count)
                .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
                .collect();
            let mut m2 = vec![0f64; d];
            for row in features.chunks_exact(d) {
                for (j, &v) in row.iter().enumerate() {
                    let delta = f64::from(v) - mean[j];
                    m2[j] += if delta.is_finite() {
                        delta * delta
                    } else {
                        0.0
                    };
                }
            }
            let n = targets.len() as u64;
            for (j, moments) in self.features.iter_mut().enumerate() {
                moments.merge(&Moments {
                    count: count[j],
                    mean: mean[j],
                    m2: m2[j],
                    min: min[j],
                    max: max[j],
                    nulls: 0,
                    non_finite: n - count[j],
                });
            }
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
    fn row_major_blocks_give_the_per_column_statistics() {
        let d = 3;
        let rows: Vec<[f32; 3]> = (0..500)
            .map(|i| [i as f32, (i % 7) as f32 * -0.5, 1e4 + (i as f32).sqrt()])
            .collect();
        let mut flat: Vec<f32> = rows.iter().flatten().copied().collect();
        flat[4] = f32::NAN; // row 1, column 1
        let targets = vec![0.5f32; 500];
        let mut acc = StatsAccumulator::new(d);
        for (x, y) in flat.chunks(d * 64).zip(targets.chunks(64)) {
            acc.add_rows(x, y);
        }
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let stats = acc.finish(&names, "y");
        for (j, (name, b)) in names.iter().zip(&stats.features).enumerate() {
            let mut direct = Moments::default();
            direct.add(flat.iter().skip(j).step_by(d).map(|&v| f64::from(v)));
            let a = direct.finish(name);
            assert_eq!(
                (a.count, a.non_finite, a.min, a.max),
                (b.count, b.non_finite, b.min, b.max)
            );
            assert!((a.mean - b.mean).abs() <= 1e-12 * a.mean.abs().max(1.0));
            assert!((a.std - b.std).abs() <= 1e-9 * a.std.max(1.0));
        }
        assert_eq!(stats.features[1].non_finite, 1);
        assert_eq!(stats.rows, 500);
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
