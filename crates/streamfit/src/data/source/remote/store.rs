//! The runtime, the stores and the settings shared by every remote file of the process.
//!
//! One multi-threaded tokio runtime (two worker threads named `remote-io`) is started on
//! first use and runs every request; the readers block on it. Stores are built once per
//! bucket (or, for `http(s)://`, per URL) from the environment with the builders' `from_env`
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`), with [`RemoteOptions`]' retries and timeout, and kept.
//! A store error becomes an [`Error::Io`] naming the redacted URL, with the HTTP status (and
//! the S3 error code) when there is one; permanent failures (403, 404, bad credentials) are
//! not retried by `object_store`, so they arrive at once.

use std::collections::HashMap;
use std::future::Future;
use std::io::ErrorKind;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::ObjectStore;
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};

use crate::data::source::remote::RemoteOptions;
use crate::data::source::remote::url::{redact, scheme, scrub};
use crate::error::{Error, Result};

static OPTIONS: Mutex<Option<RemoteOptions>> = Mutex::new(None);
static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
type StoreCache = Mutex<HashMap<String, Arc<dyn ObjectStore>>>;
static STORES: OnceLock<StoreCache> = OnceLock::new();

/// Sets the process's [`RemoteOptions`]. Stores built before keep theirs, so call it before
/// opening remote data (the command line does, from its flags).
pub fn configure(options: RemoteOptions) {
    *OPTIONS.lock().unwrap_or_else(|e| e.into_inner()) = Some(options);
}

/// The process's [`RemoteOptions`] ([`RemoteOptions::default`] unless [`configure`]d).
pub fn options() -> RemoteOptions {
    OPTIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_default()
}

/// The I/O runtime, started on first use.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("remote-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    runtime
        .as_ref()
        .map_err(|e| Error::internal(format!("cannot start the object-storage runtime: {e}")))
}

/// Runs `future` to completion on the I/O runtime, from a thread outside it.
pub(super) fn block_on<F: Future>(future: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(future))
}

/// Starts `task` on the I/O runtime and returns at once (read-ahead's fetches).
pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    runtime()?.spawn(task);
    Ok(())
}

/// The store holding `url` and the object's key in it.
pub(super) fn store_for(url: &str) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
    let bad = |reason: String| Error::config("data", format!("{}: {reason}", redact(url)));
    let scheme = scheme(url).ok_or_else(|| bad("not a URL streamfit reads".to_string()))?;
    let (_, rest) = url.split_once("://").expect("a URL has ://");
    let (cache_key, key) = if scheme.starts_with("http") {
        // The whole URL, query included (a presigned URL's signature), is the store's base.
        (url.to_string(), String::new())
    } else {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        (format!("{scheme}://{bucket}"), key.to_string())
    };
    let location = StorePath::parse(key.trim_end_matches('/'))
        .map_err(|e| bad(format!("not a valid object key: {}", scrub(&e.to_string()))))?;
    let cache = STORES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut stores = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(store) = stores.get(&cache_key) {
        return Ok((store.clone(), location));
    }
    let store = build_store(&scheme, &cache_key, options()).map_err(|e| {
        Error::config(
            "data",
            format!(
                "{}: cannot set up the store: {}",
                redact(url),
                scrub(&e.to_string())
            ),
        )
    })?;
    stores.insert(cache_key, store.clone());
    Ok((store, location))
}

/// Builds the store for `base` (`s3://bucket`, or a whole `http(s)://` URL).
fn build_store(
    scheme: &str,
    base: &str,
    options: RemoteOptions,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    // rustls needs one process-wide crypto provider; ring keeps the build free of C.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: options.io_retries,
        retry_timeout: Duration::from_millis(options.io_timeout_ms)
            .saturating_mul(options.io_retries as u32 + 1)
            .max(Duration::from_secs(1)),
    };
    let timeout = format!("{}ms", options.io_timeout_ms.max(1));
    Ok(match scheme {
        "s3" | "s3a" => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            Arc::new(
                AmazonS3Builder::from_env()
                    .with_url(base)
                    .with_retry(retry)
                    .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), timeout)
                    .build()?,
            )
        }
        "gs" => {
            use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
            Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(base)
                    .with_retry(retry)
                    .with_config(GoogleConfigKey::Client(ClientConfigKey::Timeout), timeout)
                    .build()?,
            )
        }
        "http" | "https" => {
            use object_store::http::HttpBuilder;
            let client = object_store::ClientOptions::new()
                .with_timeout(Duration::from_millis(options.io_timeout_ms.max(1)))
                .with_allow_http(true);
            Arc::new(
                HttpBuilder::new()
                    .with_url(base)
                    .with_retry(retry)
                    .with_client_options(client)
                    .build()?,
            )
        }
        _ => {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(base)
                    .with_retry(retry)
                    .with_config(AzureConfigKey::Client(ClientConfigKey::Timeout), timeout)
                    .build()?,
            )
        }
    })
}

