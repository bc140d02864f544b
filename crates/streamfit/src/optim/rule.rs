//! The update rules: [`OptimizerKind`], the moment vectors each keeps, and how each turns the
//! (clipped, L2-decayed) averaged gradient into a step.
//!
//! This is the one file an added optimizer changes (see the module docs of `optim`). Clipping,
//! L2 decay, the learning-rate schedule and the step count are the [`Optimizer`]'s, shared by
//! every rule.
//!
//! [`Optimizer`]: super::Optimizer

use serde::{Deserialize, Serialize};

use super::config::OptimizerConfig;
use super::optimizer::OptimizerState;

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// p ← p − lr·g.
    Sgd,
    /// Heavy-ball momentum.
    Momentum,
    /// Nesterov momentum.
    Nesterov,
    /// Adam with L2 weight decay.
    Adam,
    /// Adam with decoupled weight decay.
    AdamW,
}

impl OptimizerKind {
    /// The rule's usual base learning rate, used when none is given: 0.1 for SGD and the
    /// momentum rules, 0.001 for Adam and AdamW (PyTorch's `torch.optim.Adam` default).
    pub fn default_learning_rate(self) -> f32 {
        match self {
            OptimizerKind::Sgd | OptimizerKind::Momentum | OptimizerKind::Nesterov => 0.1,
            OptimizerKind::Adam | OptimizerKind::AdamW => 0.001,
        }
    }

    /// Moment vectors the rule keeps, each one value per parameter: none for SGD, the
    /// velocity for momentum, the first and second moments for Adam.
    pub fn num_moments(self) -> usize {
        match self {
            OptimizerKind::Sgd => 0,
            OptimizerKind::Momentum | OptimizerKind::Nesterov => 1,
            OptimizerKind::Adam | OptimizerKind::AdamW => 2,
        }
    }

    /// True when the rule applies weight decay itself (decoupled), so the optimizer must not
    /// add it to the gradient as an L2 term.
    pub fn decouples_weight_decay(self) -> bool {
        self == OptimizerKind::AdamW
    }

    /// One step of the rule with learning rate `lr`: `state.step` already counts this step,
    /// and `state` holds [`OptimizerKind::num_moments`] moment vectors.
    pub(super) fn apply(
        self,
        cfg: &OptimizerConfig,
        lr: f32,
        params: &mut [f32],
        grad: &[f32],
        decays: &[bool],
        state: &mut OptimizerState,
    ) {
        match self {
            OptimizerKind::Sgd => sgd(lr, params, grad),
            OptimizerKind::Momentum => momentum(cfg, lr, params, grad, &mut state.first, false),
            OptimizerKind::Nesterov => momentum(cfg, lr, params, grad, &mut state.first, true),
            OptimizerKind::Adam => adam(cfg, lr, 0.0, params, grad, decays, state),
            OptimizerKind::AdamW => {
                adam(cfg, lr, lr * cfg.weight_decay, params, grad, decays, state)
            }
        }
    }
}

/// p ← p − lr·g.
fn sgd(lr: f32, params: &mut [f32], grad: &[f32]) {
    for (p, g) in params.iter_mut().zip(grad) {
        *p -= lr * g;
    }
}

/// v ← μ·v + g, then p ← p − lr·v, or p ← p − lr·(g + μ·v) with Nesterov's look-ahead.
fn momentum(
    cfg: &OptimizerConfig,
    lr: f32,
    params: &mut [f32],
    grad: &[f32],
    velocity: &mut [f32],
    nesterov: bool,
) {
    let mu = cfg.momentum;
    for ((p, g), v) in params.iter_mut().zip(grad).zip(velocity) {
        *v = mu * *v + g;
        let direction = if nesterov { g + mu * *v } else { *v };
        *p -= lr * direction;
    }
}

/// Adam with bias corrections; `decoupled` = lr·λ shrinks the weights first (AdamW; 0 for
/// Adam).
fn adam(
    cfg: &OptimizerConfig,
    lr: f32,
    decoupled: f32,
    params: &mut [f32],
    grad: &[f32],
    decays: &[bool],
    state: &mut OptimizerState,
) {
    let (b1, b2, eps) = (cfg.beta1, cfg.beta2, cfg.eps);
    let t = i32::try_from(state.step).unwrap_or(i32::MAX);
    let c1 = (1.0 - f64::from(b1).powi(t)) as f32;
    let c2 = (1.0 - f64::from(b2).powi(t)) as f32;
    let moments = state.first.iter_mut().zip(&mut state.second);
    for (((p, g), (m, v)), decays) in params.iter_mut().zip(grad).zip(moments).zip(decays) {
        if *decays {
            *p -= decoupled * *p;
        }
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Optimizer;
    use super::*;

    fn optimizer(kind: OptimizerKind, n: usize) -> Optimizer {
        let config = OptimizerConfig {
            kind,
            learning_rate: 0.5,
            ..OptimizerConfig::default()
        };
        Optimizer::new(config, vec![true; n], 100, None)
    }

    #[test]
    fn sgd_steps_against_the_gradient() {
        let mut p = vec![1.0, -1.0];
        optimizer(OptimizerKind::Sgd, 2).step(&mut p, &mut [2.0, -4.0]);
        assert_eq!(p, vec![0.0, 1.0]);
    }

    #[test]
    fn momentum_accumulates_and_nesterov_looks_ahead() {
        let mut opt = optimizer(OptimizerKind::Momentum, 1);
        let mut p = vec![0.0];
        opt.step(&mut p, &mut [1.0]); // v = 1, p = −0.5
        opt.step(&mut p, &mut [1.0]); // v = 1.9, p = −0.5 − 0.95
        assert!((p[0] + 1.45).abs() < 1e-6, "{p:?}");
        let mut opt = optimizer(OptimizerKind::Nesterov, 1);
        let mut p = vec![0.0];
        opt.step(&mut p, &mut [1.0]); // v = 1, p = −0.5·(1 + 0.9)
        assert!((p[0] + 0.95).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn adam_first_step_moves_every_parameter_by_the_learning_rate() {
        let mut opt = optimizer(OptimizerKind::Adam, 3);
        let mut p = vec![0.0, 0.0, 0.0];
        opt.step(&mut p, &mut [1e-3, -20.0, 5.0]);
        for (got, sign) in p.iter().zip([-1.0f32, 1.0, -1.0]) {
            assert!((got - sign * 0.5).abs() < 1e-4, "{p:?}");
        }
        assert_eq!(opt.state().step, 1);
    }

    #[test]
    fn weight_decay_spares_biases_and_adamw_decouples_it() {
        let config = OptimizerConfig {
            kind: OptimizerKind::Sgd,
            learning_rate: 1.0,
            weight_decay: 0.1,
            ..OptimizerConfig::default()
        };
        let mut opt = Optimizer::new(config.clone(), vec![true, false], 10, None);
        let mut p = vec![2.0, 2.0];
        opt.step(&mut p, &mut [0.0, 0.0]);
        assert_eq!(p, vec![1.8, 2.0]);
        let adamw = OptimizerConfig {
            kind: OptimizerKind::AdamW,
            ..config
        };
        let mut opt = Optimizer::new(adamw, vec![true, false], 10, None);
        let mut p = vec![2.0, 2.0];
        opt.step(&mut p, &mut [0.0, 0.0]); // zero gradient: only the decoupled decay moves p
        assert_eq!(p, vec![1.8, 2.0]);
    }
}
