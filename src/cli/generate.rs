//! `streamfit generate`, and the demo dataset `train` makes when given no DATA.
//!
//! The data itself is the library's ([`streamfit::generate`]); this module maps flags, shows
//! progress and prints what was written.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use streamfit::data::source::write::Compression;
use streamfit::generate::{GenerateConfig, Task, generate};

use super::output::{megabytes, rows_progress, say, thousands};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TaskArg {
    /// x·w+b+noise
    Linear,
    /// 0/1 from σ(x·w+b)
    Logistic,
    /// Class ids 0..K-1 from softmax(W·x+b) (--classes)
    Multiclass,
    /// 0/1: inside the circle f0²+f1² < 2·ln 2 (not linearly separable)
    Circles,
    /// 0/1: f0 and f1 have different signs (not linearly separable)
    Xor,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CompressionArg {
    None,
    Snappy,
    Zstd,
    Lz4,
}

#[derive(Args, Debug)]
pub(crate) struct GenerateArgs {
    /// Kind of label
    #[arg(long, value_enum, default_value = "logistic")]
    task: TaskArg,
    /// Classes K of `--task multiclass`
    #[arg(long, default_value_t = 10, value_name = "K")]
    classes: usize,
    /// Total rows
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Feature columns f0..f{D-1}
    #[arg(long, default_value_t = 64)]
    features: usize,
    /// Number of Parquet files
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Rows per row group
    #[arg(long, default_value_t = 65_536)]
    row_group_rows: usize,
    /// Page compression
    #[arg(long, value_enum, default_value = "snappy")]
    compression: CompressionArg,
    /// Seed of every random draw
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created; an existing one must be empty, unless --force)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace the dataset in a non-empty --out: first remove the files generate and convert
    /// write there (part-*.parquet, truth.json, shard-*.sfs, manifest.json), so no older part
    /// is read with the new ones; other files stay
    #[arg(long)]
    force: bool,
    /// Print nothing but errors
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `streamfit generate`.
pub(crate) fn run(args: GenerateArgs) -> Result<()> {
    let config = GenerateConfig {
        task: match args.task {
            TaskArg::Linear => Task::Linear,
            TaskArg::Logistic => Task::Logistic,
            TaskArg::Multiclass => Task::Multiclass,
            TaskArg::Circles => Task::Circles,
            TaskArg::Xor => Task::Xor,
        },
        classes: args.classes,
        rows: args.rows,
        features: args.features,
        shards: args.shards,
        row_group_rows: args.row_group_rows,
        compression: match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Lz4 => Compression::Lz4,
        },
        seed: args.seed,
        out: args.out,
        force: args.force,
        ..GenerateConfig::default()
    };
    write_dataset(&config, args.quiet)
}

/// Generates `config`'s dataset with a progress bar, then prints what was written.
fn write_dataset(config: &GenerateConfig, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let progress = rows_progress(Some(config.rows), "written", quiet);
    let generated = generate(config, &|rows| progress.set_position(rows));
    progress.finish_and_clear();
    generated?;
    let bytes = dir_bytes(&config.out);
    let secs = started.elapsed().as_secs_f64();
    if !quiet {
        say!(
            "wrote {} rows × {} features to {} in {} file(s): {} in {:.1} s ({:.0} MB/s)",
            thousands(config.rows),
            config.features,
            config.out.display(),
            config.shards,
            megabytes(bytes),
            secs,
            bytes as f64 / 1e6 / secs.max(1e-9),
        );
    }
    Ok(())
}

/// Where the demo dataset lives, from the environment it is looked up in.
struct DemoEnv {
    /// The current directory.
    cwd: PathBuf,
    cargo_target_dir: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
}

impl DemoEnv {
    fn current() -> DemoEnv {
        DemoEnv {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            cargo_target_dir: std::env::var_os("CARGO_TARGET_DIR"),
            xdg_cache_home: std::env::var_os("XDG_CACHE_HOME"),
            home: std::env::var_os("HOME"),
        }
    }

