//! Page sizes checked before a unit is decoded, so that a page header cannot make the reader
//! allocate what its data cannot need.
//!
//! The parquet crate sizes the buffer it decompresses a page into by the page header's
//! `uncompressed_page_size` and zero-fills it first (snappy, lz4): a 1.4 KB file whose headers
//! claim 2^31-1 bytes per page makes it allocate gigabytes. Before a unit's pages are read,
//! [`check_row_group`] walks the page headers of its used column chunks (Thrift compact,
//! through the bounds-checked [`Compact`] reader, exactly as the crate walks them: from the
//! chunk's first page to the end of its compressed bytes) and refuses a page whose declared
//! uncompressed size is larger than
//!
//! - what its values can need: for a fixed-width type, its value count times the width plus
//!   generous room for levels and encodings (no legal page comes near); for byte arrays,
//!   [`MAX_BYTE_ARRAY_PAGE_BYTES`];
//! - the column chunk's uncompressed size in the footer (a page is part of the chunk);
//! - [`MAX_PAGE_BYTES`], whatever the type.
//!
//! It also refuses what the crate would fail on anyway (a header it cannot read, a negative
//! size, a page that runs past its chunk), with the page and byte named. Nothing is allocated
//! and nothing decoded; the cost is one header read per page.

use parquet::arrow::ProjectionMask;
use parquet::basic::Type as PhysicalType;
use parquet::file::metadata::{ColumnChunkMetaData, RowGroupMetaData};

use crate::data::source::parquet::ranges::ByteRanges;

use super::thrift::{Compact, I32, STOP, STRUCT};

/// The most uncompressed bytes any page may declare.
pub(super) const MAX_PAGE_BYTES: u64 = 1 << 30;
/// The most uncompressed bytes a page of a byte-array column may declare.
pub(super) const MAX_BYTE_ARRAY_PAGE_BYTES: u64 = 256 << 20;
/// Room per value beyond its width: repetition and definition levels and the worst overhead
/// of any encoding (RLE runs of one, delta blocks), each well under this.
const SLACK_BYTES_PER_VALUE: u64 = 24;
/// Room per page: level lengths, bit widths and encoding headers.
const SLACK_BYTES_PER_PAGE: u64 = 64;

/// What a page header declares.
#[derive(Debug, PartialEq, Eq)]
struct PageHeader {
    /// Bytes of the header itself.
    header_bytes: usize,
    uncompressed_bytes: i32,
    compressed_bytes: i32,
    /// Values of a data or dictionary page (`None` for other pages).
    num_values: Option<i32>,
}

/// Checks the page headers of the column chunks of `row_group` that `mask` reads, in the file
/// `file`. `Err` gives the reason, naming the column, page and sizes (the caller names the
/// file and row group).
pub(super) fn check_row_group(
    file: &ByteRanges,
    row_group: &RowGroupMetaData,
    mask: &ProjectionMask,
) -> Result<(), String> {
    let leaves = (0..row_group.num_columns()).filter(|&leaf| mask.leaf_included(leaf));
    for leaf in leaves {
        let column = row_group.column(leaf);
        check_chunk(file, column)
            .map_err(|reason| format!("column `{}`: {reason}", column.column_path().string()))?;
    }
    Ok(())
}

/// The most uncompressed bytes one page of `column` may declare before it is refused:
/// [`MAX_BYTE_ARRAY_PAGE_BYTES`] for byte arrays; for fixed-width values, what all of the
/// chunk's values can need with their levels, at most [`MAX_PAGE_BYTES`].
pub(super) fn max_page_bytes(column: &ColumnChunkMetaData) -> u64 {
    match value_bytes(column) {
        None => MAX_BYTE_ARRAY_PAGE_BYTES,
        Some(width) => {
            let values = u64::try_from(column.num_values()).unwrap_or(0);
            values
                .saturating_mul(width + SLACK_BYTES_PER_VALUE)
                .saturating_add(SLACK_BYTES_PER_PAGE)
                .min(MAX_PAGE_BYTES)
        }
    }
}

