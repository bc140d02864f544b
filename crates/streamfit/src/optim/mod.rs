//! Optimizers: turn an averaged gradient into a parameter update.
//!
//! Layer 1: works on flat f32 vectors, knows nothing of models, data or threads. One
//! [`Optimizer`] covers SGD, momentum, Nesterov momentum, Adam and AdamW, with L2 or decoupled
//! weight decay, a learning-rate schedule with linear warm-up, and gradient-norm clipping. Its
//! [`OptimizerState`] (the step count and the moment vectors) is plain data, saved in
//! checkpoints and model files so a resumed run continues the same trajectory bit for bit.
//!
//! Conventions (PyTorch's, so published hyper-parameters carry over):
//! - momentum: v ← μ·v + g, p ← p − lr·v; Nesterov: p ← p − lr·(g + μ·v).
//! - Adam: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − lr·m̂ / (√v̂ + ε) with the bias
//!   corrections m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
//! - `weight_decay` λ: for SGD, momentum, Nesterov and Adam an L2 term, g ← g + λ·p; for AdamW
//!   decoupled, p ← p − lr·λ·p before the Adam step. Either way only weights decay, never
//!   biases (the model says which entries are biases).
//! - Clipping scales the whole gradient by c/‖g‖ when its norm exceeds c, before weight decay.
//!
//! Files: `config.rs` (the settings and the learning-rate schedule), `rule.rs` (the update
//! rules), `optimizer.rs` (the [`Optimizer`] that clips, decays and applies a rule, and its
//! state).
//!
//! Adding an optimizer takes two places:
//! 1. `rule.rs`: a variant of [`OptimizerKind`] (its serde name is the lowercase variant
//!    name), its moment vectors in [`OptimizerKind::num_moments`], and its update in
//!    `OptimizerKind::apply`. (A new hyper-parameter also gets a field, default and check in
//!    [`OptimizerConfig`].)
//! 2. The front end's list of choices: the command line's `«optimizer»` values.

mod config;
mod optimizer;
mod rule;

pub use self::config::{LrSchedule, OptimizerConfig};
pub use self::optimizer::{Optimizer, OptimizerState};
pub use self::rule::OptimizerKind;
