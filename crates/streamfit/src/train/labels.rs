//! The label check: a row whose label the model's head cannot take is refused, by name.
//!
//! A multiclass head refuses a label that is not a class id in 0..K, a binary (logistic) head
//! one that is not 0 or 1 (so -1/+1 or 1/2 labels never train a silent nonsense model); the
//! error names the file and the row in it when the rows come from a [`Source`], and the row's
//! global id otherwise. This is a check on values the trainer is about to use, not a data reader.

use std::path::PathBuf;

use crate::data::RowBlock;
use crate::data::source::{Source, Unit};
use crate::error::{Error, Result};
use crate::model::Head;
use crate::pipeline::BatchSource;

/// Refuses a row whose label the head cannot take (a multiclass label that is not a class id
/// in 0..K, a binary label that is not 0 or 1), naming the file and the row in it.
pub fn check_labels(source: &dyn Source, head: Head, rows: &RowBlock) -> Result<()> {
    if head == Head::Regression {
        return Ok(());
    }
    check(
        Some((source.units(), source.files())),
        &source.schema().label,
        head,
        rows,
    )
}

/// [`check_labels`] for the rows of a batch stream: named in the source behind it, if any.
pub(crate) fn check_stream_labels(
    stream: &dyn BatchSource,
    head: Head,
    rows: &RowBlock,
) -> Result<()> {
    if head == Head::Regression {
        return Ok(());
    }
    let files = stream.source().map(|s| (s.units(), s.files()));
    check(files, &stream.schema().label, head, rows)
}

/// The first label in `targets` that `head` refuses. Labels are checked 64 at a time without
/// branching on each (random 0/1 labels defeat a branch predictor, and the comparisons then
/// vectorise); only a piece holding a refused label is searched one by one.
fn first_refused(head: Head, targets: &[f32]) -> Option<usize> {
    const PIECE: usize = 64;
    let piece_refused = |piece: &[f32]| match head {
        Head::Binary => piece
            .iter()
            .fold(false, |bad, &y| bad | ((y != 0.0) & (y != 1.0))),
        _ => piece.iter().fold(false, |bad, &y| bad | !head.accepts(y)),
    };
    let piece = targets.chunks(PIECE).position(piece_refused)?;
    let start = piece * PIECE;
    targets[start..]
        .iter()
        .position(|&y| !head.accepts(y))
        .map(|i| start + i)
}

/// The check itself; `files` locates a row by its global id (its units and files).
fn check(
    files: Option<(&[Unit], &[PathBuf])>,
    label: &str,
    head: Head,
    rows: &RowBlock,
) -> Result<()> {
    let Some(i) = first_refused(head, rows.targets()) else {
        return Ok(());
    };
    let id = rows.row_ids()[i];
    let (file, row) = match files {
        Some((units, files)) => {
            let unit = &units[units.partition_point(|u| u.first_row_id + u.num_rows <= id)];
            let file_start = units
                .iter()
                .find(|u| u.file == unit.file)
                .map_or(0, |u| u.first_row_id);
            (files[unit.file].clone(), id - file_start)
        }
        None => (PathBuf::from("(batch stream)"), id),
    };
    let (column, value) = (label.to_string(), f64::from(rows.targets()[i]));
    Err(match head {
        Head::Multiclass(classes) => Error::BadLabel {
            file,
            row,
            column,
            value,
            classes,
        },
        _ => Error::BadBinaryLabel {
            file,
            row,
            column,
            value,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first refused label is the one a plain scan finds, wherever it lies (inside a
    /// 64-label piece, at its edges, in a short last piece), for each kind of head.
    #[test]
    fn the_first_refused_label_is_the_first_one() {
        let heads = [Head::Binary, Head::Multiclass(3), Head::Regression];
        for n in [0, 1, 63, 64, 65, 200] {
            let good: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
            for head in heads {
                assert_eq!(first_refused(head, &good), None, "{n} labels, {head:?}");
            }
            for bad_at in [0, 1, 62, 63, 64, 127, 128, 199] {
                if bad_at >= n {
                    continue;
                }
                for bad in [0.5, 2.0, -1.0, f32::NAN, 3.0] {
                    let mut labels = good.clone();
                    labels[bad_at] = bad;
                    if bad_at + 70 < n {
                        labels[bad_at + 70] = 0.25; // a later one is not reported
                    }
                    for head in heads {
                        let plain = labels.iter().position(|&y| !head.accepts(y));
                        assert_eq!(first_refused(head, &labels), plain, "{bad} at {bad_at}");
                    }
                }
            }
        }
    }
}
