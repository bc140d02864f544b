//! The optimizer's settings ([`OptimizerConfig`], with their defaults and their one check)
//! and the learning-rate schedule ([`LrSchedule`], with linear warm-up).
//!
//! Plain data: part of a run's fingerprint, saved in checkpoints and model files. How a step
//! uses them is `optimizer.rs`'s and `rule.rs`'s.

use serde::{Deserialize, Serialize};

use super::rule::OptimizerKind;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
