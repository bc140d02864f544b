//! URLs as DATA: which arguments are URLs, how they are shown, and scrubbing secrets from
//! messages.
//!
//! A URL is shown without its query string (a presigned S3 URL or an Azure SAS token carries
//! its signature there) and without user info (`user:password@`). Messages that come from a
//! store are also scrubbed of the values of the environment variables that hold credentials,
//! in case a store ever echoes one.

use std::path::Path;

/// The URL schemes read as remote data.
const SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https",
];

/// Environment variables whose values are secrets.
const SECRET_VARIABLES: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
];

/// The scheme of `text` when it is a URL streamfit reads (`s3://...`), lower-cased.
pub(super) fn scheme(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    (SCHEMES.contains(&scheme.as_str()) && !rest.is_empty()).then_some(scheme)
}

/// True when `path` is a URL of object storage or HTTP (`s3://`, `gs://`, `az://`, `abfs://`,
/// `http(s)://`).
pub fn is_url(path: &Path) -> bool {
    path.to_str().is_some_and(|s| scheme(s).is_some())
}

/// `url` without its query string, fragment and user info: what messages, logs, reports and
/// checkpoints show of it. Text that is not a URL is returned as it is.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let rest = match rest.split_once('/') {
        Some((authority, path)) => format!("{}/{path}", host_of(authority)),
        None => host_of(rest).to_string(),
    };
    format!("{scheme}://{rest}")
}

/// An authority without its `user:password@`.
fn host_of(authority: &str) -> &str {
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// `message` with every URL in it redacted and every credential the environment holds
/// replaced by `***`.
pub fn scrub(message: &str) -> String {
    let mut out: String = message
        .split_inclusive(char::is_whitespace)
        .map(|word| {
            let trimmed = word.trim_end();
            match trimmed.find("://") {
                Some(at) => {
                    let start = trimmed[..at]
                        .rfind(|c: char| !c.is_ascii_alphanumeric())
                        .map_or(0, |i| i + 1);
                    format!(
                        "{}{}{}",
                        &trimmed[..start],
                        redact(&trimmed[start..]),
                        &word[trimmed.len()..]
                    )
                }
                None => word.to_string(),
            }
        })
        .collect();
    for name in SECRET_VARIABLES {
        if let Ok(value) = std::env::var(name)
            && value.len() >= 4
        {
            out = out.replace(&value, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_by_scheme() {
        for url in [
            "s3://bucket/data",
            "gs://b/x.parquet",
            "az://container/p",
            "abfss://c@account.dfs.core.windows.net/p",
            "https://example.com/x.parquet",
            "HTTP://example.com/x.parquet",
        ] {
            assert!(is_url(Path::new(url)), "{url}");
        }
        for path in [
            "data/x.parquet",
            "/tmp/s3/x",
            "file.parquet",
            "s3:/bucket",
            "ftp://h/x",
        ] {
            assert!(!is_url(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn redaction_drops_the_query_fragment_and_user_info() {
        assert_eq!(
            redact("https://h.example/a/b.parquet?X-Amz-Signature=abc&X-Amz-Credential=k"),
            "https://h.example/a/b.parquet"
        );
        assert_eq!(
            redact("https://user:pw@h.example/x.parquet#frag"),
            "https://h.example/x.parquet"
        );
        assert_eq!(
            redact("s3://bucket/k=1/x.parquet"),
            "s3://bucket/k=1/x.parquet"
        );
        assert_eq!(
            redact("abfss://container@account.dfs.core.windows.net/p?sig=s"),
            "abfss://account.dfs.core.windows.net/p"
        );
        assert_eq!(redact("data/x.parquet"), "data/x.parquet");
    }

    #[test]
    fn scrubbing_redacts_urls_inside_messages() {
        let message =
            "Error performing GET http://127.0.0.1:9/b/x.parquet?sig=SECRET in 2ms - boom";
        let scrubbed = scrub(message);
        assert!(!scrubbed.contains("SECRET"), "{scrubbed}");
        assert!(
            scrubbed.contains("GET http://127.0.0.1:9/b/x.parquet in 2ms"),
            "{scrubbed}"
        );
        assert_eq!(scrub("(url=https://h/x?t=1)"), "(url=https://h/x");
    }
}
