//! Bounded counting of a column's values, for the vocabularies of categorical columns.
//!
//! [`SpaceSaving`] keeps at most a fixed number of counters (Metwally et al.'s Space-Saving):
//! a value already counted adds to its counter; a new one takes a free counter, or, when all
//! are taken, the smallest counter, whose count it inherits plus its own. Every value that
//! occurs more than (values seen) / capacity times is kept, with a count over-estimated by at
//! most that much, so the few most frequent values of a column come out right while its memory
//! stays bounded however many distinct values it has. [`DistinctEstimate`] estimates the
//! number of distinct values (exactly up to 4,096 of them, by their 64-bit hashes; beyond,
//! HyperLogLog with 4,096 registers: about 1.6% standard error).
//! [`CategoryCounts`] holds both for each categorical column, plus its nulls.
//!
//! The result depends only on the order values are added in; the vocabulary pass adds them
//! in unit order, row by row, so it is a pure function of the data. Nothing here reads data.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// The Space-Saving summary of a stream of values, with at most `capacity` counters.
#[derive(Debug, Clone)]
pub struct SpaceSaving {
    capacity: usize,
    /// Counter of each kept value.
    slots: HashMap<Box<str>, usize>,
    keys: Vec<Box<str>>,
    counts: Vec<u64>,
    /// Counters as a binary min-heap on count.
    heap: Vec<usize>,
    /// Where each counter is in `heap`.
    position: Vec<usize>,
}

impl SpaceSaving {
    /// An empty summary of at most `capacity` counters (at least 1).
    pub fn new(capacity: usize) -> Self {
        SpaceSaving {
            capacity: capacity.max(1),
            slots: HashMap::new(),
            keys: Vec::new(),
            counts: Vec::new(),
            heap: Vec::new(),
            position: Vec::new(),
        }
    }

    /// The counter budget.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters in use (at most the capacity).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True before the first value.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Counts `weight` occurrences of `value`.
    pub fn add(&mut self, value: &str, weight: u64) {
        if let Some(&slot) = self.slots.get(value) {
            self.counts[slot] += weight;
            self.sift_down(self.position[slot]);
            return;
        }
        if self.keys.len() < self.capacity {
            let slot = self.keys.len();
            self.keys.push(value.into());
            self.counts.push(weight);
            self.position.push(self.heap.len());
            self.heap.push(slot);
            self.slots.insert(value.into(), slot);
            self.sift_up(self.heap.len() - 1);
            return;
        }
        let slot = self.heap[0];
        self.slots.remove(&self.keys[slot]);
        self.keys[slot] = value.into();
        self.slots.insert(value.into(), slot);
        self.counts[slot] += weight;
        self.sift_down(0);
    }

    /// The `k` values with the largest counts, largest first, ties by value (byte order).
    pub fn top(&self, k: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(&str, u64)> = self
            .keys
            .iter()
            .zip(&self.counts)
            .map(|(key, &count)| (&**key, count))
            .collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.into_iter()
            .take(k)
            .map(|(key, count)| (key.to_string(), count))
            .collect()
    }

    fn less(&self, a: usize, b: usize) -> bool {
        self.counts[self.heap[a]] < self.counts[self.heap[b]]
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.position[self.heap[a]] = a;
        self.position[self.heap[b]] = b;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(i, parent) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (left, right) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if left < self.heap.len() && self.less(left, smallest) {
                smallest = left;
            }
            if right < self.heap.len() && self.less(right, smallest) {
                smallest = right;
            }
            if smallest == i {
                return;
            }
            self.swap(i, smallest);
            i = smallest;
        }
    }
}

/// HyperLogLog registers: 2^12.
const REGISTER_BITS: u32 = 12;

/// Distinct values counted exactly (by hash) up to this many.
const EXACT_LIMIT: usize = 1 << REGISTER_BITS;

/// An estimate of the number of distinct values of a stream: exact while there are at most
/// [`EXACT_LIMIT`] (a set of their 64-bit hashes, at most 64 KiB), else HyperLogLog with 4,096
/// registers (4 KiB).
#[derive(Debug, Clone)]
pub struct DistinctEstimate {
    registers: Vec<u8>,
    /// The hashes seen, until there are more than [`EXACT_LIMIT`].
    exact: Option<HashSet<u64>>,
}

impl Default for DistinctEstimate {
    fn default() -> Self {
        DistinctEstimate {
            registers: vec![0; 1 << REGISTER_BITS],
            exact: Some(HashSet::new()),
        }
    }
}

impl DistinctEstimate {
    /// Records one occurrence of `value`.
    pub fn add(&mut self, value: &str) {
        // SipHash with fixed keys: the same estimate on every run.
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        let hash = hasher.finish();
        if let Some(seen) = &mut self.exact {
            seen.insert(hash);
            if seen.len() > EXACT_LIMIT {
                self.exact = None;
            }
        }
        let register = (hash >> (64 - REGISTER_BITS)) as usize;
        let rest = hash << REGISTER_BITS;
        let rank = (rest.leading_zeros() + 1).min(64 - REGISTER_BITS + 1) as u8;
        let slot = &mut self.registers[register];
        *slot = (*slot).max(rank);
    }

