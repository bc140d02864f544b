//! The tracing subscriber of `train`: log lines on stderr (`RUST_LOG`, warnings by default),
//! the `--profile` layer and the `--trace` Chrome trace-event file.
//!
//! The library only emits spans and events; installing a subscriber is the front end's choice,
//! made here once per process. What the spans mean is `streamfit::telemetry`'s business.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use streamfit::error::Error;
use streamfit::telemetry::ProfileLayer;
use tracing_chrome::{ChromeLayerBuilder, FlushGuard};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What the subscriber feeds: the profile's span totals (with `--profile`), and the trace
/// file, written until [`Tracing::finish`] (or until this is dropped) with `--trace`.
pub(crate) struct Tracing {
    pub(crate) profiler: Option<ProfileLayer>,
    trace: Option<Trace>,
}

/// The `--trace` file being written.
struct Trace {
    path: PathBuf,
    /// Dropping it ends the trace: tracing-chrome's writer thread writes the rest and exits.
    guard: FlushGuard,
    /// The first write error, if any.
    failed: Arc<Mutex<Option<std::io::Error>>>,
}

impl Tracing {
    /// Ends the trace file (when writing one) and reports the first error writing it, as an
    /// output error naming the file.
    pub(crate) fn finish(&mut self) -> Result<()> {
        let Some(trace) = self.trace.take() else {
            return Ok(());
        };
        drop(trace.guard);
        let failed = trace.failed.lock().map(|mut e| e.take()).unwrap_or(None);
        match failed {
            Some(e) => Err(Error::output(&trace.path, e).into()),
            None => Ok(()),
        }
    }
}

/// The trace file as tracing-chrome sees it: a writer that never fails, because tracing-chrome
/// unwraps every write (a full disk would panic its thread). The first error is kept for
/// [`Tracing::finish`] to report, and nothing more is written after it.
struct TraceWriter {
    file: std::fs::File,
    failed: Arc<Mutex<Option<std::io::Error>>>,
    broken: bool,
}

impl TraceWriter {
    fn keep(&mut self, result: std::io::Result<()>) {
        if let Err(e) = result {
            self.broken = true;
            if let Ok(mut slot) = self.failed.lock() {
                slot.get_or_insert(e);
            }
        }
    }
}

impl Write for TraceWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.broken {
            let result = self.file.write_all(buf);
            self.keep(result);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.broken {
            let result = self.file.flush();
            self.keep(result);
        }
        Ok(())
    }
}

/// Installs the subscriber: stderr logs, plus the profile layer when `profile` and a Chrome
/// trace written to `trace` when given.
pub(crate) fn init(profile: bool, trace: Option<&Path>) -> Result<Tracing> {
    let profiler = profile.then(ProfileLayer::new);
    let (chrome, trace) = match trace {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| Error::output(path, e))?;
            let failed = Arc::new(Mutex::new(None));
            let writer = TraceWriter {
                file,
                failed: failed.clone(),
                broken: false,
            };
            let (layer, guard) = ChromeLayerBuilder::new()
                .writer(writer)
                .include_args(true)
                .include_locations(false)
                .build();
            let trace = Trace {
                path: path.to_path_buf(),
                guard,
                failed,
            };
            (Some(layer), Some(trace))
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
    Ok(Tracing { profiler, trace })
}
