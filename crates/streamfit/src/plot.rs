//! Loss curves as SVG, x = iteration: the per-iteration batch loss (jagged), its exponential
//! moving average (EMA), the per-epoch training loss (the full-data loss where a full-data pass
//! ran, else the epoch's running training loss) and the validation loss (after every epoch, or
//! every «eval_every» steps), each with its legend entry. `train --plot` draws it at the end of
//! a run; `streamfit plot METRICS.jsonl` draws it from a `--metrics` file afterwards.
//!
//! The moving average is s₁ = x₁, sₜ = sₜ₋₁ + α·(xₜ − sₜ₋₁) with smoothing factor
//! α = [`EMA_ALPHA`] = 0.05 (a step's weight halves after about 14 steps; the mean age of the
//! average is 1/α = 20 steps), computed over every step before the curves are thinned.
//!
//! Drawn with `plotters`' SVG backend, which needs no system font libraries, into memory, then
//! written with [`crate::atomic_file`] (a reader never sees half a chart).

use std::path::Path;

use plotters::prelude::*;

use crate::atomic_file::write_atomically;
use crate::error::{Error, Result};
use crate::train::EpochSummary;

/// Most batch-loss points drawn; longer runs are thinned evenly (every k-th point).
const MAX_POINTS: usize = 20_000;

/// Smoothing factor of the batch loss's exponential moving average (see the module docs).
pub const EMA_ALPHA: f64 = 0.05;

/// The curves of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossCurves {
    /// (iteration, mean batch loss) per iteration.
    pub steps: Vec<(u64, f64)>,
    /// (iteration at the epoch's end, loss) per epoch: the full-data loss where a full-data
    /// pass ran, else the running training loss (`epochs_full` says which).
    pub epochs: Vec<(u64, f64)>,
    /// True when every point of `epochs` is a full-data loss.
    pub epochs_full: bool,
    /// (iteration, validation loss) per evaluation of the validation data.
    pub valid: Vec<(u64, f64)>,
}

impl LossCurves {
    /// Adds an epoch's points, at the last step seen: its training loss (full-data when
    /// measured) and its validation loss when evaluated after the epoch.
    pub fn add_epoch(&mut self, epoch: &EpochSummary) {
        let at = self.steps.last().map_or(0, |s| s.0);
        self.add_epoch_at(
            at,
            epoch.full_loss,
            epoch.train_loss,
            epoch.valid.map(|v| v.loss),
        );
    }

    fn add_epoch_at(&mut self, at: u64, full: Option<f64>, train: Option<f64>, valid: Option<f64>) {
        if let Some(loss) = full.or(train) {
            self.epochs_full = full.is_some() && (self.epochs_full || self.epochs.is_empty());
            self.epochs.push((at, loss));
        }
        if let Some(loss) = valid {
            self.valid.push((at, loss));
        }
    }

