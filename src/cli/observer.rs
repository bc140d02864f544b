//! How the command line hears the library while it works: the training observer (progress bar,
//! epoch lines, the validation lines of `--eval-every`, `--debug-row-ids`) and the printer of
//! what preparing a run found.
//!
//! The metrics file and the loss curves are the library's ([`streamfit::run::PreparedRun`]);
//! this module only shows progress and writes the hidden testing aid.

use std::path::PathBuf;

use indicatif::ProgressBar;
use streamfit::error::Error;
use streamfit::run::{PrepareEvent, ScaleCheck, ScaleEvidence};
use streamfit::train::{EpochSummary, StepRecord, TrainObserver, ValidationRecord};

use super::output::{count, megabytes, say, thousands};

/// The line that says why a run standardises by default: the narrowest and widest ranges and
/// each column far off centre, and where they were read.
fn scales_line(check: &ScaleCheck) -> String {
    let mut reasons = Vec::new();
    if let (Some(narrow), Some(wide)) = (&check.narrowest, &check.widest)
        && wide.range() > streamfit::run::SCALE_FACTOR * narrow.range()
    {
        reasons.push(format!(
            "ranges from {} ({}) to {} ({})",
            short(narrow.range()),
            narrow.name,
            short(wide.range()),
            wide.name
        ));
    }
    for column in &check.off_centre {
        reasons.push(format!(
            "{} centred at {} with range {}",
            column.name,
            short(column.centre()),
            short(column.range())
        ));
    }
    let evidence = match check.evidence {
        ScaleEvidence::FileStatistics => "the files' column statistics",
        ScaleEvidence::FirstUnit => "the first unit of the data",
        ScaleEvidence::Conversion => "the source, as `convert` judged it",
    };
    let reasons = if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join("; "))
    };
    format!(
        "standardize: the features' scales are mixed in {evidence}{reasons}, so they are standardised (--no-standardize trains on raw values)"
    )
}

/// A number in at most 4 significant digits, in exponent form when large or small.
fn short(v: f64) -> String {
    if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        format!("{}", (v * 1e3).round() / 1e3)
    } else {
        format!("{v:.3e}")
    }
}

