//! Servers for the object-storage tests, in the test process on 127.0.0.1 ephemeral ports:
//! an S3 server over a directory (`s3s` + `s3s-fs`, authentication on; each subdirectory of
//! the root is a bucket) that can fail or delay some requests, and a plain HTTP server of the
//! files in a directory (HEAD and ranged GET). Each stops when dropped.
// Every test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::Body;

use crate::common::{Outcome, TIMEOUT, binary, run_command};

/// The access key the test S3 server accepts.
pub const ACCESS_KEY: &str = "streamfit-test-key";
/// The secret key the test S3 server accepts: it must never appear in any output.
pub const SECRET_KEY: &str = "s3cr3t-Do-Not-Print-9f8e7d";

/// How the S3 server treats requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Answer every Nth request with 503 Slow Down (0: never).
    pub fail_every: usize,
    /// Added latency per request.
    pub delay: Duration,
    /// Answer every listing (a GET with `list-type=2`) with 403 Access Denied.
    pub refuse_lists: bool,
}

/// A rewrite of one object mid-run: when the server is asked for the `nth` ranged GET of
/// object `when_reading` (a path such as `/bucket/data/a.parquet`; the first is the footer's
/// read when a file is opened), it first writes `bytes` over `path` (a file of the served
/// directory), then answers. Happens once.
#[derive(Debug, Clone)]
pub struct Rewrite {
    pub when_reading: String,
    pub nth: usize,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// A running server; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    /// Requests seen (S3) or served (HTTP).
    pub requests: Arc<AtomicUsize>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Server {
    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A command running the binary with `args` against this S3 server with the right
    /// credentials (or `secret` instead of the right secret key).
    pub fn command(&self, args: &[&str], secret: &str) -> Command {
        let mut command = Command::new(binary());
        command.args(args);
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test server runtime")
}

/// Serves connections accepted on a fresh 127.0.0.1 port with `serve` on `runtime`.
fn listen<S>(runtime: &tokio::runtime::Runtime, service: S) -> SocketAddr
where
    S: Service<hyper::Request<hyper::body::Incoming>, Response = hyper::Response<Body>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    runtime.spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let connection = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    });
    addr
}

/// Starts an S3 server over `root` (buckets are its subdirectories).
pub fn s3_server(root: &Path, faults: Faults) -> Server {
    s3_server_rewriting(root, faults, None)
}

/// [`s3_server`] that also performs `rewrite` (see [`Rewrite`]).
pub fn s3_server_rewriting(root: &Path, faults: Faults, rewrite: Option<Rewrite>) -> Server {
    let runtime = runtime();
    let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let s3 = builder.build();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let ranged_reads = Arc::new(AtomicUsize::new(0));
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let s3 = s3.clone();
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(rewrite) = &rewrite
            && request.method() == hyper::Method::GET
            && request.uri().path() == rewrite.when_reading
            && request.headers().contains_key(hyper::header::RANGE)
            && ranged_reads.fetch_add(1, Ordering::SeqCst) + 1 == rewrite.nth
        {
            std::fs::write(&rewrite.path, &rewrite.bytes).expect("rewrite the object");
        }
        let listing = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("list-type=2"));
        async move {
            if faults.refuse_lists && listing {
                let body =
                    "<Error><Code>AccessDenied</Code><Message>listing refused</Message></Error>";
                return Ok(hyper::Response::builder()
                    .status(403)
                    .body(Body::from(body.to_string()))
                    .expect("response"));
            }
            if !faults.delay.is_zero() {
                tokio::time::sleep(faults.delay).await;
            }
            if faults.fail_every > 0 && n.is_multiple_of(faults.fail_every) {
                let body = "<Error><Code>SlowDown</Code><Message>injected</Message></Error>";
                return Ok(hyper::Response::builder()
                    .status(503)
                    .body(Body::from(body.to_string()))
                    .expect("response"));
            }
            s3.call(request.map(Body::from)).await
        }
    });
    let addr = listen(&runtime, service);
    Server {
        addr,
        runtime: Some(runtime),
        requests,
    }
}

/// Starts a plain HTTP server of the files in `dir` (HEAD and GET with one byte range; any
/// query string is ignored).
pub fn http_server(dir: &Path) -> Server {
    let runtime = runtime();
    let dir: Arc<PathBuf> = Arc::new(dir.to_path_buf());
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let dir = dir.clone();
        seen.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, std::convert::Infallible>(serve_file(&dir, &request)) }
    });
    let addr = listen(&runtime, service);
    Server {
        addr,
        runtime: Some(runtime),
        requests,
    }
}

fn serve_file(
    dir: &Path,
    request: &hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Body> {
    let name = request.uri().path().trim_start_matches('/');
    let respond = |status: u16, body: Vec<u8>| {
        hyper::Response::builder()
            .status(status)
            .body(Body::from(body))
            .expect("response")
    };
    let Ok(data) = std::fs::read(dir.join(name)) else {
        return respond(404, b"not found".to_vec());
    };
    let len = data.len();
    let builder = hyper::Response::builder()
        .header("accept-ranges", "bytes")
        .header("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")
        .header("etag", format!("\"{len}-{}\"", crc(&data)));
    if request.method() == hyper::Method::HEAD {
        return builder
            .header("content-length", len)
            .body(Body::from(Vec::new()))
            .expect("response");
    }
    let range = request
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
    match range {
        Some((start, end)) if start <= end && start < len => {
            let end = end.min(len - 1);
            builder
                .status(206)
                .header("content-range", format!("bytes {start}-{end}/{len}"))
                .header("content-length", end + 1 - start)
                .body(Body::from(data[start..=end].to_vec()))
                .expect("response")
        }
        _ => builder
            .header("content-length", len)
            .body(Body::from(data))
            .expect("response"),
    }
}

fn crc(data: &[u8]) -> u32 {
    data.iter()
        .fold(17u32, |h, &b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
}

/// Runs the binary against `server` with the right credentials; the secret is never printed.
pub fn run_s3(server: &Server, args: &[&str]) -> Outcome {
    let outcome = run_command(server.command(args, SECRET_KEY), TIMEOUT);
    assert!(
        !outcome.stderr.contains(SECRET_KEY) && !outcome.stdout.contains(SECRET_KEY),
        "the secret was printed:\n{}",
        outcome.stderr
    );
    outcome
}

/// A generated dataset under `root/bucket/data` (4 files, row groups of `group` rows).
pub fn bucket_dataset(root: &Path, rows: u64, group: usize) {
    crate::common::dataset(
        &root.join("bucket/data"),
        streamfit::generate::Task::Logistic,
        rows,
        4,
        4,
        group,
        3,
    );
}
