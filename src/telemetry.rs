//! Telemetry: span names and process measurements.
//!
//! Layer 0. Stages emit `tracing` spans with the stable names below (`read`, `shuffle`,
//! `batch`, `wait`, `gradient`, `update`, `eval`); without a subscriber they cost a branch.
//! [`peak_rss_bytes`] reads the process's peak resident set from the kernel.

/// Stable span names, one per pipeline or training stage.
pub const SPAN_NAMES: [&str; 7] = [
    "read", "shuffle", "batch", "wait", "gradient", "update", "eval",
];

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
