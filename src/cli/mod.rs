//! The command line: flags, human output, output files and exit codes.
//!
//! Layer 4: nothing imports it. This file holds the `Cli`/`Command` types, `main` and the
//! dispatch; each subcommand is one module (its flags, their mapping onto the library's
//! options, and what it prints), beside the shared flag groups ([`args`]), output helpers
//! ([`output`]), the library's listeners ([`observer`]) and the tracing set-up ([`logging`]).
//! Library work (reading, training, scans of the data) is the `streamfit` crate's.
//!
//! Exit codes: 0 success; 1 a failure of the machine (an output file could not be written);
//! 2 bad input or flags (the message names the file, row group, row and column where they
//! apply); 130 interrupted (Ctrl-C/SIGTERM, after the checkpoint); 141 stdout closed.

mod args;
mod convert;
mod generate;
mod inspect;
mod logging;
mod observer;
mod output;
mod plot;
mod predict;
mod preprocess;
mod scan;
mod train;
mod tune;
mod unused;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use streamfit::comm::{Collective, SingleProcess};
use streamfit::error::Error;

/// Mini-batch gradient descent on Parquet datasets larger than RAM, with bounded memory.
#[derive(Parser, Debug)]
#[command(name = "streamfit", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a linear, logistic, softmax or MLP model by mini-batch gradient descent,
    /// streaming the data.
    ///
    /// With no DATA, trains on a synthetic demo dataset (1M rows × 64 features, ~260 MB of
    /// Parquet in 4 shards) generated once: under target/streamfit-demo/ inside a cargo project
    /// (or $CARGO_TARGET_DIR), else in the user's cache ($XDG_CACHE_HOME/streamfit/demo).
    Train(Box<train::TrainArgs>),
    /// Write a synthetic dataset (Parquet shards plus truth.json) with a known true model.
    Generate(generate::GenerateArgs),
    /// Read and decode the data with the training readers, without training: the read ceiling.
    Scan(scan::ScanArgs),
    /// Convert Parquet into streamfit shards: a memory-mapped, zero-decode format for
    /// repeated training. Each row group becomes one unit, so training on the shards gives the
    /// same batches and parameters as training on the Parquet source with the same seed. With
    /// train's preprocessing flags the shards store the encoded rows and the manifest the
    /// fitted preprocessing, which a model trained on the shards carries to predict and eval.
    Convert(convert::ConvertArgs),
    /// Show what is in a dataset and what training would use: columns with their stored and
    /// cast types and roles, rows, units, codecs, bytes per row and the memory budget for the
    /// given training flags; with --stats, per-column statistics from one streamed pass.
    Inspect(inspect::InspectArgs),
    /// Measure time per iteration, gradient noise and prefetch/reader throughput on DATA,
    /// then recommend a batch size and prefetch depth (see docs/tuning.md)
    Tune(tune::TuneArgs),
    /// Draw the loss curves of a `--metrics` file as an SVG chart.
    Plot(plot::PlotArgs),
    /// Stream DATA through a saved model and write one prediction per row, in input order,
    /// as Parquet (bounded memory).
    Predict(predict::PredictArgs),
    /// Print a saved model's loss and accuracy (classification) or RMSE (regression) on DATA.
    Eval(predict::EvalArgs),
}

/// Parses the arguments, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    streamfit::error::set_option_style(streamfit::error::OptionStyle::Flag);
    let cli = Cli::parse();
    #[cfg(feature = "mpi")]
    let mpi = streamfit::comm::mpi_world();
    #[cfg(feature = "mpi")]
    let comm: &dyn Collective = match &mpi {
        Some(world) => world,
        None => &SingleProcess,
    };
    #[cfg(not(feature = "mpi"))]
    let comm: &dyn Collective = &SingleProcess;
    if !cfg!(feature = "mpi") && streamfit::comm::launched_by_mpi() {
        eprintln!(
            "warning: started by an MPI launcher, but this streamfit runs as a single process (build it with `--features mpi` for data-parallel training)"
        );
    }
    match run(cli, comm) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            if comm.size() > 1 && code == 130 {
                // Every rank stopped at the same step (the signal is agreed on collectively)
                // and rank 0 wrote the checkpoint: end normally.
                if comm.rank() == 0 {
                    eprintln!("error: {e:#}");
                }
            } else if comm.size() > 1 {
                // The other ranks may be waiting in a collective: end the whole job.
                eprintln!("error: rank {} of {}: {e:#}", comm.rank(), comm.size());
                comm.abort(code);
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code as u8)
        }
    }
}

/// 130 for an interrupt, 2 for bad input or flags, 1 for the rest.
fn exit_code(e: &anyhow::Error) -> i32 {
    match e.chain().find_map(|c| c.downcast_ref::<Error>()) {
        Some(Error::Interrupted { .. }) => 130,
        Some(e) if e.is_input_error() => 2,
        _ => 1,
    }
}

fn run(cli: Cli, comm: &dyn Collective) -> Result<()> {
    if comm.size() > 1 && !matches!(cli.command, Command::Train(_)) {
        return Err(Error::config(
            "mpirun",
            "only `train` runs data-parallel; run the other commands without mpirun",
        )
        .into());
    }
    match cli.command {
        Command::Train(args) => train::run(*args, comm),
        Command::Generate(args) => generate::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Tune(args) => tune::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Predict(args) => predict::run_predict(args),
        Command::Eval(args) => predict::run_eval(args),
    }
}
