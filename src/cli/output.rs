//! Shared output helpers of the command line: `say!` (stdout that ends quietly on a closed
//! pipe), number formatting and progress bars.
//!
//! Every subcommand prints through these, so a number or a bar looks the same everywhere. What
//! a subcommand prints is its own module's business, not this one's.

use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

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

/// `n` things with thousands separators, singular for one: `1 iteration`, `3,907 iterations`.
/// `noun` is the singular; the plural adds an `s`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        // English plurals of the nouns counted here: batch → batches, file → files, epoch →
        // epochs (a hard "ch").
        n if noun.ends_with("tch") || noun.ends_with('s') || noun.ends_with('x') => {
            format!("{} {noun}es", thousands(n))
        }
        n => format!("{} {noun}s", thousands(n)),
    }
}

/// Seconds a bar runs before it shows an ETA: the first steps (opening files, filling the
/// shuffle buffer) are slow, and an estimate from them is absurd (`86m` for a 10 s run).
const ETA_AFTER_S: u64 = 3;

/// A bar's style from `template`, with two keys of our own: `{rate}`, the whole steps per
/// second with thousands separators (`91,469/s`, not `91,468.9466/s`), and `{eta}`, shown as
/// `-` for the first [`ETA_AFTER_S`] seconds.
fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", thousands(state.per_sec().max(0.0) as u64));
            },
        )
        .with_key(
            "eta",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                if state.elapsed().as_secs() < ETA_AFTER_S {
                    let _ = w.write_str("-");
                } else {
                    let _ = write!(w, "{:#}", HumanDuration(state.eta()));
                }
            },
        )
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
            format!("{{bar:20}} {{human_pos}}/{{human_len}} rows {verb}, {{rate}}, ETA {{eta}}")
        }
        None => format!("{{spinner}} {{human_pos}} rows {verb}, {{rate}}"),
    };
    bar.set_style(bar_style(&template));
    bar
}

/// The training bar on stderr: `total_steps` iterations with rate and ETA, and a message
/// (the epoch and batch loss); hidden when `quiet`.
pub(crate) fn iterations_progress(total_steps: u64, quiet: bool) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    iterations_bar(total_steps, target)
}

/// [`iterations_progress`] drawn into `target`. The message is cut to what the terminal's
/// width leaves (`{wide_msg}`), so the line fits an 80-column terminal.
fn iterations_bar(total_steps: u64, target: ProgressDrawTarget) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total_steps), target);
    bar.set_style(bar_style(
        "{bar:20} {human_pos}/{human_len} it, {rate}, ETA {eta} {wide_msg}",
    ));
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

    /// A terminal of 80 columns that keeps what is drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl indicatif::TermLike for Capture {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.is_empty() {
                self.0.lock().unwrap().push(s.to_string());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn training_bar_fits_80_columns_with_a_whole_rate_and_no_early_eta() {
        let term = Capture::default();
        let bar = iterations_bar(
            1_000_000,
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        bar.set_message("epoch 10/10, batch loss 0.693147");
        // Finishing draws whatever the refresh limit skipped: the widest count, and a rate of
        // steps over microseconds.
        bar.finish();
        let lines = term.0.lock().unwrap().clone();
        let line = lines
            .iter()
            .rfind(|l| l.contains(" it, "))
            .unwrap_or_else(|| panic!("the bar was not drawn: {lines:?}"));
        let width = line.chars().count();
        assert!(width <= 80, "{width} columns: {line}");
        assert!(line.contains("1,000,000/1,000,000 it"), "{line}");
        assert!(
            line.contains("ETA -"),
            "an ETA before {ETA_AFTER_S} s: {line}"
        );
        let rate = line.split(", ").nth(1).expect("a rate");
        assert!(rate.ends_with("/s") && !rate.contains('.'), "{line}");
    }

    #[test]
    fn counts_of_one_are_singular() {
        assert_eq!(count(0, "iteration"), "0 iterations");
        assert_eq!(count(1, "iteration"), "1 iteration");
        assert_eq!(count(3_907, "iteration"), "3,907 iterations");
        assert_eq!(count(4, "batch"), "4 batches");
        assert_eq!(count(1, "batch"), "1 batch");
        assert_eq!(count(2, "epoch"), "2 epochs");
    }

    #[test]
    fn megabytes_are_decimal_with_one_digit() {
        assert_eq!(megabytes(12_345_678), "12.3 MB");
    }
}
