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

use serde::{Deserialize, Serialize};

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

/// How the learning rate changes over the run (after the warm-up).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// Multiplied by `gamma` every `every` steps.
    Step {
        /// Steps between decays.
        every: u64,
        /// Factor applied at each decay.
        gamma: f32,
    },
    /// Half a cosine, lr·½(1 + cos(π·t/T)), over the T steps after the warm-up.
    Cosine,
}

/// Settings of the optimizer (part of a run's fingerprint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// Update rule. By default SGD.
    pub kind: OptimizerKind,
    /// Base learning rate. By default 0.1.
    pub learning_rate: f32,
    /// μ of momentum and Nesterov. By default 0.9.
    pub momentum: f32,
    /// β₁ of Adam. By default 0.9.
    pub beta1: f32,
    /// β₂ of Adam. By default 0.999.
    pub beta2: f32,
    /// ε of Adam. By default 1e-8.
    pub eps: f32,
    /// λ: L2 (decoupled for AdamW) on the weights. By default 0.
    pub weight_decay: f32,
    /// Schedule after the warm-up. By default constant.
    pub schedule: LrSchedule,
    /// Steps of linear warm-up from lr/warmup to lr. By default 0.
    pub warmup_steps: u64,
    /// Largest gradient norm; larger gradients are scaled down to it. By default off.
    pub clip_grad_norm: Option<f32>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Sgd,
            learning_rate: 0.1,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            schedule: LrSchedule::Constant,
            warmup_steps: 0,
            clip_grad_norm: None,
        }
    }
}

impl OptimizerConfig {
    /// The first setting that cannot be used, as (flag, reason).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let positive = |x: f32| x.is_finite() && x > 0.0;
        let unit = |x: f32| x.is_finite() && (0.0..1.0).contains(&x);
        if !positive(self.learning_rate) {
            return Some((
                "lr",
                format!("must be a positive number, got {}", self.learning_rate),
            ));
        }
        if !unit(self.momentum) {
            return Some(("momentum", "must be in [0, 1)".into()));
        }
        if !unit(self.beta1) {
            return Some(("beta1", "must be in [0, 1)".into()));
        }
        if !unit(self.beta2) {
            return Some(("beta2", "must be in [0, 1)".into()));
        }
        if !positive(self.eps) {
            return Some(("eps", "must be a positive number".into()));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Some(("weight_decay", "must be a number ≥ 0".into()));
        }
        if let LrSchedule::Step { every, gamma } = self.schedule {
            if every == 0 {
                return Some(("lr_step_size", "must be at least 1".into()));
            }
            if !(gamma.is_finite() && gamma > 0.0 && gamma <= 1.0) {
                return Some(("lr_gamma", "must be in (0, 1]".into()));
            }
        }
        if self.clip_grad_norm.is_some_and(|c| !positive(c)) {
            return Some(("clip_grad_norm", "must be a positive number".into()));
        }
        None
    }

    /// The learning rate of step `step` (from 0) of a run of `total_steps` steps.
    pub fn learning_rate_at(&self, step: u64, total_steps: u64) -> f32 {
        let base = f64::from(self.learning_rate);
        let warmup = self.warmup_steps;
        if step < warmup {
            return (base * (step + 1) as f64 / warmup as f64) as f32;
        }
        let t = step - warmup;
        let rate = match self.schedule {
            LrSchedule::Constant => base,
            LrSchedule::Step { every, gamma } => {
                base * f64::from(gamma).powi(i32::try_from(t / every).unwrap_or(i32::MAX))
            }
            LrSchedule::Cosine => {
                let span = total_steps.saturating_sub(warmup).max(1) as f64;
                let progress = (t as f64 / span).min(1.0);
                base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        };
        rate as f32
    }
}

/// What the optimizer carries between steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Steps taken.
    pub step: u64,
    /// Momentum velocity, or Adam's first moment (empty for SGD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first: Vec<f32>,
    /// Adam's second moment (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub second: Vec<f32>,
}

/// Applies updates; see the module docs.
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    total_steps: u64,
    /// True for the entries weight decay applies to (weights, not biases).
    decays: Vec<bool>,
    state: OptimizerState,
}

impl Optimizer {
    /// An optimizer for `decays.len()` parameters over a run of `total_steps` steps (for the
    /// cosine schedule), starting from `state` (a fresh one when `None`).
    ///
    /// Panics if the state's vectors do not fit the parameter count: callers check restored
    /// state with [`Optimizer::state_fits`] first.
    pub fn new(
        config: OptimizerConfig,
        decays: Vec<bool>,
        total_steps: u64,
        state: Option<OptimizerState>,
    ) -> Self {
        let n = decays.len();
        let state = state.unwrap_or_else(|| {
            let (first, second) = match config.kind {
                OptimizerKind::Sgd => (0, 0),
                OptimizerKind::Momentum | OptimizerKind::Nesterov => (n, 0),
                OptimizerKind::Adam | OptimizerKind::AdamW => (n, n),
            };
            OptimizerState {
                step: 0,
                first: vec![0.0; first],
                second: vec![0.0; second],
            }
        });
        assert!(
            Self::state_fits(&config, n, &state),
            "optimizer state shape"
        );
        Optimizer {
            config,
            total_steps,
            decays,
            state,
        }
    }

    /// True when `state` has the vectors `config` needs for `num_params` parameters.
    pub fn state_fits(config: &OptimizerConfig, num_params: usize, state: &OptimizerState) -> bool {
        let (first, second) = match config.kind {
            OptimizerKind::Sgd => (0, 0),
            OptimizerKind::Momentum | OptimizerKind::Nesterov => (num_params, 0),
            OptimizerKind::Adam | OptimizerKind::AdamW => (num_params, num_params),
        };
        state.first.len() == first && state.second.len() == second
    }

