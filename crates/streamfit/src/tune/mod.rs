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
//!    B_noise = tr(Σ)/|G|² (McCandlish et al. 2018). Mini-batches drawn from the sample show the
//!    variance of the mini-batch gradient falling like tr(Σ)/b: the fitted log-log slope is
//!    reported (−1 in theory).
//! 3. **Prefetch depth and readers**: rows/s and stall for each combination; the recommendation
//!    is the smallest depth within 2% of the best throughput.
//!
//! With K(b) = N_iter + C_var/b iterations to a given loss (C_var/N_iter = B_noise), total time
//! K(b)·T(b) is smallest at b_opt = sqrt(B_noise·τ_f/τ_d).
//!
//! The runs are built from one [`TrainConfig`](crate::config::TrainConfig), resolved like
//! `train`'s ([`crate::run::count_classes`]). This module prints nothing (the command line
//! prints the tables) and keeps no parameters: every timed stretch starts from a copy of the
//! warm-up's.

mod noise;
mod result;
mod stretch;
mod tuner;

pub use self::result::{BatchTiming, Noise, PrefetchRun, TuneResult};
pub use self::tuner::{TuneConfig, TuneEvent, tune, tune_with_events};
