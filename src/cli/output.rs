//! Shared output helpers of the command line: `say!` (stdout that ends quietly on a closed
//! pipe), number formatting and progress bars.
//!
//! Every subcommand prints through these, so a number or a bar looks the same everywhere. What
//! a subcommand prints is its own module's business, not this one's.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `println!` that ends the process quietly when stdout is a closed pipe (`streamfit ... | head`),
/// as a command-line tool killed by SIGPIPE would (exit code 141), instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Writes one line to stdout; see [`say!`].
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `bytes` in megabytes with one decimal: `12.3 MB`.
pub(crate) fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `n` with thousands separators: `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A progress bar counting rows on stderr (drawn only when stderr is a terminal), hidden
/// when `quiet`: `total` rows, or a spinner when the total is unknown.
pub(crate) fn rows_progress(total: Option<u64>, verb: &str, quiet: bool) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(total, target);
    let template = match total {
        Some(_) => {
            format!("{{bar:30}} {{human_pos}}/{{human_len}} rows {verb}, {{per_sec}}, ETA {{eta}}")
        }
        None => format!("{{spinner}} {{human_pos}} rows {verb}, {{per_sec}}"),
    };
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template"));
    bar
}

/// The training bar on stderr: `total_steps` iterations with rate and ETA, and a message
/// (the epoch and batch loss); hidden when `quiet`.
pub(crate) fn iterations_progress(total_steps: u64, quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(total_steps), ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {human_pos}/{human_len} iterations, {per_sec}, ETA {eta} {msg}",
        )
        .expect("a valid template"),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn megabytes_are_decimal_with_one_digit() {
        assert_eq!(megabytes(12_345_678), "12.3 MB");
    }
}