    /// The demo's directory: `$CARGO_TARGET_DIR/streamfit-demo` when that is set, else
    /// `target/streamfit-demo` inside a cargo project (a `Cargo.toml` in the current directory
    /// or a parent: the README's quick start), else the user's cache directory
    /// (`$XDG_CACHE_HOME/streamfit/demo`, else `~/.cache/streamfit/demo`; an unset or relative
    /// XDG_CACHE_HOME is ignored, as the XDG spec says), and `target/streamfit-demo` when there
    /// is no home either.
    fn demo_dir(&self) -> PathBuf {
        let non_empty = |v: &Option<OsString>| v.clone().filter(|v| !v.is_empty());
        if let Some(target) = non_empty(&self.cargo_target_dir) {
            return PathBuf::from(target).join("streamfit-demo");
        }
        let in_project = self.cwd.ancestors().any(|d| d.join("Cargo.toml").is_file());
        let cache = non_empty(&self.xdg_cache_home)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| non_empty(&self.home).map(|h| PathBuf::from(h).join(".cache")));
        match cache {
            Some(cache) if !in_project => cache.join("streamfit").join("demo"),
            _ => PathBuf::from("target").join("streamfit-demo"),
        }
    }
}

/// The demo dataset of `train` without DATA, generated once (see [`DemoEnv::demo_dir`] for
/// where).
pub(crate) fn demo_dataset(quiet: bool) -> Result<PathBuf> {
    let dir = DemoEnv::current().demo_dir();
    if dir.join("truth.json").is_file() {
        return Ok(dir);
    }
    let mut partial = dir.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_dir_all(&partial);
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    if !quiet {
        say!(
            "no DATA given: generating the demo dataset (1,000,000 rows × 64 features, logistic) in {}",
            dir.display()
        );
    }
    let config = GenerateConfig {
        out: partial.clone(),
        ..GenerateConfig::default()
    };
    let started = Instant::now();
    write_dataset(&config, true)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir)
        .with_context(|| format!("cannot move {} to {}", partial.display(), dir.display()))?;
    if !quiet {
        say!(
            "wrote the demo dataset to {} in {:.1} s",
            dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(dir)
}

/// Bytes of the files directly in `dir` (0 when it cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(cwd: &Path, target: Option<&str>, xdg: Option<&str>, home: Option<&str>) -> DemoEnv {
        DemoEnv {
            cwd: cwd.to_path_buf(),
            cargo_target_dir: target.map(OsString::from),
            xdg_cache_home: xdg.map(OsString::from),
            home: home.map(OsString::from),
        }
    }

    #[test]
    fn the_demo_goes_to_the_user_cache_outside_a_cargo_project() {
        let outside = tempfile::tempdir().unwrap();
        let cwd = outside.path().join("a").join("b");
        std::fs::create_dir_all(&cwd).unwrap();
        assert_eq!(
            env(&cwd, None, Some("/xdg/cache"), Some("/home/u")).demo_dir(),
            PathBuf::from("/xdg/cache/streamfit/demo")
        );
        assert_eq!(
            env(&cwd, None, None, Some("/home/u")).demo_dir(),
            PathBuf::from("/home/u/.cache/streamfit/demo")
        );
        // A relative XDG_CACHE_HOME is ignored (XDG base directory spec).
        assert_eq!(
            env(&cwd, None, Some("rel"), Some("/home/u")).demo_dir(),
            PathBuf::from("/home/u/.cache/streamfit/demo")
        );
        assert_eq!(
            env(&cwd, None, None, None).demo_dir(),
            PathBuf::from("target/streamfit-demo")
        );
    }

    #[test]
    fn the_demo_stays_under_target_inside_a_cargo_project_or_cargo_target_dir() {
        let project = tempfile::tempdir().unwrap();
        std::fs::write(project.path().join("Cargo.toml"), "").unwrap();
        let nested = project.path().join("src");
        std::fs::create_dir_all(&nested).unwrap();
        for cwd in [project.path(), nested.as_path()] {
            assert_eq!(
                env(cwd, None, Some("/xdg"), Some("/home/u")).demo_dir(),
                PathBuf::from("target/streamfit-demo")
            );
        }
        let outside = tempfile::tempdir().unwrap();
        assert_eq!(
            env(outside.path(), Some("/t"), Some("/xdg"), Some("/home/u")).demo_dir(),
            PathBuf::from("/t/streamfit-demo")
        );
    }
}
