//! Hive partition columns: the `key=value` directories of a dataset's files
//! ([`discover`](super::discover)) typed per key, and the `filter` that skips whole files by
//! them before any is opened.
//!
//! A key's values are 64-bit integers if every (non-null) value parses as one, else floats if
//! every value does, else strings. A filter is comparisons joined by `and`
//! (`year>=2023 and city='Paris'`); a comparison with a null value is false, as in SQL.
//! Nothing here reads a file.

use std::cmp::Ordering;
use std::fmt;

use crate::data::discover::ListedFile;
use crate::error::{Error, Result};

/// The type of a partition key, from all of its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionType {
    Int,
    Float,
    String,
}

impl fmt::Display for PartitionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PartitionType::Int => "int64",
            PartitionType::Float => "double",
            PartitionType::String => "string",
        })
    }
}

/// One partition value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionValue {
    Null,
    Int(i64),
    Float(f64),
    String(String),
}

impl PartitionValue {
    /// The value as a feature, for numeric keys (`None` for a null or a string).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PartitionValue::Int(v) => Some(*v as f64),
            PartitionValue::Float(v) => Some(*v),
            PartitionValue::Null | PartitionValue::String(_) => None,
        }
    }
}

impl fmt::Display for PartitionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionValue::Null => f.write_str("null"),
            PartitionValue::Int(v) => write!(f, "{v}"),
            PartitionValue::Float(v) => write!(f, "{v}"),
            PartitionValue::String(v) => f.write_str(v),
        }
    }
}

/// The partition keys of a dataset, their types, and each file's values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partitions {
    /// `(key, type)` in the order the directories nest.
    pub keys: Vec<(String, PartitionType)>,
    /// `values[file][key]`, in file order.
    pub values: Vec<Vec<PartitionValue>>,
}

impl Partitions {
    /// Types the partitions of `files`. Every file must have the same keys in the same order
    /// (an error naming the first file that differs).
    pub fn of(files: &[ListedFile]) -> Result<Partitions> {
        let Some(first) = files.first() else {
            return Ok(Partitions::default());
        };
        let names: Vec<&str> = first.partitions.iter().map(|(k, _)| k.as_str()).collect();
        for file in files {
            let these: Vec<&str> = file.partitions.iter().map(|(k, _)| k.as_str()).collect();
            if these != names {
                return Err(Error::config(
                    "data",
                    format!(
                        "{} has partition keys [{}] where {} has [{}]: every file of a \
                         partitioned dataset needs the same key=value directories",
                        file.path.display(),
                        these.join(", "),
                        first.path.display(),
                        names.join(", ")
                    ),
                ));
            }
        }
        let keys: Vec<(String, PartitionType)> = names
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let values = files.iter().filter_map(|f| f.partitions[k].1.as_deref());
                (name.to_string(), type_of(values))
            })
            .collect();
        let values = files
            .iter()
            .map(|f| {
                f.partitions
                    .iter()
                    .zip(&keys)
                    .map(|((_, raw), (_, ty))| typed(raw.as_deref(), *ty))
                    .collect()
            })
            .collect();
        Ok(Partitions { keys, values })
    }

    /// Position of `key`, if it is a partition key.
    pub fn index(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|(k, _)| k == key)
    }

    /// True when the dataset has no partition keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The names of the keys, comma-separated (for messages).
    pub fn key_list(&self) -> String {
        let names: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        names.join(", ")
    }
}

/// The narrowest type all `values` parse as.
fn type_of<'a>(values: impl Iterator<Item = &'a str> + Clone) -> PartitionType {
    if values.clone().all(|v| v.parse::<i64>().is_ok()) {
        PartitionType::Int
    } else if values.clone().all(|v| parse_float(v).is_some()) {
        PartitionType::Float
    } else {
        PartitionType::String
    }
}

/// A finite float (so `inf` and `nan` directory names stay strings).
fn parse_float(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn typed(raw: Option<&str>, ty: PartitionType) -> PartitionValue {
    match (raw, ty) {
        (None, _) => PartitionValue::Null,
        (Some(v), PartitionType::Int) => PartitionValue::Int(v.parse().expect("typed as int")),
        (Some(v), PartitionType::Float) => {
            PartitionValue::Float(parse_float(v).expect("typed as float"))
        }
        (Some(v), PartitionType::String) => PartitionValue::String(v.to_string()),
    }
}

/// A comparison operator of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
        }
    }
}

