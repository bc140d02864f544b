//! Finding a dataset's files: the DATA arguments (files, directories, glob patterns) become an
//! ordered list of files, each with the hive partition values its directories name.
//!
//! - A file is listed as given.
//! - A directory is searched recursively; hidden (`.`) and `_`-prefixed entries are skipped, as
//!   Spark and pyarrow do, and only `.parquet`/`.parq` files are kept.
//! - A pattern (an argument with `*`, `?`, `[` or `{` that names no existing path) is matched
//!   with `globset` (`*` stays within one directory, `**` crosses them) against the files under
//!   its literal leading directories, with the same skipping.
//! - A URL ([`remote`](crate::data::source::remote)) is a prefix listed recursively, or
//!   matched as a pattern, or the one object it names (always, for `http(s)://`); its files
//!   are named by their redacted URLs.
//!
//! The files found inside one argument are ordered by their path relative to it (component by
//! component), so a copy of a tree elsewhere (another directory, or a bucket) gives the same
//! order; arguments keep the order
//! they were given in. Directory names `key=value` between an argument and a file are hive
//! partitions: the value is URL-decoded, and `__HIVE_DEFAULT_PARTITION__` is a null. Typing the
//! values and filtering on them is [`partition`](super::partition)'s job; reading the files is
//! the formats'.

use std::path::{Component, Path, PathBuf};

use globset::GlobBuilder;

use crate::data::source::remote;
use crate::error::{Error, Result};

/// The value Hive, Spark and pyarrow write for a null partition value.
pub const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

/// One file of a dataset and the partition values of the directories above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    pub path: PathBuf,
    /// `(key, value)` per `key=value` directory between the argument and the file, outermost
    /// first; `None` for [`HIVE_NULL`].
    pub partitions: Vec<(String, Option<String>)>,
}

/// Lists the files named by `args`, in order (see the module docs). A directory or pattern
/// with no data file in it is an `EmptyDataset` error naming it; a missing path is an I/O
/// error naming it.
pub fn list_files(args: &[PathBuf]) -> Result<Vec<ListedFile>> {
    let mut out = Vec::new();
    for arg in args {
        let found = list_one(arg)?;
        out.extend(found);
    }
    if out.is_empty() {
        return Err(Error::EmptyDataset {
            what: "no input files".to_string(),
        });
    }
    Ok(out)
}

/// The files of one argument.
fn list_one(arg: &Path) -> Result<Vec<ListedFile>> {
    if remote::is_url(arg) {
        return list_url(arg);
    }
    match std::fs::metadata(arg) {
        Ok(meta) if meta.is_dir() => {
            let files = walk(arg, &|_| true)?;
            if files.is_empty() {
                return Err(Error::EmptyDataset {
                    what: format!(
                        "no .parquet files in {} or its subdirectories (hidden and \
                         _-prefixed entries are skipped)",
                        arg.display()
                    ),
                });
            }
            files_under(arg, files)
        }
        // A dangling symbolic link is listed too: opening it fails, naming where it points
        // (or, under `on_bad_file = skip`, leaves it out).
        Ok(_) => Ok(vec![ListedFile {
            path: arg.to_path_buf(),
            partitions: Vec::new(),
        }]),
        Err(_) if std::fs::symlink_metadata(arg).is_ok() => Ok(vec![ListedFile {
            path: arg.to_path_buf(),
            partitions: Vec::new(),
        }]),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_pattern(arg) => list_pattern(arg),
        Err(e) => Err(crate::data::source::stat_error(arg, e)),
    }
}