/// The widest value of a column's physical type, in bytes; `None` for byte arrays.
fn value_bytes(column: &ColumnChunkMetaData) -> Option<u64> {
    match column.column_type() {
        PhysicalType::BOOLEAN => Some(1),
        PhysicalType::INT32 | PhysicalType::FLOAT => Some(4),
        PhysicalType::INT64 | PhysicalType::DOUBLE => Some(8),
        PhysicalType::INT96 => Some(12),
        PhysicalType::FIXED_LEN_BYTE_ARRAY => {
            Some(u64::try_from(column.column_descr().type_length()).unwrap_or(0))
        }
        PhysicalType::BYTE_ARRAY => None,
    }
}

fn check_chunk(file: &ByteRanges, column: &ColumnChunkMetaData) -> Result<(), String> {
    let start = column
        .dictionary_page_offset()
        .unwrap_or(column.data_page_offset());
    let len = column.compressed_size();
    let range = u64::try_from(start)
        .ok()
        .zip(u64::try_from(len).ok())
        .and_then(|(start, len)| Some((start, start.checked_add(len)?)))
        .filter(|&(_, end)| end <= file.file_len());
    let Some((start, end)) = range else {
        return Err(format!(
            "the column chunk's {len} bytes at offset {start} lie outside the file's {} bytes",
            file.file_len()
        ));
    };
    // Offsets below are into the chunk; messages name them as bytes of the file.
    let chunk = file
        .slice(start, end)
        .ok_or_else(|| format!("the column chunk at offset {start} was not read"))?;
    let base = start as usize;
    let (start, end) = (0u64, end - start);
    let chunk_uncompressed = u64::try_from(column.uncompressed_size()).unwrap_or(0);
    let width = value_bytes(column);
    let (mut at, end) = (start as usize, end as usize);
    let mut page = 0usize;
    while at < end {
        let header = read_page_header(&chunk[at..end]).ok_or_else(|| {
            format!(
                "page {page} at byte {}: its header cannot be read",
                base + at
            )
        })?;
        let where_ = format!("page {page} at byte {}", base + at);
        let (Ok(uncompressed), Ok(compressed)) = (
            u64::try_from(header.uncompressed_bytes),
            u64::try_from(header.compressed_bytes),
        ) else {
            return Err(format!(
                "{where_}: negative page size ({} uncompressed, {} compressed bytes)",
                header.uncompressed_bytes, header.compressed_bytes
            ));
        };
        let needed = match (header.num_values, width) {
            (Some(values), Some(width)) => {
                let values = u64::try_from(values).unwrap_or(0);
                Some((
                    values
                        .saturating_mul(width + SLACK_BYTES_PER_VALUE)
                        .saturating_add(SLACK_BYTES_PER_PAGE),
                    format!("{values} values of {width} bytes with their levels"),
                ))
            }
            (_, None) => Some((
                MAX_BYTE_ARRAY_PAGE_BYTES,
                "the limit for a byte-array page".to_string(),
            )),
            (None, Some(_)) => None,
        };
        let limits = [
            needed,
            Some((
                chunk_uncompressed,
                "the column chunk's uncompressed size in the footer".to_string(),
            )),
            Some((MAX_PAGE_BYTES, "the limit for any page".to_string())),
        ];
        if let Some((allowed, what)) = limits
            .into_iter()
            .flatten()
            .filter(|(allowed, _)| uncompressed > *allowed)
            .min_by_key(|(allowed, _)| *allowed)
        {
            return Err(format!(
                "{where_} declares {uncompressed} uncompressed bytes; at most {allowed} allowed ({what})"
            ));
        }
        let next = (at + header.header_bytes)
            .checked_add(compressed as usize)
            .filter(|&next| next <= end)
            .ok_or_else(|| {
                format!(
                    "{where_} declares {compressed} compressed bytes, more than the {} left in its column chunk",
                    end - at - header.header_bytes
                )
            })?;
        at = next;
        page += 1;
    }
    Ok(())
}

