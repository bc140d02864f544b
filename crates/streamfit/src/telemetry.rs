//! Telemetry: span names, the profile, and process measurements.
//!
//! Layer 0. Stages emit `tracing` spans with the stable names below; without a subscriber
//! they cost a branch. [`ProfileLayer`] is a `tracing-subscriber` layer that adds up, per span
//! name and thread, the time spent inside spans and their `rows`; [`Profile::build`] turns that
//! into the `--profile` table with a one-line diagnosis. [`peak_rss_bytes`] reads the process's
//! peak resident set from the kernel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::error::{option_name, render_options};

/// Stable span names, one per pipeline or training stage: `read` (one unit, on a reader
/// thread), `decode` (one block inside it), `shuffle` (one block through the shuffle buffer),
/// `batch` (handing a batch to the prefetch queue), `wait` (the trainer blocked on the queue),
/// `gradient`, `update`, `eval` (a batch of the evaluation pass), `checkpoint`. A reader's
/// `blocked` span (waiting on a full channel) is subtracted from `read` in the profile.
pub const SPAN_NAMES: [&str; 9] = [
    "read",
    "decode",
    "shuffle",
    "batch",
    "wait",
    "gradient",
    "update",
    "eval",
    "checkpoint",
];

/// Time and rows inside one span name on one thread.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpanTotals {
    /// Seconds inside the spans (entered to exited).
    pub busy_seconds: f64,
    /// Spans closed.
    pub count: u64,
    /// Sum of their `rows` fields.
    pub rows: u64,
}

/// Per (span name, thread name) totals.
pub type SpanTable = BTreeMap<(String, String), SpanTotals>;

/// Adds up time and rows per span name and thread (see the module docs). Cloning shares the
/// table.
#[derive(Debug, Clone, Default)]
pub struct ProfileLayer {
    table: Arc<Mutex<SpanTable>>,
}

/// Per-span bookkeeping kept in the span's extensions.
struct Timing {
    entered: Option<Instant>,
    busy: f64,
    rows: u64,
}

/// Reads the `rows` field of a span.
struct RowsVisitor(u64);

