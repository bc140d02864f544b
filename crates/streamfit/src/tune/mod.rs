//! `tune`: measure, then recommend a batch size and a prefetch depth.
//!
//! Three measurements share the time budget (see `docs/tuning.md` for the model):
//!
//! 1. **Time per iteration** for each batch size b: a short stretch of real training (the same
//!    pipeline and gradient code as `train`, timed after two warm-up steps), fitted by weighted
//!    least squares to T(b) = τ_f + τ_d·b (weights 1/T², so every b counts by its relative
//!    error; the reported R² is of that weighted fit).
//! 2. **Gradient noise** at the parameters reached after a short warm-up: per-sample gradients
//!    of a shuffled sample give tr(Σ) and an unbiased |G|², hence the critical batch size
//!    B_noise = tr(Σ)/|G|² (McCandlish et al. 2018). Mini-batches of disjoint rows drawn from
//!    the sample (without replacement, as an epoch draws them) show the variance of the
//!    mini-batch gradient falling like (1 − b/n)·tr(Σ)/b; batches drawn with replacement are
//!    reported next to them for comparison.
//! 3. **Prefetch depth and readers**: rows/s and stall for each combination, repeated and
//!    interleaved across the combinations; the recommendation is the smallest depth (then
//!    fewest readers) whose median is within the best setting's min–max spread, or the
//!    defaults when no setting's spread lies wholly below the best's (no measurable
//!    difference).
//!
//! With K(b) = N_iter + C_var·(1/b − 1/N) iterations to a given loss (C_var/N_iter =
//! B_noise; the 1/N term is the finite-population correction of sampling without
//! replacement), total time K(b)·T(b) is smallest at
//! b_opt = sqrt(B_noise·τ_f / ((1 − B_noise/N)·τ_d)).
//!
//! The runs are built from one [`TrainConfig`](crate::config::TrainConfig), resolved like
//! `train`'s ([`crate::run::count_classes`]). This module prints nothing (the command line
//! prints the tables) and keeps no parameters: every timed stretch starts from a copy of the
//! warm-up's.

mod noise;
mod result;
mod stretch;
mod sweep;
mod tuner;

pub use self::result::{BatchTiming, Noise, PrefetchRun, SweepVerdict, TuneResult, VariancePoint};
pub use self::sweep::PrefetchSample;
pub use self::tuner::{TuneConfig, TuneEvent, tune, tune_with_events};