    /// The estimated number of distinct values.
    pub fn estimate(&self) -> u64 {
        if let Some(seen) = &self.exact {
            return seen.len() as u64;
        }
        let m = self.registers.len() as f64;
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            // Small ranges: linear counting.
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }
}

/// What the vocabulary pass counted of one categorical column.
#[derive(Debug, Clone)]
pub struct ColumnCounts {
    /// The column.
    pub column: String,
    /// Its most frequent values.
    pub values: SpaceSaving,
    /// Its distinct values, estimated.
    pub distinct: DistinctEstimate,
    /// Its nulls.
    pub nulls: u64,
}

impl ColumnCounts {
    /// Counts `weight` occurrences of `value`.
    pub fn add(&mut self, value: &str, weight: u64) {
        self.values.add(value, weight);
        self.distinct.add(value);
    }
}

/// The counts of every categorical column of a dataset, each with a sketch of `capacity`
/// counters.
#[derive(Debug, Clone)]
pub struct CategoryCounts {
    capacity: usize,
    /// One per column, in the order the columns were first counted.
    pub columns: Vec<ColumnCounts>,
}

impl CategoryCounts {
    /// No counts yet; each column's sketch will have `capacity` counters.
    pub fn new(capacity: usize) -> Self {
        CategoryCounts {
            capacity,
            columns: Vec::new(),
        }
    }

    /// The counts of `column` (empty ones the first time).
    pub fn column(&mut self, column: &str) -> &mut ColumnCounts {
        match self.columns.iter().position(|c| c.column == column) {
            Some(i) => &mut self.columns[i],
            None => {
                self.columns.push(ColumnCounts {
                    column: column.to_string(),
                    values: SpaceSaving::new(self.capacity),
                    distinct: DistinctEstimate::default(),
                    nulls: 0,
                });
                self.columns.last_mut().expect("just pushed")
            }
        }
    }
}

/// The counters the vocabulary pass gives each column for a vocabulary of `k` values:
/// max(64·k, 4,096).
pub fn sketch_capacity(k: usize) -> usize {
    k.saturating_mul(64).max(4_096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_while_the_distinct_values_fit() {
        let mut s = SpaceSaving::new(8);
        for (value, n) in [("b", 3), ("a", 3), ("c", 5), ("d", 1)] {
            for _ in 0..n {
                s.add(value, 1);
            }
        }
        assert_eq!(
            s.top(3),
            [("c".into(), 5), ("a".into(), 3), ("b".into(), 3)],
            "largest first, ties by value"
        );
    }

    #[test]
    fn a_million_distinct_values_stay_within_the_counters_and_frequent_ones_survive() {
        let capacity = sketch_capacity(100);
        let mut s = SpaceSaving::new(capacity);
        let mut distinct = DistinctEstimate::default();
        let mut buffer = String::new();
        // Values 0..1,000,000 once each, and every 97th row one of ten heavy values.
        for i in 0..1_000_000u32 {
            buffer.clear();
            if i % 97 == 0 {
                buffer.push_str(&format!("heavy-{}", i % 10));
            } else {
                buffer.push_str(&format!("id-{i}"));
            }
            s.add(&buffer, 1);
            distinct.add(&buffer);
            assert!(s.len() <= capacity);
        }
        assert_eq!(s.len(), capacity);
        assert_eq!(s.slots.len(), capacity, "no value kept beyond the counters");
        let top: Vec<String> = s.top(10).into_iter().map(|(v, _)| v).collect();
        let mut heavy: Vec<String> = (0..10).map(|i| format!("heavy-{i}")).collect();
        heavy.sort();
        let mut found = top.clone();
        found.sort();
        assert_eq!(found, heavy, "{top:?}");
        // 989,691 distinct values (1M less the heavy rows, plus the 10 heavy values).
        let estimate = distinct.estimate() as f64;
        assert!((estimate / 989_701.0 - 1.0).abs() < 0.06, "{estimate}");
    }

    #[test]
    fn the_same_values_in_the_same_order_give_the_same_summary() {
        let run = || {
            let mut s = SpaceSaving::new(16);
            for i in 0..10_000u64 {
                s.add(&((i * 7919) % 113).to_string(), 1 + i % 3);
            }
            s.top(16)
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn small_distinct_counts_are_exact_and_large_ones_estimated_closely() {
        let mut d = DistinctEstimate::default();
        for i in 0..1000 {
            d.add(&(i % 300).to_string());
        }
        assert_eq!(d.estimate(), 300);
        for i in 0..20_000 {
            d.add(&i.to_string());
        }
        let e = d.estimate();
        assert!((19_400..=20_600).contains(&e), "{e}");
    }
}