impl tracing::field::Visit for RowsVisitor {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "rows" {
            self.0 = value;
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "rows" {
            self.0 = value.max(0) as u64;
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl ProfileLayer {
    /// A layer with an empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The totals so far, and resets them.
    pub fn take(&self) -> SpanTable {
        std::mem::take(&mut *self.table.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ProfileLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut rows = RowsVisitor(0);
        attrs.record(&mut rows);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Timing {
                entered: None,
                busy: 0.0,
                rows: rows.0,
            });
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(t) = span.extensions_mut().get_mut::<Timing>()
        {
            t.entered = Some(Instant::now());
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(t) = span.extensions_mut().get_mut::<Timing>()
            && let Some(entered) = t.entered.take()
        {
            t.busy += entered.elapsed().as_secs_f64();
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(t) = extensions.get::<Timing>() else {
            return;
        };
        let thread = thread_group(std::thread::current().name().unwrap_or("unnamed"));
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let totals = table.entry((span.name().to_string(), thread)).or_default();
        totals.busy_seconds += t.busy;
        totals.count += 1;
        totals.rows += t.rows;
    }
}

/// A thread's name as the profile groups it: `main` is the trainer, and numbered pool
/// threads keep their names (`reader-0`, `gradient-1`).
fn thread_group(name: &str) -> String {
    match name {
        "main" => "trainer".to_string(),
        other => other.to_string(),
    }
}

/// One row of the profile table.
#[derive(Debug, Clone, Serialize)]
pub struct StageRow {
    /// Span name.
    pub stage: String,
    /// Threads it ran on.
    pub threads: Vec<String>,
    /// Seconds inside its spans, summed over threads.
    pub busy_seconds: f64,
    /// Busy time over wall time per thread (1 = one thread busy all the time).
    pub share_of_wall: f64,
    /// Rows through it.
    pub rows: u64,
    /// Rows per busy second.
    pub rows_per_s: f64,
    /// Decoded MB (rows × row bytes) per busy second.
    pub mb_per_s: f64,
}

/// The `--profile` result: the table, the trainer's waits and the diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Wall seconds of the profiled run.
    pub wall_seconds: f64,
    /// One row per stage, in pipeline order.
    pub stages: Vec<StageRow>,
    /// Share of training time the trainer waited for data.
    pub stall_fraction: f64,
    /// Mean batches waiting in the prefetch queue when the trainer asked for one.
    pub queue_mean_occupancy: f64,
    /// Share of asks that found the prefetch queue full.
    pub queue_full_fraction: f64,
    /// One line: input-bound, compute-bound or balanced, with the evidence and what to try.
    pub diagnosis: String,
}

impl Profile {
    /// Builds the profile from span totals over `wall_seconds`, with rows of `row_bytes`
    /// bytes, the trainer's stall fraction and the prefetch queue's occupancy.
    pub fn build(
        table: &SpanTable,
        wall_seconds: f64,
        row_bytes: u64,
        stall_fraction: f64,
        queue_mean_occupancy: f64,
        queue_full_fraction: f64,
    ) -> Profile {
        let wall = wall_seconds.max(1e-9);
        let stages: Vec<StageRow> = SPAN_NAMES
            .iter()
            .filter_map(|&name| {
                let rows: Vec<(&String, &SpanTotals)> = table
                    .iter()
                    .filter(|((stage, _), _)| stage == name)
                    .map(|((_, thread), totals)| (thread, totals))
                    .collect();
                if rows.is_empty() {
                    return None;
                }
                let mut busy: f64 = rows.iter().map(|(_, t)| t.busy_seconds).sum();
                if name == "read" {
                    // Readers blocked on a full channel are waiting, not reading.
                    busy -= table
                        .iter()
                        .filter(|((stage, _), _)| stage == "blocked")
                        .map(|(_, t)| t.busy_seconds)
                        .sum::<f64>();
                    busy = busy.max(0.0);
                }
                let through: u64 = rows.iter().map(|(_, t)| t.rows).sum();
                let threads: Vec<String> = rows.iter().map(|(th, _)| (*th).clone()).collect();
                Some(StageRow {
                    stage: name.to_string(),
                    share_of_wall: busy / wall / threads.len() as f64,
                    threads,
                    busy_seconds: busy,
                    rows: through,
                    rows_per_s: if busy > 0.0 {
                        through as f64 / busy
                    } else {
                        0.0
                    },
                    mb_per_s: if busy > 0.0 {
                        (through * row_bytes) as f64 / 1e6 / busy
                    } else {
                        0.0
                    },
                })
            })
            .collect();
        let share = |name: &str| {
            stages
                .iter()
                .find(|s| s.stage == name)
                .map_or(0.0, |s| s.share_of_wall)
        };
        let (readers, shuffle) = (share("read"), share("shuffle"));
        let diagnosis = if stall_fraction >= 0.3 {
            let advice = if readers >= shuffle {
                "add readers («readers») or convert to shards (streamfit convert)"
            } else {
                "the single shuffle thread is the limit: larger batches amortise its hand-offs"
            };
            format!(
                "input-bound: trainer waits {:.0}% of the time; readers busy {:.0}%, shuffle thread busy {:.0}% — {}",
                stall_fraction * 100.0,
                readers * 100.0,
                shuffle * 100.0,
                render_options(advice),
            )
        } else if queue_full_fraction >= 0.5 {
            format!(
                "compute-bound: prefetch queue full {:.0}% of the time, trainer waits {:.0}% — a deeper prefetch will not help; more {} or a cheaper model will",
                queue_full_fraction * 100.0,
                stall_fraction * 100.0,
                option_name("threads"),
            )
        } else {
            format!(
                "balanced: trainer waits {:.0}% of the time, prefetch queue full {:.0}% — input and compute keep pace",
                stall_fraction * 100.0,
                queue_full_fraction * 100.0
            )
        };
        Profile {
            wall_seconds,
            stages,
            stall_fraction,
            queue_mean_occupancy,
            queue_full_fraction,
            diagnosis,
        }
    }
}

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`), where the
/// platform reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Current resident set size of this process (`VmRSS`).
pub fn current_rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|kib| kib * 1024)
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_rss_is_at_least_current_rss_on_linux() {
        // Current first: the peak read afterwards can only be larger.
        let now = super::current_rss_bytes();
        if let (Some(now), Some(peak)) = (now, super::peak_rss_bytes()) {
            assert!(peak >= now && now > 0);
        }
    }
}