/// The files under a URL: a prefix listed recursively (or matched, when the URL holds a glob
/// pattern), or the object it names, with the same skipping, order and partitions as a local
/// directory. An `http(s)://` URL names one file (its query string is no pattern).
fn list_url(url: &Path) -> Result<Vec<ListedFile>> {
    let text = url.to_string_lossy();
    let shown = remote::redact(&text);
    let is_http = text.to_ascii_lowercase().starts_with("http");
    let (base, glob) = if !is_http && is_pattern(url) {
        let literal: Vec<&str> = text
            .split('/')
            .take_while(|segment| !is_pattern(Path::new(segment)))
            .collect();
        let glob = GlobBuilder::new(&text)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::config("data", format!("bad pattern '{shown}': {e}")))?
            .compile_matcher();
        (format!("{}/", literal.join("/")), Some(glob))
    } else {
        (text.to_string(), None)
    };
    let objects = remote::list(Path::new(&base))?;
    let mut found: Vec<remote::ListedObject> = objects
        .into_iter()
        .filter(|o| {
            // The object the URL names is kept as given; files under a prefix by their name.
            o.relative.is_empty()
                || (o
                    .relative
                    .split('/')
                    .all(|c| !c.starts_with('.') && !c.starts_with('_'))
                    && is_data_name(&o.relative))
        })
        .filter(|o| glob.as_ref().is_none_or(|g| g.is_match(&o.name)))
        .collect();
    found.sort_by(|a, b| Path::new(&a.relative).cmp(Path::new(&b.relative)));
    if found.is_empty() {
        return Err(Error::EmptyDataset {
            what: match glob {
                Some(_) => format!("no files match '{shown}'"),
                None => format!(
                    "no object {shown} and no .parquet files under it (hidden and _-prefixed \
                     entries are skipped)"
                ),
            },
        });
    }
    found
        .into_iter()
        .map(|o| {
            Ok(ListedFile {
                partitions: partitions_of(Path::new(&o.relative))?,
                path: o.name,
            })
        })
        .collect()
}

/// True when `path` holds a glob metacharacter.
pub fn is_pattern(path: &Path) -> bool {
    path.to_string_lossy()
        .chars()
        .any(|c| matches!(c, '*' | '?' | '[' | '{'))
}

/// The files matching a glob pattern, searched under its literal leading directories.
fn list_pattern(pattern: &Path) -> Result<Vec<ListedFile>> {
    let text = pattern.to_string_lossy();
    let glob = GlobBuilder::new(&text)
        .literal_separator(true)
        .build()
        .map_err(|e| Error::config("data", format!("bad pattern '{text}': {e}")))?
        .compile_matcher();
    let base = literal_base(pattern);
    let missing = || Error::EmptyDataset {
        what: format!("no files match '{text}'"),
    };
    let Ok(meta) = std::fs::metadata(&base) else {
        return Err(missing());
    };
    if !meta.is_dir() {
        return Err(missing());
    }
    let files = walk(&base, &|p| glob.is_match(p))?;
    if files.is_empty() {
        return Err(missing());
    }
    files_under(&base, files)
}

/// The leading components of `pattern` that hold no metacharacter (`.` when there are none).
fn literal_base(pattern: &Path) -> PathBuf {
    let mut base = PathBuf::new();
    for component in pattern.components() {
        if is_pattern(Path::new(component.as_os_str())) {
            break;
        }
        base.push(component);
    }
    if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    }
}

/// Every data file under `dir` (recursively, skipping hidden and `_` entries) that `keep`
/// accepts, sorted by path relative to `dir`.
fn walk(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| Error::io(&current, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&current, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            // Follows symbolic links, as `metadata` does; a dangling link or a FIFO with a
            // data name is listed, and opening it fails like any unreadable file.
            if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                pending.push(path);
            } else if is_data_name(&name) && keep(&path) {
                found.push(path);
            }
        }
    }
    found.sort_by(|a, b| relative(dir, a).cmp(relative(dir, b)));
    Ok(found)
}

/// `path` relative to `dir` (which it is under).
fn relative<'p>(dir: &Path, path: &'p Path) -> &'p Path {
    path.strip_prefix(dir).unwrap_or(path)
}

/// A Parquet file name: `.parquet` or `.parq`.
fn is_data_name(name: &str) -> bool {
    name.ends_with(".parquet") || name.ends_with(".parq")
}

/// Attaches to each file under `dir` the partitions its relative directories name.
fn files_under(dir: &Path, files: Vec<PathBuf>) -> Result<Vec<ListedFile>> {
    files
        .into_iter()
        .map(|path| {
            let partitions = partitions_of(relative(dir, &path))?;
            Ok(ListedFile { path, partitions })
        })
        .collect()
}