/// The fields of a `PageHeader` that bound its size: 1 type, 2 uncompressed size, 3
/// compressed size, and `num_values` (field 1) of the data (5), dictionary (7) or v2 data (8)
/// page header. `None` when the bytes are not a page header.
fn read_page_header(bytes: &[u8]) -> Option<PageHeader> {
    let mut c = Compact::new(bytes);
    let (mut last, mut kind_seen) = (0i16, false);
    let (mut uncompressed, mut compressed, mut num_values) = (None, None, None);
    loop {
        let (id, kind) = c.field_header()?;
        if kind == STOP {
            break;
        }
        let id = id.resolve(last)?;
        last = id;
        match (id, kind) {
            (1, I32) => {
                c.i32()?;
                kind_seen = true;
            }
            (2, I32) => uncompressed = Some(c.i32()?),
            (3, I32) => compressed = Some(c.i32()?),
            (5 | 7 | 8, STRUCT) => num_values = read_num_values(&mut c)?.or(num_values),
            (1..=3, _) => return None,
            _ => c.skip(kind, 1)?,
        }
    }
    kind_seen.then_some(())?;
    Some(PageHeader {
        header_bytes: c.pos,
        uncompressed_bytes: uncompressed?,
        compressed_bytes: compressed?,
        num_values,
    })
}

/// Field 1 (`num_values`, an i32) of the struct at the cursor, which is read to its end.
fn read_num_values(c: &mut Compact<'_>) -> Option<Option<i32>> {
    let (mut last, mut num_values) = (0i16, None);
    loop {
        let (id, kind) = c.field_header()?;
        if kind == STOP {
            return Some(num_values);
        }
        let id = id.resolve(last)?;
        last = id;
        if (id, kind) == (1, I32) {
            num_values = Some(c.i32()?);
        } else {
            c.skip(kind, 2)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page header: { 1: type, 2: uncompressed, 3: compressed, 5: { 1: num_values } }.
    fn header(uncompressed: i32, compressed: i32, num_values: i32) -> Vec<u8> {
        let zigzag = |v: i32| {
            let mut z = ((v << 1) ^ (v >> 31)) as u32;
            let mut out = Vec::new();
            while z >= 0x80 {
                out.push(z as u8 | 0x80);
                z >>= 7;
            }
            out.push(z as u8);
            out
        };
        let mut out = vec![0x15];
        out.extend(zigzag(0));
        out.push(0x15);
        out.extend(zigzag(uncompressed));
        out.push(0x15);
        out.extend(zigzag(compressed));
        out.push(0x2c);
        out.push(0x15);
        out.extend(zigzag(num_values));
        out.extend([0x15, 0, STOP, STOP]);
        out
    }

    #[test]
    fn a_page_header_gives_its_sizes_and_value_count() {
        let bytes = header(400, 120, 100);
        let parsed = read_page_header(&bytes).unwrap();
        assert_eq!(
            parsed,
            PageHeader {
                header_bytes: bytes.len(),
                uncompressed_bytes: 400,
                compressed_bytes: 120,
                num_values: Some(100),
            }
        );
        assert_eq!(
            read_page_header(&header(i32::MAX, 1, 1))
                .unwrap()
                .uncompressed_bytes,
            i32::MAX
        );
    }

    #[test]
    fn truncated_or_mistyped_headers_are_not_headers() {
        let bytes = header(400, 120, 100);
        for cut in 0..bytes.len() - 1 {
            assert_eq!(read_page_header(&bytes[..cut]), None, "cut at {cut}");
        }
        // Field 2 as an i64.
        let mut mistyped = bytes.clone();
        mistyped[2] = 0x16;
        assert_eq!(read_page_header(&mistyped), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2_000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(14),
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Random bytes, and a page header with random bytes overwritten, never panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            edits in proptest::collection::vec((0usize..32, proptest::prelude::any::<u8>()), 0..4),
        ) {
            let _ = read_page_header(&bytes);
            let mut page = header(400, 120, 100);
            for (at, value) in edits {
                let at = at % page.len();
                page[at] = value;
            }
            let _ = read_page_header(&page);
        }
    }
}