/// One `key OP value` of a filter, as written.
#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    key: String,
    op: Op,
    value: String,
}

/// A parsed `filter`: comparisons on partition keys joined by `and`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    text: String,
    terms: Vec<Comparison>,
}

impl Filter {
    /// Parses `year>=2023 and month<4` (operators `=`, `==`, `!=`, `<`, `<=`, `>`, `>=`; a value
    /// may be quoted with `'` or `"`; `and` in any case). An error names the `filter` option.
    pub fn parse(text: &str) -> Result<Filter> {
        let bad = |why: String| Error::config("filter", format!("'{text}': {why}"));
        let mut terms = Vec::new();
        for part in split_and(text) {
            let part = part.trim();
            if part.is_empty() {
                return Err(bad(
                    "an empty comparison (write key OP value, joined by and)".into(),
                ));
            }
            let Some((at, op, len)) = find_op(part) else {
                return Err(bad(format!(
                    "'{part}' has no comparison operator (=, !=, <, <=, >, >=)"
                )));
            };
            let key = part[..at].trim();
            let value = unquote(part[at + len..].trim());
            if key.is_empty() || value.is_empty() {
                return Err(bad(format!("'{part}' needs a key and a value")));
            }
            terms.push(Comparison {
                key: key.to_string(),
                op,
                value: value.to_string(),
            });
        }
        Ok(Filter {
            text: text.to_string(),
            terms,
        })
    }

    /// The filter as the user wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Checks that every key is a partition key of `partitions` and every value parses as its
    /// key's type.
    pub fn check(&self, partitions: &Partitions) -> Result<()> {
        for term in &self.terms {
            let Some(k) = partitions.index(&term.key) else {
                let known = if partitions.is_empty() {
                    "the data has no key=value partition directories".to_string()
                } else {
                    format!("the partition keys are {}", partitions.key_list())
                };
                return Err(Error::config(
                    "filter",
                    format!(
                        "'{}' is not a partition key ({known}); a filter only selects files \
                         by their partition directories",
                        term.key
                    ),
                ));
            };
            let ty = partitions.keys[k].1;
            let ok = match ty {
                PartitionType::Int => term.value.parse::<i64>().is_ok(),
                PartitionType::Float => parse_float(&term.value).is_some(),
                PartitionType::String => true,
            };
            if !ok {
                return Err(Error::config(
                    "filter",
                    format!(
                        "'{}' is not a value of partition key '{}' ({ty})",
                        term.value, term.key
                    ),
                ));
            }
        }
        Ok(())
    }

    /// True when a file with partition `values` (typed by `partitions`) passes. Call
    /// [`Filter::check`] first.
    pub fn keeps(&self, partitions: &Partitions, values: &[PartitionValue]) -> bool {
        self.keeps_values(&partitions.keys, values)
    }

    /// [`Filter::keeps`] given the keys alone.
    pub fn keeps_values(
        &self,
        keys: &[(String, PartitionType)],
        values: &[PartitionValue],
    ) -> bool {
        self.terms.iter().all(|term| {
            let k = keys
                .iter()
                .position(|(key, _)| *key == term.key)
                .expect("checked key");
            let ordering = match &values[k] {
                PartitionValue::Null => return false,
                PartitionValue::Int(v) => term.value.parse::<i64>().ok().map(|t| v.cmp(&t)),
                PartitionValue::Float(v) => {
                    parse_float(&term.value).and_then(|t| v.partial_cmp(&t))
                }
                PartitionValue::String(v) => Some(v.as_str().cmp(term.value.as_str())),
            };
            ordering.is_some_and(|o| term.op.holds(o))
        })
    }
}

/// Splits on the word `and` (any case) outside quotes.
fn split_and(text: &str) -> Vec<&str> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut quote) = (0, None);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None => {
                let word_start = i == 0 || bytes[i - 1].is_ascii_whitespace();
                let word_end = bytes.get(i + 3).is_none_or(|b| b.is_ascii_whitespace());
                if word_start && word_end && lower[i..].starts_with("and") {
                    parts.push(&text[start..i]);
                    start = i + 3;
                    i += 3;
                    continue;
                }
            }
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts
}

