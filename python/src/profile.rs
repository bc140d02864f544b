//! The process's span totals: one [`ProfileLayer`] installed as the global tracing
//! subscriber the first time a loader or a run asks for it, and the totals accumulated since,
//! so that each loader or run can report the difference over its own lifetime.
//!
//! Spans are named per stage and grouped per thread name (`reader-0`, `shuffle`), so loaders
//! iterated at the same time in one process share their figures.

use std::sync::{Mutex, OnceLock};

use streamfit::telemetry::{ProfileLayer, SpanTable};
use tracing_subscriber::layer::SubscriberExt;

static LAYER: OnceLock<Option<ProfileLayer>> = OnceLock::new();
static TOTALS: Mutex<SpanTable> = Mutex::new(SpanTable::new());

/// Installs the layer (once per process; nothing when another subscriber was set first).
pub(crate) fn install() {
    LAYER.get_or_init(|| {
        let layer = ProfileLayer::new();
        let subscriber = tracing_subscriber::registry().with(layer.clone());
        tracing::subscriber::set_global_default(subscriber)
            .ok()
            .map(|()| layer)
    });
}

/// Every span total since the layer was installed.
pub(crate) fn totals() -> SpanTable {
    let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(Some(layer)) = LAYER.get() {
        for (key, more) in layer.take() {
            let total = totals.entry(key).or_default();
            total.busy_seconds += more.busy_seconds;
            total.count += more.count;
            total.rows += more.rows;
        }
    }
    totals.clone()
}

/// The totals accumulated since `base` (an earlier [`totals`]).
pub(crate) fn since(base: &SpanTable) -> SpanTable {
    let mut table = totals();
    for (key, total) in table.iter_mut() {
        if let Some(before) = base.get(key) {
            total.busy_seconds = (total.busy_seconds - before.busy_seconds).max(0.0);
            total.count = total.count.saturating_sub(before.count);
            total.rows = total.rows.saturating_sub(before.rows);
        }
    }
    table.retain(|_, t| t.count > 0);
    table
}