    /// The state to save.
    pub fn state(&self) -> &OptimizerState {
        &self.state
    }

    /// The learning rate the next step will use.
    pub fn learning_rate(&self) -> f32 {
        self.config
            .learning_rate_at(self.state.step, self.total_steps)
    }

    /// Updates `params` in place from the batch-averaged gradient `grad` (which clipping and
    /// L2 decay rewrite in place). Returns the learning rate used.
    pub fn step(&mut self, params: &mut [f32], grad: &mut [f32]) -> f32 {
        debug_assert_eq!(params.len(), self.decays.len());
        let cfg = &self.config;
        let lr = cfg.learning_rate_at(self.state.step, self.total_steps);
        self.state.step += 1;
        if let Some(max_norm) = cfg.clip_grad_norm {
            let norm = grad
                .iter()
                .map(|g| f64::from(*g) * f64::from(*g))
                .sum::<f64>()
                .sqrt();
            if norm > f64::from(max_norm) {
                let scale = (f64::from(max_norm) / norm) as f32;
                grad.iter_mut().for_each(|g| *g *= scale);
            }
        }
        let wd = cfg.weight_decay;
        if wd > 0.0 && cfg.kind != OptimizerKind::AdamW {
            for ((g, p), decays) in grad.iter_mut().zip(params.iter()).zip(&self.decays) {
                if *decays {
                    *g += wd * p;
                }
            }
        }
        match cfg.kind {
            OptimizerKind::Sgd => {
                for (p, g) in params.iter_mut().zip(grad.iter()) {
                    *p -= lr * g;
                }
            }
            OptimizerKind::Momentum | OptimizerKind::Nesterov => {
                let mu = cfg.momentum;
                let nesterov = cfg.kind == OptimizerKind::Nesterov;
                for ((p, g), v) in params
                    .iter_mut()
                    .zip(grad.iter())
                    .zip(&mut self.state.first)
                {
                    *v = mu * *v + g;
                    let direction = if nesterov { g + mu * *v } else { *v };
                    *p -= lr * direction;
                }
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let (b1, b2, eps) = (cfg.beta1, cfg.beta2, cfg.eps);
                let t = i32::try_from(self.state.step).unwrap_or(i32::MAX);
                let c1 = (1.0 - f64::from(b1).powi(t)) as f32;
                let c2 = (1.0 - f64::from(b2).powi(t)) as f32;
                let decoupled = if cfg.kind == OptimizerKind::AdamW {
                    lr * wd
                } else {
                    0.0
                };
                let moments = self.state.first.iter_mut().zip(&mut self.state.second);
                for (((p, g), (m, v)), decays) in params
                    .iter_mut()
                    .zip(grad.iter())
                    .zip(moments)
                    .zip(&self.decays)
                {
                    if *decays {
                        *p -= decoupled * *p;
                    }
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                }
            }
        }
        lr
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn clipping_bounds_the_gradient_norm() {
        let config = OptimizerConfig {
            learning_rate: 1.0,
            clip_grad_norm: Some(1.0),
            ..OptimizerConfig::default()
        };
        let mut opt = Optimizer::new(config, vec![true; 2], 10, None);
        let mut p = vec![0.0, 0.0];
        opt.step(&mut p, &mut [3.0, 4.0]);
        assert!(
            (p[0] + 0.6).abs() < 1e-6 && (p[1] + 0.8).abs() < 1e-6,
            "{p:?}"
        );
    }

    #[test]
    fn schedules_warm_up_decay_and_anneal() {
        let mut config = OptimizerConfig {
            learning_rate: 1.0,
            warmup_steps: 4,
            ..OptimizerConfig::default()
        };
        let rates: Vec<f32> = (0..6).map(|s| config.learning_rate_at(s, 20)).collect();
        assert_eq!(rates, vec![0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
        config.warmup_steps = 0;
        config.schedule = LrSchedule::Step {
            every: 2,
            gamma: 0.5,
        };
        let rates: Vec<f32> = (0..5).map(|s| config.learning_rate_at(s, 20)).collect();
        assert_eq!(rates, vec![1.0, 1.0, 0.5, 0.5, 0.25]);
        config.schedule = LrSchedule::Cosine;
        assert_eq!(config.learning_rate_at(0, 10), 1.0);
        assert!((config.learning_rate_at(5, 10) - 0.5).abs() < 1e-6);
        assert!(config.learning_rate_at(10, 10).abs() < 1e-6);
    }

    #[test]
    fn saved_state_continues_the_same_trajectory() {
        let grads = [[0.3f32, -0.2], [0.1, 0.4], [-0.5, 0.2], [0.2, 0.2]];
        let mut whole = optimizer(OptimizerKind::Adam, 2);
        let mut p = vec![1.0, 1.0];
        for g in grads {
            whole.step(&mut p, &mut g.clone());
        }
        let mut first = optimizer(OptimizerKind::Adam, 2);
        let mut q = vec![1.0, 1.0];
        for g in &grads[..2] {
            first.step(&mut q, &mut g.clone());
        }
        let state = serde_json::to_string(first.state()).unwrap();
        let config = first.config.clone();
        let mut second = Optimizer::new(
            config,
            vec![true; 2],
            100,
            serde_json::from_str(&state).ok(),
        );
        for g in &grads[2..] {
            second.step(&mut q, &mut g.clone());
        }
        assert_eq!(p, q);
    }
}
