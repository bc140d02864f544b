//! The per-epoch plan: the order in which units are read.
//!
//! The plan is a pure function of (number of units, shuffle setting, seed, epoch), so every
//! reader count and every run with the same seed reads units in the same order.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Independent random streams derived from one user seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RngStream {
    /// Unit order of an epoch.
    Plan = 1,
    /// Row choices of the shuffle buffer in an epoch.
    ShuffleBuffer = 2,
    /// Parameter initialisation.
    Init = 3,
    /// Synthetic data (`generate`).
    Generate = 4,
    /// The units held out as validation data (`valid_fraction`).
    Holdout = 5,
    /// How batches are split among the shuffle lanes in an epoch (`shuffle_lanes`).
    Lanes = 6,
}

/// A seeded generator for one stream of one epoch.
///
/// The three inputs are mixed with SplitMix64 so neighbouring seeds and epochs give unrelated
/// streams.
pub fn rng_for(seed: u64, epoch: u64, stream: RngStream) -> Xoshiro256PlusPlus {
    let mut state = seed;
    let mut mixed = splitmix64(&mut state);
    mixed ^= epoch.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let mut state = mixed;
    let mut mixed = splitmix64(&mut state);
    mixed ^= (stream as u64).wrapping_mul(0xA076_1D64_78BD_642F);
    Xoshiro256PlusPlus::seed_from_u64(mixed)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How rows are ordered within an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shuffle {
    /// Units and rows in file order.
    Off,
    /// Units permuted and rows mixed through the shuffle buffer, from this seed.
    Seeded(u64),
}

/// The unit order for one epoch: the positions `0..num_units` in file order, or permuted by
/// the RNG seeded from `(seed, epoch)`.
pub fn epoch_plan(num_units: usize, shuffle: Shuffle, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..num_units).collect();
    if let Shuffle::Seeded(seed) = shuffle {
        order.shuffle(&mut rng_for(seed, epoch, RngStream::Plan));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_a_permutation_that_depends_on_epoch_and_seed() {
        let a = epoch_plan(50, Shuffle::Seeded(7), 0);
        let b = epoch_plan(50, Shuffle::Seeded(7), 1);
        let c = epoch_plan(50, Shuffle::Seeded(8), 0);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, epoch_plan(50, Shuffle::Seeded(7), 0));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(epoch_plan(5, Shuffle::Off, 3), vec![0, 1, 2, 3, 4]);
    }
}