/// Prints what preparing a run found: warnings on stderr always, the rest on stdout unless
/// `quiet`.
pub(crate) fn print_event(event: &PrepareEvent, quiet: bool) {
    match event {
        PrepareEvent::FileSkipped { path, error } => {
            eprintln!(
                "warning: skipping unreadable file {}: {error}",
                path.display()
            );
        }
        PrepareEvent::CheckpointSkipped { warning } => eprintln!("warning: {warning}"),
        PrepareEvent::CheckpointMovedAside { from, to } => {
            eprintln!("warning: moved {} to {}", from.display(), to.display());
        }
        _ if quiet => {}
        PrepareEvent::ClassesCounted {
            classes,
            largest_label,
            rows,
            seconds,
        } => say!(
            "classes: {classes} (largest label {largest_label} over {} rows, {seconds:.2} s)",
            thousands(*rows),
        ),
        PrepareEvent::ScalesMixed(check) => say!("{}", scales_line(check)),
        PrepareEvent::Standardized {
            num_features,
            rows,
            seconds,
        } => say!(
            "standardize: mean and std of {num_features} features over {} rows in {seconds:.2} s",
            thousands(*rows),
        ),
        PrepareEvent::MissingCounted {
            counts,
            indicators,
            seconds,
        } => {
            let with_missing: Vec<String> = counts
                .columns
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(column, n)| format!("{column} {}", thousands(*n)))
                .collect();
            say!(
                "missing values over {} rows in {seconds:.2} s: {}{}",
                thousands(counts.rows),
                if with_missing.is_empty() {
                    "none".to_string()
                } else {
                    with_missing.join(", ")
                },
                if indicators.is_empty() {
                    String::new()
                } else {
                    format!("; indicator features for {}", indicators.join(", "))
                }
            )
        }
        PrepareEvent::CategoriesCounted {
            columns,
            rows,
            seconds,
        } => {
            let found: Vec<String> = columns
                .iter()
                .map(|c| {
                    format!(
                        "{} {} of ~{} distinct{}",
                        c.column,
                        count(c.kept as u64, "value"),
                        thousands(c.distinct),
                        if c.nulls > 0 {
                            format!(", {} null", thousands(c.nulls))
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            say!(
                "categorical: vocabularies over {} rows in {seconds:.2} s: {}",
                thousands(*rows),
                if found.is_empty() {
                    "no string or dictionary column".to_string()
                } else {
                    found.join(", ")
                }
            )
        }
        PrepareEvent::CategoriesHashed { columns, buckets } => say!(
            "categorical: {} hashed into {} (CRC-32 of column=value)",
            if columns.is_empty() {
                "no column".to_string()
            } else {
                columns.join(", ")
            },
            count(u64::from(*buckets), "bucket"),
        ),
        PrepareEvent::ClassWeighted {
            counts,
            weights,
            seconds,
        } => {
            let classes: Vec<String> = counts
                .iter()
                .zip(weights)
                .enumerate()
                .map(|(c, (n, w))| format!("{c}: {w:.4} ({} rows)", thousands(*n)))
                .collect();
            say!(
                "class weights (balanced, N / (C · n_c), labels counted in {seconds:.2} s): {}",
                classes.join(", ")
            )
        }
        PrepareEvent::NullLabelsDropped { dropped, rows } => say!(
            "labels: {} with a null label left out, {} kept",
            count(*dropped, "row"),
            thousands(*rows),
        ),
        PrepareEvent::MemoryFitted(fitted) => {
            let (b, a) = (fitted.before, fitted.after);
            say!(
                "memory limit {}: reader blocks {} → {}, shuffle buffer {} → {}, prefetch {} → {}; budget {}",
                megabytes(fitted.limit_bytes),
                count(b.block_rows as u64, "row"),
                thousands(a.block_rows as u64),
                count(b.shuffle_buffer_rows as u64, "row"),
                thousands(a.shuffle_buffer_rows as u64),
                b.prefetch,
                a.prefetch,
                megabytes(fitted.budget_bytes),
            )
        }
        PrepareEvent::Resuming {
            path,
            iteration,
            epoch,
        } => say!(
            "resume: {} (iteration {}, epoch {epoch})",
            path.display(),
            thousands(*iteration),
        ),
    }
}

/// Shows training progress: the bar, one line per epoch, and `--debug-row-ids`.
pub(crate) struct CliObserver {
    pub(crate) quiet: bool,
    /// The progress bar (hidden with --quiet or when stderr is not a terminal).
    pub(crate) progress: ProgressBar,
    /// Files left out by `--on-bad-file skip`: unreadable at the start, or dropped in an
    /// earlier epoch.
    pub(crate) skipped_files: usize,
    pub(crate) epochs: usize,
    /// `--debug-row-ids`.
    pub(crate) row_ids: Option<RowIdLog>,
}

/// Writes the row ids of every batch (`--debug-row-ids`): one file per rank and epoch.
pub(crate) struct RowIdLog {
    dir: PathBuf,
    rank: usize,
    epoch: usize,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl RowIdLog {
    pub(crate) fn new(dir: PathBuf, rank: usize) -> Self {
        RowIdLog {
            dir,
            rank,
            epoch: 0,
            out: None,
        }
    }

    fn write(&mut self, epoch: usize, ids: &[u64]) -> std::io::Result<()> {
        use std::io::Write;
        if self.out.is_none() || self.epoch != epoch {
            if let Some(mut old) = self.out.take() {
                old.flush()?;
            }
            let path = self
                .dir
                .join(format!("rank-{}-epoch-{epoch}.txt", self.rank));
            self.out = Some(std::io::BufWriter::new(std::fs::File::create(path)?));
            self.epoch = epoch;
        }
        let out = self.out.as_mut().expect("opened above");
        let line: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        writeln!(out, "{}", line.join(" "))?;
        out.flush()
    }
}

impl TrainObserver for CliObserver {
    fn on_batch(&mut self, epoch: usize, row_ids: &[u64]) -> streamfit::error::Result<()> {
        if let Some(log) = self.row_ids.as_mut() {
            log.write(epoch, row_ids)
                .map_err(|e| Error::output(&log.dir, e))?;
        }
        Ok(())
    }

    fn on_step(&mut self, step: &StepRecord) -> streamfit::error::Result<()> {
        self.progress.inc(1);
        if step.iteration.is_multiple_of(64) {
            self.progress.set_message(format!(
                "epoch {}/{}, batch loss {:.4}",
                step.epoch, self.epochs, step.batch_loss
            ));
        }
        Ok(())
    }

    fn on_validation(&mut self, v: &ValidationRecord) -> streamfit::error::Result<()> {
        if !self.quiet {
            let line = validation_line(v);
            self.progress.suspend(|| say!("{line}"));
        }
        Ok(())
    }

    fn on_epoch(&mut self, e: &EpochSummary) -> streamfit::error::Result<()> {
        // Files dropped mid-epoch (`--on-bad-file skip`) are warnings, shown even when quiet.
        for dropped in &e.files_dropped {
            self.progress.suspend(|| {
                eprintln!(
                    "warning: dropping {} from epoch {} on (row group {} failed after {} of its rows; {} rows of the epoch skipped): {}",
                    dropped.path.display(),
                    e.epoch,
                    dropped.row_group,
                    thousands(dropped.rows_delivered),
                    thousands(dropped.rows_skipped),
                    dropped.error
                )
            });
        }
        let line = epoch_line(e, self.epochs, self.skipped_files);
        self.skipped_files += e.files_dropped.len();
        if self.quiet {
            return Ok(());
        }
        self.progress.suspend(|| say!("{line}"));
        Ok(())
    }
}

/// `valid at iteration I (epoch E): ...`: one evaluation of `--eval-every`.
fn validation_line(v: &ValidationRecord) -> String {
    let mut line = format!(
        "valid at iteration {} (epoch {}): loss {:.6}",
        thousands(v.iteration),
        v.epoch,
        v.valid_loss
    );
    if let Some(a) = v.valid_accuracy {
        line.push_str(&format!(", accuracy {:.2}%", a * 100.0));
    }
    if let Some(r) = v.valid_rmse {
        line.push_str(&format!(", RMSE {r:.5}"));
    }
    line.push_str(&format!(
        ", {}, {:.2} s",
        count(v.valid_rows, "row"),
        v.seconds
    ));
    if v.best {
        line.push_str(", best so far");
    }
    line
}

/// `epoch E/N: ...`: one finished epoch. The running training loss always; the full-data
/// loss, accuracy or RMSE only from the pass of `--full-loss`.
fn epoch_line(e: &EpochSummary, epochs: usize, skipped_files: usize) -> String {
    let mut loss = match e.train_loss {
        Some(l) if e.train_loss_rows < e.rows => format!(
            "train loss {l:.6} (over the {} since the resume)",
            count(e.train_loss_rows, "row")
        ),
        Some(l) => format!("train loss {l:.6}"),
        None => "train loss n/a".to_string(),
    };
    if let Some(l) = e.full_loss {
        loss.push_str(&format!(", loss {l:.6}"));
    }
    if let Some(a) = e.accuracy {
        loss.push_str(&format!(", accuracy {:.2}%", a * 100.0));
    }
    if let Some(r) = e.rmse {
        loss.push_str(&format!(", RMSE {r:.5}"));
    }
    if let Some(v) = e.valid {
        loss.push_str(&format!(", valid loss {:.6}", v.loss));
        if let Some(a) = v.accuracy {
            loss.push_str(&format!(" accuracy {:.2}%", a * 100.0));
        }
        if let Some(r) = v.rmse {
            loss.push_str(&format!(" RMSE {r:.5}"));
        }
    }
    let mut skipped = match skipped_files {
        0 => String::new(),
        n => format!(", {n} unreadable file(s) skipped"),
    };
    if e.rows_skipped > 0 {
        skipped.push_str(&format!(
            ", {} rows skipped ({} file(s) dropped)",
            thousands(e.rows_skipped),
            e.files_dropped.len()
        ));
    }
    // The evaluations' time, when any ran (the full-data pass, validation).
    let eval = if e.full_loss.is_some() || e.valid.is_some() || e.eval_seconds > 0.0 {
        format!(" (+{:.2} s eval)", e.eval_seconds)
    } else {
        String::new()
    };
    format!(
        "epoch {}/{epochs}: {}, {}, {loss}, {} rows/s, stall {:.1}%, shuffle ρ {}, {:.1} units/step, {:.2} s{eval}{skipped}",
        e.epoch,
        count(e.iterations, "iteration"),
        count(e.rows, "row"),
        thousands(e.rows_per_s as u64),
        e.stall_fraction * 100.0,
        if e.shuffle_spearman.is_finite() {
            format!("{:.3}", e.shuffle_spearman)
        } else {
            "n/a".to_string()
        },
        e.units_per_step,
        e.seconds,
    )
}
