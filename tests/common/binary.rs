//! Runs the built `streamfit` binary under a time limit and checks its exit code, printing what
//! it wrote when the code is not the expected one. What the output should say is the tests' to
//! assert; starting a process to signal it (`interrupt.rs`) is the test's own business.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The time limit of [`run_ok`] and [`run_err`]: a run on the tests' small datasets that takes
/// longer is hanging.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The built `streamfit` binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamfit"))
}

/// How a finished command exited and what it printed (decoded lossily as UTF-8).
pub struct Outcome {
    /// The command line, for failure messages.
    pub command: String,
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The outcome of `command` (as it should appear in failure messages) from its output.
    pub fn from_output(command: String, output: Output) -> Outcome {
        Outcome {
            command,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts that the command succeeded (exit code 0) and returns the outcome.
    #[track_caller]
    pub fn ok(self) -> Outcome {
        assert!(self.code == Some(0), "{}", self.unexpected("success"));
        self
    }

    /// Asserts that the command exited with `code` and returns its stderr.
    #[track_caller]
    pub fn fails_with(self, code: i32) -> String {
        assert!(
            self.code == Some(code),
            "{}",
            self.unexpected(&format!("exit code {code}"))
        );
        self.stderr
    }

    fn unexpected(&self, expected: &str) -> String {
        let got = match self.code {
            Some(code) => format!("exit code {code}"),
            None => "an end by a signal".to_string(),
        };
        format!(
            "{}: expected {expected}, got {got}\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.stdout, self.stderr
        )
    }
}

/// Runs the binary with `args`, failing the test if it takes longer than `timeout`.
#[track_caller]
pub fn run(args: &[&str], timeout: Duration) -> Outcome {
    let mut command = Command::new(binary());
    command.args(args);
    let outcome = run_command(command, timeout);
    Outcome {
        command: format!("streamfit {}", args.join(" ")),
        ..outcome
    }
}

/// Runs the binary with `args` within [`TIMEOUT`], asserts that it succeeded and returns what it
/// printed.
#[track_caller]
pub fn run_ok(args: &[&str]) -> Outcome {
    run(args, TIMEOUT).ok()
}

/// Runs the binary with `args` within [`TIMEOUT`], asserts that it exited with `code` and
/// returns its stderr.
#[track_caller]
pub fn run_err(args: &[&str], code: i32) -> String {
    run(args, TIMEOUT).fails_with(code)
}

/// Runs `command` with its output captured, failing the test if it takes longer than `timeout`.
#[track_caller]
pub fn run_command(mut command: Command, timeout: Duration) -> Outcome {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            let output = child.wait_with_output().expect("output");
            return Outcome::from_output(format!("{command:?}"), output);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!("{command:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What an exited child started with `stderr(Stdio::piped())` wrote to its stderr.
pub fn child_stderr(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    stderr
}
