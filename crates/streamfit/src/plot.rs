//! Loss curves as SVG: the per-iteration batch loss (jagged) and the per-epoch full-data loss
//! (smooth) on one chart, x = iteration. `train --plot` draws it at the end of a run;
//! `streamfit plot METRICS.jsonl` draws it from a `--metrics` file afterwards.
//!
//! Drawn with `plotters`' SVG backend, which needs no system font libraries, into memory, then
//! written with [`crate::atomic_file`] (a reader never sees half a chart).

use std::path::Path;

use plotters::prelude::*;

use crate::atomic_file::write_atomically;
use crate::error::{Error, Result};

/// Most batch-loss points drawn; longer runs are thinned evenly (every k-th point).
const MAX_POINTS: usize = 20_000;

/// The curves of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossCurves {
    /// (iteration, mean batch loss) per iteration.
    pub steps: Vec<(u64, f64)>,
    /// (iteration at the epoch's end, full-data loss) per evaluated epoch.
    pub epochs: Vec<(u64, f64)>,
}

impl LossCurves {
    /// Reads a `--metrics` JSON-lines file: iteration lines have `iteration` and `batch_loss`,
    /// epoch lines `epoch`, `iterations` and `full_loss` (null without evaluation).
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
            if let (Some(it), Some(loss)) =
                (value["iteration"].as_u64(), value["batch_loss"].as_f64())
            {
                curves.steps.push((it, loss));
            } else if let Some(iterations) = value["iterations"].as_u64() {
                done += iterations;
                if let Some(loss) = value["full_loss"].as_f64() {
                    curves.epochs.push((done, loss));
                }
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

    /// Draws the chart into `path` (SVG), with a log-scale loss axis when `log_y`.
    pub fn draw(&self, path: &Path, log_y: bool) -> Result<()> {
        let out = |e: &dyn std::fmt::Display| Error::output(path, e.to_string());
        let stride = self.steps.len().div_ceil(MAX_POINTS).max(1);
        let steps: Vec<(u64, f64)> = self
            .steps
            .iter()
            .step_by(stride)
            .copied()
            .filter(|(_, l)| l.is_finite() && (!log_y || *l > 0.0))
            .collect();
        let all = steps.iter().chain(&self.epochs).map(|p| p.1);
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if !lo.is_finite() || !hi.is_finite() {
            return Err(Error::config("plot", "no finite loss to plot"));
        }
        let x_max = self.steps.last().map_or(1, |s| s.0).max(1);
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
                        steps.iter().map(|&(x, y)| (x, y)),
                        RGBColor(150, 170, 220).stroke_width(1),
                    ))
                    .map_err(|e| out(&e))?
                    .label("batch loss (per iteration)")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
                chart
                    .draw_series(LineSeries::new(
                        self.epochs.iter().map(|&(x, y)| (x, y)),
                        RED.stroke_width(3),
                    ))
                    .map_err(|e| out(&e))?
                    .label("full-data loss (per epoch)")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
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
