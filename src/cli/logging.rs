//! The tracing subscriber of `train`: log lines on stderr (`RUST_LOG`, warnings by default),
//! the `--profile` layer and the `--trace` Chrome trace-event file.
//!
//! The library only emits spans and events; installing a subscriber is the front end's choice,
//! made here once per process. What the spans mean is `streamfit::telemetry`'s business.

use std::path::Path;

use anyhow::Result;
use streamfit::error::Error;
use streamfit::telemetry::ProfileLayer;
use tracing_chrome::{ChromeLayerBuilder, FlushGuard};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What the subscriber feeds: the profile's span totals (with `--profile`), and the trace
/// file, written until this is dropped (with `--trace`).
pub(crate) struct Tracing {
    pub(crate) profiler: Option<ProfileLayer>,
    _trace: Option<FlushGuard>,
}

/// Installs the subscriber: stderr logs, plus the profile layer when `profile` and a Chrome
/// trace written to `trace` when given.
pub(crate) fn init(profile: bool, trace: Option<&Path>) -> Result<Tracing> {
    let profiler = profile.then(ProfileLayer::new);
    let (chrome, guard) = match trace {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| Error::output(path, e))?;
            let (layer, guard) = ChromeLayerBuilder::new()
                .writer(file)
                .include_args(true)
                .include_locations(false)
                .build();
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let log_filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(log_filter),
        )
        .with(profiler.clone())
        .with(chrome)
        .try_init();
    Ok(Tracing {
        profiler,
        _trace: guard,
    })
}