/// The `key=value` directories of a relative path (its last component is the file).
fn partitions_of(relative: &Path) -> Result<Vec<(String, Option<String>)>> {
    let mut components: Vec<Component> = relative.components().collect();
    components.pop();
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for component in components {
        let Component::Normal(name) = component else {
            continue;
        };
        let name = name.to_string_lossy();
        let Some((key, value)) = name.split_once('=') else {
            continue;
        };
        let key = decode(key);
        if key.is_empty() {
            continue;
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(Error::config(
                "data",
                format!(
                    "partition key '{key}' appears twice in {}",
                    relative.display()
                ),
            ));
        }
        let value = (value != HIVE_NULL).then(|| decode(value));
        out.push((key, value));
    }
    Ok(out)
}

/// URL-decodes a partition key or value (`%20` → space; `+` stays `+`, as Hive writes it).
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    fn names(files: &[ListedFile], root: &Path) -> Vec<String> {
        files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn a_directory_is_searched_recursively_in_relative_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in [
            "year=2024/month=10/b.parquet",
            "year=2024/month=10/a.parquet",
            "year=2024/month=9/a.parquet",
            "year=2023/month=12/x.parq",
            "year=2023/_SUCCESS",
            "year=2023/.hidden.parquet",
            "_temporary/0/part.parquet",
            ".spark/part.parquet",
            "year=2023/notes.txt",
        ] {
            touch(&root.join(p));
        }
        let files = list_files(&[root.to_path_buf()]).unwrap();
        assert_eq!(
            names(&files, root),
            [
                "year=2023/month=12/x.parq",
                "year=2024/month=10/a.parquet",
                "year=2024/month=10/b.parquet",
                "year=2024/month=9/a.parquet",
            ]
        );
        assert_eq!(
            files[0].partitions,
            [
                ("year".to_string(), Some("2023".to_string())),
                ("month".to_string(), Some("12".to_string()))
            ]
        );
    }

    #[test]
    fn partition_values_are_url_decoded_and_the_hive_null_is_none() {
        let parts = partitions_of(Path::new(
            "city=New%20York/day=__HIVE_DEFAULT_PARTITION__/plain/f.parquet",
        ))
        .unwrap();
        assert_eq!(
            parts,
            [
                ("city".to_string(), Some("New York".to_string())),
                ("day".to_string(), None)
            ]
        );
        assert!(partitions_of(Path::new("a=1/a=2/f.parquet")).is_err());
    }

    #[test]
    fn a_pattern_matches_within_and_across_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in [
            "k=1/a.parquet",
            "k=2/sub/b.parquet",
            "c.parquet",
            "k=3/d.txt",
        ] {
            touch(&root.join(p));
        }
        let all = list_files(&[root.join("**/*.parquet")]).unwrap();
        assert_eq!(
            names(&all, root),
            ["c.parquet", "k=1/a.parquet", "k=2/sub/b.parquet"]
        );
        let one_level = list_files(&[root.join("k=*/*.parquet")]).unwrap();
        assert_eq!(names(&one_level, root), ["k=1/a.parquet"]);
        assert_eq!(one_level[0].partitions[0].0, "k");
        let err = list_files(&[root.join("nothing-*/*.parquet")]).unwrap_err();
        assert!(err.to_string().contains("no files match"), "{err}");
    }

    #[test]
    fn an_empty_tree_names_the_directory_and_what_was_skipped() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("_SUCCESS"));
        touch(&dir.path().join("sub/readme.txt"));
        let err = list_files(&[dir.path().to_path_buf()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("or its subdirectories"), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
    }

    #[test]
    fn arguments_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let (b, a) = (dir.path().join("b.parquet"), dir.path().join("a.parquet"));
        touch(&a);
        touch(&b);
        let files = list_files(&[b.clone(), a.clone()]).unwrap();
        assert_eq!(files[0].path, b);
        assert_eq!(files[1].path, a);
    }
}