    /// Reads a `--metrics` JSON-lines file: iteration lines have `iteration` and `batch_loss`,
    /// validation lines (`eval_every`) `iteration` and `valid_loss`, epoch lines `epoch`,
    /// `iterations`, `train_loss`, `full_loss` (with the full-data pass) and `valid` (validation
    /// after every epoch). Files from before `train_loss` existed hold `full_loss` (null
    /// without evaluation) and are read too.
    pub fn from_metrics(path: &Path) -> Result<LossCurves> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut curves = LossCurves::default();
        let mut done = 0u64;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                Error::config(
                    "METRICS",
                    format!("{}, line {}: {e}", path.display(), n + 1),
                )
            })?;
            let iteration = value["iteration"].as_u64();
            if let (Some(it), Some(loss)) = (iteration, value["valid_loss"].as_f64()) {
                curves.valid.push((it, loss));
            } else if let (Some(it), Some(loss)) = (iteration, value["batch_loss"].as_f64()) {
                curves.steps.push((it, loss));
            } else if let Some(iterations) = value["iterations"].as_u64() {
                done += iterations;
                curves.add_epoch_at(
                    done,
                    value["full_loss"].as_f64(),
                    value["train_loss"].as_f64(),
                    value["valid"]["loss"].as_f64(),
                );
            }
        }
        if curves.steps.is_empty() {
            return Err(Error::config(
                "METRICS",
                format!("{} holds no iteration lines", path.display()),
            ));
        }
        Ok(curves)
    }

    /// The exponential moving average of the batch loss (see the module docs), one point per
    /// step.
    pub fn batch_loss_ema(&self) -> Vec<(u64, f64)> {
        let mut average: Option<f64> = None;
        self.steps
            .iter()
            .filter(|(_, loss)| loss.is_finite())
            .map(|&(it, loss)| {
                let s = average.map_or(loss, |s| s + EMA_ALPHA * (loss - s));
                average = Some(s);
                (it, s)
            })
            .collect()
    }

    /// Draws the chart into `path` (SVG), with a log-scale loss axis when `log_y`.
    pub fn draw(&self, path: &Path, log_y: bool) -> Result<()> {
        let out = |e: &dyn std::fmt::Display| Error::output(path, e.to_string());
        let stride = self.steps.len().div_ceil(MAX_POINTS).max(1);
        let shown = |points: &[(u64, f64)]| -> Vec<(u64, f64)> {
            points
                .iter()
                .step_by(stride)
                .copied()
                .filter(|(_, l)| l.is_finite() && (!log_y || *l > 0.0))
                .collect()
        };
        let steps = shown(&self.steps);
        let ema = shown(&self.batch_loss_ema());
        let keep = |points: &[(u64, f64)]| -> Vec<(u64, f64)> {
            points
                .iter()
                .copied()
                .filter(|(_, l)| l.is_finite() && (!log_y || *l > 0.0))
                .collect()
        };
        let epochs = keep(&self.epochs);
        let valid = keep(&self.valid);
        let all = steps
            .iter()
            .chain(&ema)
            .chain(&epochs)
            .chain(&valid)
            .map(|p| p.1);
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if !lo.is_finite() || !hi.is_finite() {
            return Err(Error::config("plot", "no finite loss to plot"));
        }
        let x_max = self
            .steps
            .iter()
            .chain(&self.valid)
            .map(|s| s.0)
            .max()
            .unwrap_or(1)
            .max(1);
        let epoch_label = if self.epochs_full {
            "full-data loss (per epoch)"
        } else {
            "train loss (per epoch, mean of its steps)"
        };
        let ema_label = format!("batch loss, moving average (EMA, α = {EMA_ALPHA})");
        let mut svg = String::new();
        let root = SVGBackend::with_string(&mut svg, (1000, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| out(&e))?;
        let caption = if log_y { "loss (log scale)" } else { "loss" };
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(caption, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(70);
        let pad = (hi - lo).abs() * 0.05 + f64::EPSILON;
        let ema_color = RGBColor(20, 60, 160);
        let valid_color = RGBColor(0, 140, 60);
        macro_rules! finish {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc("iteration")
                    .y_desc("mean loss")
                    .draw()
                    .map_err(|e| out(&e))?;
                chart
                    .draw_series(LineSeries::new(
                        steps.iter().copied(),
                        RGBColor(170, 190, 230).stroke_width(1),
                    ))
                    .map_err(|e| out(&e))?
                    .label("batch loss (per iteration)")
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(170, 190, 230))
                    });
                chart
                    .draw_series(LineSeries::new(
                        ema.iter().copied(),
                        ema_color.stroke_width(2),
                    ))
                    .map_err(|e| out(&e))?
                    .label(ema_label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ema_color));
                if !epochs.is_empty() {
                    chart
                        .draw_series(LineSeries::new(epochs.iter().copied(), RED.stroke_width(3)))
                        .map_err(|e| out(&e))?
                        .label(epoch_label)
                        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
                }
                if !valid.is_empty() {
                    chart
                        .draw_series(LineSeries::new(
                            valid.iter().copied(),
                            valid_color.stroke_width(2),
                        ))
                        .map_err(|e| out(&e))?
                        .label("validation loss")
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], valid_color)
                        });
                    chart
                        .draw_series(
                            valid
                                .iter()
                                .map(|&p| Circle::new(p, 4, valid_color.filled())),
                        )
                        .map_err(|e| out(&e))?;
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| out(&e))?;
            }};
        }
        if log_y {
            finish!(
                builder
                    .build_cartesian_2d(0..x_max, (lo * 0.9..hi * 1.1).log_scale())
                    .map_err(|e| out(&e))?
            );
        } else {
            finish!(
                builder
                    .build_cartesian_2d(0..x_max, lo - pad..hi + pad)
                    .map_err(|e| out(&e))?
            );
        }
        root.present().map_err(|e| out(&e))?;
        drop(root);
        write_atomically(path, svg.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_moving_average_follows_its_recurrence() {
        let curves = LossCurves {
            steps: vec![(1, 1.0), (2, 3.0), (3, 3.0)],
            ..LossCurves::default()
        };
        let ema = curves.batch_loss_ema();
        let s2 = 1.0 + EMA_ALPHA * (3.0 - 1.0);
        let s3 = s2 + EMA_ALPHA * (3.0 - s2);
        assert_eq!(ema, vec![(1, 1.0), (2, s2), (3, s3)]);
    }

    #[test]
    fn metrics_lines_become_curves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let lines = [
            r#"{"epoch":1,"iteration":1,"batch_loss":0.9,"rows":4}"#,
            r#"{"epoch":1,"iteration":2,"batch_loss":0.7,"rows":4}"#,
            r#"{"epoch":1,"iteration":2,"valid_loss":0.8,"valid_rows":10,"seconds":0.0}"#,
            r#"{"epoch":1,"iterations":2,"rows":8,"train_loss":0.8,"valid":{"loss":0.75}}"#,
            r#"{"epoch":2,"iteration":3,"batch_loss":0.5,"rows":4}"#,
            r#"{"epoch":2,"iterations":1,"rows":4,"train_loss":0.5,"full_loss":0.4}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let curves = LossCurves::from_metrics(&path).unwrap();
        assert_eq!(curves.steps, vec![(1, 0.9), (2, 0.7), (3, 0.5)]);
        assert_eq!(curves.valid, vec![(2, 0.8), (2, 0.75)]);
        assert_eq!(curves.epochs, vec![(2, 0.8), (3, 0.4)]);
        assert!(
            !curves.epochs_full,
            "the first epoch's point is a running loss"
        );
    }
}
