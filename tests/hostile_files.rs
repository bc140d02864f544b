//! Hostile input files on the read path (issue 14, items 2, 7, 11 and 14): each is refused up
//! front with an error naming the file (exit code 2), never a hang, a panic, a silent skip or
//! gigabytes of memory.
//!
//! - a page header that declares 2^31-1 uncompressed bytes (snappy and lz4): an error before
//!   anything is allocated, with the child's peak RSS under 200 MB;
//! - a FIFO as a data file, inside a data directory and as a shard: refused, not read;
//! - a dangling symbolic link in a data directory: an error, or a counted skip under
//!   `--on-bad-file skip`;
//! - a NaN in a shard whose checksum is valid: named by shard, row group, row and column;
//! - a file without the leading `PAR1` magic: not a Parquet file.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use streamfit::data::source::shard::Header;
use streamfit::generate::Task;

/// How long a run that should be refused up front may take: a hang fails the test here.
const REFUSAL: Duration = Duration::from_secs(20);

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn mkfifo(path: &Path) {
    let name = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `name` is a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(name.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

/// Runs the binary with `args` and returns its exit code, stderr and peak resident set size in
/// bytes (from `wait4`'s resource usage of that one child).
// The child is reaped by `wait4`, which clippy does not see.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str]) -> (Option<i32>, String, u64) {
    let mut child = Command::new(common::binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value to be overwritten.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own unreaped child; the pointers are valid for the call.
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(rc >= 0, "wait4 failed");
        if rc == pid {
            break (status, usage);
        }
        if started.elapsed() > REFUSAL {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "streamfit {} did not finish within {REFUSAL:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // ru_maxrss is in KiB on Linux.
    (code, reader.join().unwrap(), usage.ru_maxrss as u64 * 1024)
}

// ---- item 2: a page header that declares 2^31-1 uncompressed bytes ----------------------------

/// A Thrift compact-protocol struct being written: field headers carry the id delta.
struct Fields {
    out: Vec<u8>,
    last: i16,
}

impl Fields {
    fn new() -> Fields {
        Fields {
            out: Vec::new(),
            last: 0,
        }
    }

    fn header(&mut self, id: i16, kind: u8) {
        assert!((1..=15).contains(&(id - self.last)), "ids ascend by 1..=15");
        self.out.push((((id - self.last) as u8) << 4) | kind);
        self.last = id;
    }

    fn i32(mut self, id: i16, value: i32) -> Fields {
        self.header(id, 5);
        varint(&mut self.out, ((value << 1) ^ (value >> 31)) as u32 as u64);
        self
    }

    fn i64(mut self, id: i16, value: i64) -> Fields {
        self.header(id, 6);
        varint(&mut self.out, ((value << 1) ^ (value >> 63)) as u64);
        self
    }

    fn binary(mut self, id: i16, value: &[u8]) -> Fields {
        self.header(id, 8);
        varint(&mut self.out, value.len() as u64);
        self.out.extend_from_slice(value);
        self
    }

    fn strukt(mut self, id: i16, inner: Fields) -> Fields {
        self.header(id, 12);
        self.out.extend_from_slice(&inner.end());
        self
    }

    /// A list of `kind` elements, each already encoded.
    fn list(mut self, id: i16, kind: u8, items: &[Vec<u8>]) -> Fields {
        self.header(id, 9);
        assert!(items.len() < 15);
        self.out.push(((items.len() as u8) << 4) | kind);
        for item in items {
            self.out.extend_from_slice(item);
        }
        self
    }

    fn end(mut self) -> Vec<u8> {
        self.out.push(0);
        self.out
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[derive(Clone, Copy)]
enum Codec {
    Snappy,
    Lz4Raw,
}

impl Codec {
    /// The codec's id in the Parquet format.
    fn id(self) -> i32 {
        match self {
            Codec::Snappy => 1,
            Codec::Lz4Raw => 7,
        }
    }

    /// `data` compressed as literals only (valid streams of either format).
    fn compress(self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Codec::Snappy => {
                assert!(data.len() <= 65_536);
                varint(&mut out, data.len() as u64);
                out.push(61 << 2); // a literal whose length - 1 follows in two bytes
                out.extend_from_slice(&((data.len() - 1) as u16).to_le_bytes());
            }
            Codec::Lz4Raw => {
                out.push(15 << 4); // literals only, length 15 + the bytes that follow
                let mut rest = data.len() - 15;
                while rest >= 255 {
                    out.push(255);
                    rest -= 255;
                }
                out.push(rest as u8);
            }
        }
        out.extend_from_slice(data);
        out
    }
}

/// What the footer of a crafted file says of each column chunk's uncompressed size.
#[derive(Clone, Copy)]
enum Footer {
    /// The true size.
    Honest,
    /// 2^40 bytes, so that only the page's value count bounds it.
    Lies,
}

/// A Parquet file crafted byte by byte: required float columns `x` and `label`, 100 rows in one
/// row group, one PLAIN data page per column compressed with `codec`, whose header declares
/// `declared` uncompressed bytes (the true size is 400).
fn crafted_file(path: &Path, codec: Codec, declared: i32, footer: Footer) {
    const ROWS: i32 = 100;
    let mut file = b"PAR1".to_vec();
    let mut chunks = Vec::new();
    for (name, scale) in [("x", 1.0f32), ("label", 0.5)] {
        let values: Vec<u8> = (0..ROWS)
            .flat_map(|r| (r as f32 * scale).to_le_bytes())
            .collect();
        let compressed = codec.compress(&values);
        let data_page = Fields::new()
            .i32(1, ROWS) // num_values
            .i32(2, 0) // PLAIN
            .i32(3, 3) // RLE definition levels
            .i32(4, 3); // RLE repetition levels
        let header = Fields::new()
            .i32(1, 0) // DATA_PAGE
            .i32(2, declared)
            .i32(3, compressed.len() as i32)
            .strukt(5, data_page)
            .end();
        let offset = file.len() as i64;
        file.extend_from_slice(&header);
        file.extend_from_slice(&compressed);
        let meta = Fields::new()
            .i32(1, 4) // FLOAT
            .list(2, 5, &[vec![0], vec![6]]) // PLAIN, RLE (zigzag)
            .list(3, 8, &[[&[name.len() as u8][..], name.as_bytes()].concat()])
            .i32(4, codec.id())
            .i64(5, ROWS as i64)
            .i64(
                6,
                match footer {
                    Footer::Honest => (header.len() + values.len()) as i64,
                    Footer::Lies => 1 << 40,
                },
            )
            .i64(7, (header.len() + compressed.len()) as i64)
            .i64(9, offset);
        chunks.push(Fields::new().i64(2, offset).strukt(3, meta).end());
    }
    let column = |name: &str| {
        Fields::new()
            .i32(1, 4) // FLOAT
            .i32(3, 0) // REQUIRED
            .binary(4, name.as_bytes())
            .end()
    };
    let root = Fields::new().binary(4, b"schema").i32(5, 2).end();
    let row_group = Fields::new()
        .list(1, 12, &chunks)
        .i64(2, 2 * 4 * ROWS as i64)
        .i64(3, ROWS as i64)
        .end();
    let footer = Fields::new()
        .i32(1, 1)
        .list(2, 12, &[root, column("x"), column("label")])
        .i64(3, ROWS as i64)
        .list(4, 12, &[row_group])
        .end();
    file.extend_from_slice(&footer);
    file.extend_from_slice(&(footer.len() as u32).to_le_bytes());
    file.extend_from_slice(b"PAR1");
    std::fs::write(path, file).unwrap();
}

#[test]
fn a_page_declaring_two_gigabytes_is_refused_before_anything_is_allocated() {
    let dir = common::tempdir();
    for (codec, name) in [(Codec::Snappy, "snappy"), (Codec::Lz4Raw, "lz4")] {
        // The honest file trains: the crafting is right, and only the declared size differs.
        let honest = dir.path().join(format!("honest-{name}.parquet"));
        crafted_file(&honest, codec, 400, Footer::Honest);
        // (Its labels are 0..200, regression targets: a logistic model refuses them.)
        common::run_ok(&[
            "train",
            arg(&honest),
            "--quiet",
            "--epochs",
            "2",
            "--model",
            "linear",
        ]);

        let bomb = dir.path().join(format!("bomb-{name}.parquet"));
        crafted_file(&bomb, codec, i32::MAX, Footer::Honest);
        assert!(std::fs::metadata(&bomb).unwrap().len() < 1_500);
        for command in [
            vec!["train", arg(&bomb), "--quiet", "--epochs", "2"],
            vec!["inspect", arg(&bomb), "--stats"],
        ] {
            let (code, stderr, peak_rss) = run_measured(&command);
            assert_eq!(code, Some(2), "{command:?}: {stderr}");
            assert!(stderr.contains(arg(&bomb)), "{stderr}");
            assert!(stderr.contains("row group 0"), "{stderr}");
            assert!(stderr.contains("column `x`"), "{stderr}");
            assert!(
                stderr.contains("declares 2147483647 uncompressed bytes"),
                "{stderr}"
            );
            assert!(
                stderr.contains(
                    "at most 423 allowed (the column chunk's uncompressed size in the footer)"
                ),
                "{stderr}"
            );
            assert!(
                peak_rss < 200 << 20,
                "{command:?}: peak RSS {} MB",
                peak_rss >> 20
            );
        }
        // With the footer lying as well, the page's 100 values bound it.
        let both = dir.path().join(format!("bomb-both-{name}.parquet"));
        crafted_file(&both, codec, i32::MAX, Footer::Lies);
        let (code, stderr, peak_rss) = run_measured(&["train", arg(&both), "--quiet"]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("at most 2864 allowed (100 values of 4 bytes with their levels)"),
            "{stderr}"
        );
        assert!(peak_rss < 200 << 20, "peak RSS {} MB", peak_rss >> 20);
    }
}

// ---- item 7: FIFOs -----------------------------------------------------------------------------

#[test]
fn a_fifo_as_a_data_file_is_refused_instead_of_blocking() {
    let dir = common::tempdir();
    let fifo = dir.path().join("data.parquet");
    mkfifo(&fifo);
    for command in [
        vec!["train", arg(&fifo), "--quiet"],
        vec!["inspect", arg(&fifo)],
        vec!["convert", arg(&fifo), "--out", arg(&dir.path().join("out"))],
    ] {
        let stderr = common::run(&command, REFUSAL).fails_with(2);
        assert!(stderr.contains(arg(&fifo)), "{stderr}");
        assert!(
            stderr.contains("not a regular file (a named pipe)"),
            "{stderr}"
        );
    }
}

#[test]
fn a_fifo_inside_a_data_directory_is_an_unreadable_file() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 2_000, 4, 1, 500, 1);
    let fifo = data.join("part-00001.parquet");
    mkfifo(&fifo);
    let stderr = common::run(&["train", arg(&data), "--quiet"], REFUSAL).fails_with(2);
    assert!(stderr.contains(arg(&fifo)), "{stderr}");
    assert!(
        stderr.contains("not a regular file (a named pipe)"),
        "{stderr}"
    );
    // Under `--on-bad-file skip` it is skipped and counted like any unreadable file.
    let report = dir.path().join("report.json");
    let args = [
        "train",
        arg(&data),
        "--on-bad-file",
        "skip",
        "--epochs",
        "1",
        "--report",
        arg(&report),
    ];
    let out = common::run(&args, REFUSAL).ok();
    assert!(
        out.stdout.contains("1 unreadable file(s) skipped"),
        "{}",
        out.stdout
    );
    let report = common::read_json(&report);
    assert_eq!(report["skipped_files"][0]["path"], arg(&fifo));
}

/// The parquet dataset `data` converted to shards in `shards` (one shard per 500 rows).
fn shard_dataset(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    common::dataset(&data, Task::Logistic, 2_000, 4, 1, 500, 3);
    let shards = dir.join("shards");
    common::to_shards(&data, &shards, Some(1_000), 2);
    shards
}

#[test]
fn a_fifo_shard_in_a_manifest_is_refused_instead_of_blocking() {
    let dir = common::tempdir();
    let shards = shard_dataset(dir.path());
    let shard = shards.join("shard-00001.sfs");
    std::fs::remove_file(&shard).unwrap();
    mkfifo(&shard);
    let stderr = common::run(&["train", arg(&shards), "--quiet"], REFUSAL).fails_with(2);
    assert!(stderr.contains(arg(&shard)), "{stderr}");
    assert!(
        stderr.contains("not a regular file (a named pipe)"),
        "{stderr}"
    );
}

// ---- item 11: dangling symbolic links -----------------------------------------------------------

#[test]
fn a_dangling_symlink_in_a_data_directory_is_an_error_or_a_counted_skip() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 2_000, 4, 1, 500, 1);
    let link = data.join("part-00001.parquet");
    std::os::unix::fs::symlink(dir.path().join("gone.parquet"), &link).unwrap();
    let stderr = common::run(
        &["train", arg(&data), "--quiet", "--on-bad-file", "error"],
        REFUSAL,
    )
    .fails_with(2);
    assert!(stderr.contains(arg(&link)), "{stderr}");
    assert!(stderr.contains("gone.parquet"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    let out = common::run(
        &[
            "train",
            arg(&data),
            "--on-bad-file",
            "skip",
            "--epochs",
            "1",
        ],
        REFUSAL,
    )
    .ok();
    assert!(
        out.stdout.contains("1 unreadable file(s) skipped"),
        "{}",
        out.stdout
    );
}

// ---- item 14: a NaN in a shard with a valid checksum; the leading magic ------------------------

/// CRC32C (Castagnoli), bit by bit: the shard format's checksum.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82f6_3b78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[test]
fn a_nan_in_a_shard_with_a_valid_checksum_is_named_by_shard_row_and_column() {
    let dir = common::tempdir();
    let shards = shard_dataset(dir.path());
    let shard = shards.join("shard-00001.sfs");
    let mut bytes = std::fs::read(&shard).unwrap();
    let header = Header::decode(&bytes, bytes.len() as u64, &shard).unwrap();
    // Row 612 of the shard (row group 1 of it, row 112 there), feature f2.
    let (row, column) = (612u64, 2u64);
    let at = (header.rows_offset() + row * header.row_stride() + 4 * column) as usize;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let block = row / u64::from(header.block_rows);
    let first = block * u64::from(header.block_rows);
    let last = (first + u64::from(header.block_rows)).min(header.num_rows);
    let rows = (header.rows_offset() + first * header.row_stride()) as usize
        ..(header.rows_offset() + last * header.row_stride()) as usize;
    let crc = crc32c(&bytes[rows]);
    let at = (header.checksums_offset() + 4 * block) as usize;
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&shard, &bytes).unwrap();

    // With or without checksum verification (which the finiteness check rides along with).
    for verify in ["true", "false"] {
        let stderr = common::run(
            &[
                "train",
                arg(&shards),
                "--quiet",
                "--verify-checksums",
                verify,
            ],
            REFUSAL,
        )
        .fails_with(2);
        assert!(!stderr.contains("diverged"), "{stderr}");
        assert!(stderr.contains(arg(&shard)), "{stderr}");
        assert!(
            stderr.contains("row group 1, row 112: non-finite value NaN in column `f2`"),
            "{stderr}"
        );
    }
}

#[test]
fn a_file_without_the_leading_magic_is_not_parquet() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 2_000, 4, 1, 500, 1);
    let file = data.join("part-00000.parquet");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[..4].copy_from_slice(b"XXXX");
    std::fs::write(&file, &bytes).unwrap();
    let stderr = common::run(&["train", arg(&file), "--quiet"], REFUSAL).fails_with(2);
    assert!(stderr.contains(arg(&file)), "{stderr}");
    assert!(
        stderr.contains("not a parquet file (no PAR1 magic at the start)"),
        "{stderr}"
    );
}