/// A store error as a streamfit error naming the object (its redacted URL): the HTTP status
/// and, for S3, the error code (`NoSuchBucket`), else the scrubbed message.
pub(super) fn store_error(name: &str, e: &object_store::Error) -> Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    };
    let reason = match status_of(e) {
        Some((status, body)) => {
            let code = body.as_deref().and_then(s3_error_code);
            let meaning = match (status, code.as_deref()) {
                (404, Some("NoSuchBucket")) => "the bucket does not exist",
                (404, _) => "no such object",
                (403, Some("SignatureDoesNotMatch")) => {
                    "access denied: the credentials are wrong (the secret key does not match)"
                }
                (403, Some("InvalidAccessKeyId")) => {
                    "access denied: the access key id is not known to the store"
                }
                (401 | 403, _) => {
                    "access denied: the credentials are missing, wrong or lack permission"
                }
                (_, _) => "request failed",
            };
            match code {
                Some(code) => format!("HTTP {status}, {code}: {meaning}"),
                None => format!("HTTP {status}: {meaning}"),
            }
        }
        None => scrub(&error_chain(e)),
    };
    Error::io(redact(name), std::io::Error::new(kind, reason))
}

/// The HTTP status and response body of a store error, when it came from a response
/// (`object_store` keeps its request errors private: they are read from the message, which
/// says "non-2xx status code: 404 Not Found: <body>").
fn status_of(e: &object_store::Error) -> Option<(u16, Option<String>)> {
    let text = error_chain(e);
    let marker = "status code: ";
    let at = text.find(marker)? + marker.len();
    let status: u16 = text.get(at..at + 3)?.parse().ok()?;
    Some((status, Some(text[at..].to_string())))
}

/// The `<Code>` of an S3 error body.
fn s3_error_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    let code = &body[start..end];
    (!code.is_empty() && code.len() < 64 && code.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| code.to_string())
}

/// An error and its causes, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_codes_are_read_from_the_body() {
        let body =
            "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>m</Message></Error>";
        assert_eq!(s3_error_code(body).as_deref(), Some("NoSuchBucket"));
        assert_eq!(s3_error_code("<Code>a b</Code>"), None);
        assert_eq!(s3_error_code("plain"), None);
    }

    #[test]
    fn gcs_and_azure_stores_build_and_fail_with_a_redacted_message() {
        // No emulator here: an unknown host fails promptly, without retries.
        configure(RemoteOptions {
            io_retries: 0,
            io_timeout_ms: 2_000,
            ..RemoteOptions::default()
        });
        for url in ["gs://no-such-bucket/x.parquet", "az://container/x.parquet"] {
            let result = store_for(url);
            if let Err(e) = &result {
                // Building may fail for lack of an account name: a clear `data` error.
                assert!(e.to_string().contains(&redact(url)), "{e}");
            }
        }
    }
}