/// The first operator in `part` outside quotes: (byte offset, operator, its length).
fn find_op(part: &str) -> Option<(usize, Op, usize)> {
    let bytes = part.as_bytes();
    let mut quote = None;
    for (i, &c) in bytes.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => continue,
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None => {
                let next = bytes.get(i + 1).copied();
                let found = match (c, next) {
                    (b'=', Some(b'=')) => Some((Op::Eq, 2)),
                    (b'!', Some(b'=')) => Some((Op::Ne, 2)),
                    (b'<', Some(b'=')) => Some((Op::Le, 2)),
                    (b'>', Some(b'=')) => Some((Op::Ge, 2)),
                    (b'=', _) => Some((Op::Eq, 1)),
                    (b'<', _) => Some((Op::Lt, 1)),
                    (b'>', _) => Some((Op::Gt, 1)),
                    _ => None,
                };
                if let Some((op, len)) = found {
                    return Some((i, op, len));
                }
            }
        }
    }
    None
}

fn unquote(value: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(parts: &[(&str, Option<&str>)]) -> ListedFile {
        ListedFile {
            path: PathBuf::from("f.parquet"),
            partitions: parts
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn keys_are_typed_from_all_their_values() {
        let files = [
            file(&[
                ("year", Some("2023")),
                ("rate", Some("1")),
                ("city", Some("7")),
            ]),
            file(&[
                ("year", Some("2024")),
                ("rate", Some("0.5")),
                ("city", Some("Paris")),
            ]),
            file(&[("year", None), ("rate", Some("2")), ("city", None)]),
        ];
        let p = Partitions::of(&files).unwrap();
        let types: Vec<PartitionType> = p.keys.iter().map(|(_, t)| *t).collect();
        assert_eq!(
            types,
            [
                PartitionType::Int,
                PartitionType::Float,
                PartitionType::String
            ]
        );
        assert_eq!(p.values[1][1], PartitionValue::Float(0.5));
        assert_eq!(p.values[2][0], PartitionValue::Null);
        assert_eq!(p.values[0][2], PartitionValue::String("7".into()));
    }

    #[test]
    fn files_with_different_keys_are_refused() {
        let files = [file(&[("year", Some("1"))]), file(&[("month", Some("1"))])];
        let err = Partitions::of(&files).unwrap_err().to_string();
        assert!(err.contains("same key=value directories"), "{err}");
    }

    #[test]
    fn a_filter_keeps_files_by_typed_comparison() {
        let files = [
            file(&[("year", Some("2022")), ("city", Some("Oslo"))]),
            file(&[("year", Some("2023")), ("city", Some("Paris"))]),
            file(&[("year", Some("2024")), ("city", Some("Paris"))]),
            file(&[("year", None), ("city", Some("Paris"))]),
        ];
        let p = Partitions::of(&files).unwrap();
        let kept = |text: &str| -> Vec<usize> {
            let f = Filter::parse(text).unwrap();
            f.check(&p).unwrap();
            (0..files.len())
                .filter(|&i| f.keeps(&p, &p.values[i]))
                .collect()
        };
        assert_eq!(kept("year>=2023"), [1, 2]);
        assert_eq!(kept("year >= 2023 AND city = 'Paris'"), [1, 2]);
        assert_eq!(kept("year<2024 and city!=Paris"), [0]);
        assert_eq!(kept("year==2024"), [2]);
        assert_eq!(kept("city=\"a and b\""), Vec::<usize>::new());
        // 10 > 9 as integers, not as text.
        let files = [file(&[("m", Some("9"))]), file(&[("m", Some("10"))])];
        let p = Partitions::of(&files).unwrap();
        let f = Filter::parse("m>9").unwrap();
        assert!(!f.keeps(&p, &p.values[0]) && f.keeps(&p, &p.values[1]));
    }

    #[test]
    fn bad_filters_name_the_problem() {
        let p = Partitions::of(&[file(&[("year", Some("2022"))])]).unwrap();
        let err = |text: &str| match Filter::parse(text) {
            Err(e) => e.to_string(),
            Ok(f) => f.check(&p).unwrap_err().to_string(),
        };
        assert!(err("year").contains("no comparison operator"));
        assert!(err("year>=2023 and").contains("empty comparison"));
        assert!(err("month=3").contains("not a partition key"));
        assert!(err("month=3").contains("the partition keys are year"));
        assert!(err("year>=abc").contains("not a value of partition key 'year' (int64)"));
        assert!(err(">3").contains("needs a key and a value"));
    }
}
