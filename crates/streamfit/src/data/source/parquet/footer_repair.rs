//! Repairing a Parquet footer whose column metadata a writer got wrong in an optional field.
//!
//! Two faults seen in real files (Dremio 3.2's `dict-page-offset-zero.parquet` has both):
//! - a field id the Parquet format later gave another type: a list of structs as field 15 of
//!   `ColumnMetaData`, which the format defines as the optional `i32 bloom_filter_length`. The
//!   `parquet` crate reads field ids by the format's types and rejects the footer;
//! - `dictionary_page_offset = 0`: offset 0 is the file's magic, never a page, so a reader
//!   that trusts it decodes garbage. The column's first page is at `data_page_offset`.
//!
//! Both fields are optional and describe nothing the data needs: dropping them gives the
//! metadata the format defines. [`repair_footer`] walks the footer's Thrift compact encoding
//! (`FileMetaData` → `row_groups` → `columns` → `meta_data`), copies everything byte for byte
//! except those fields, and re-encodes the field headers after a dropped one (their ids are
//! stored as deltas). Nothing is decoded beyond what the walk needs, and every length is
//! checked against the input ([`Compact`], the shared Thrift reader), so a hostile footer
//! gives `None`, never a panic or an unbounded allocation.

use super::thrift::{Compact, I32, I64, LIST, MAX_DEPTH, STOP, STRUCT};

/// Which struct of the footer the walk is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    FileMetaData,
    RowGroup,
    ColumnChunk,
    ColumnMetaData,
}

/// The format's wire type of an optional `ColumnMetaData` field (the ones that may be
/// dropped).
fn optional_column_field_type(id: i16) -> Option<u8> {
    match id {
        8 | 13 => Some(LIST),
        10 | 11 | 14 => Some(I64),
        12 | 16 | 17 => Some(STRUCT),
        15 => Some(I32),
        _ => None,
    }
}

/// `ColumnMetaData.dictionary_page_offset`.
const DICTIONARY_PAGE_OFFSET: i16 = 11;

/// The footer without mistyped optional `ColumnMetaData` fields and zero dictionary page
/// offsets, and the dropped field ids; `None` when there is nothing to drop or the bytes are
/// not a well-formed footer.
pub fn repair_footer(footer: &[u8]) -> Option<(Vec<u8>, Vec<i16>)> {
    let mut walk = Walk {
        input: Compact::new(footer),
        out: Vec::with_capacity(footer.len()),
        dropped: Vec::new(),
    };
    walk.rewrite_struct(Level::FileMetaData, 0)?;
    if walk.dropped.is_empty() || walk.input.pos != footer.len() {
        return None;
    }
    Some((walk.out, walk.dropped))
}

struct Walk<'a> {
    input: Compact<'a>,
    out: Vec<u8>,
    dropped: Vec<i16>,
}

impl Walk<'_> {
    fn write_field_header(&mut self, id: i16, last: i16, kind: u8) {
        let delta = id - last;
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | kind);
        } else {
            self.out.push(kind);
            let mut zigzag = ((i32::from(id) << 1) ^ (i32::from(id) >> 31)) as u32;
            while zigzag >= 0x80 {
                self.out.push((zigzag as u8) | 0x80);
                zigzag >>= 7;
            }
            self.out.push(zigzag as u8);
        }
    }

    /// Copies the struct at the cursor into `out`, descending into the footer's column metadata
    /// and dropping mistyped optional fields there.
    fn rewrite_struct(&mut self, level: Level, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (mut last_in, mut last_out) = (0i16, 0i16);
        loop {
            let (id, kind) = self.input.field_header()?;
            if kind == STOP {
                self.out.push(STOP);
                return Some(());
            }
            let id = id.resolve(last_in)?;
            last_in = id;
            if level == Level::ColumnMetaData
                && let Some(expected) = optional_column_field_type(id)
            {
                let value_start = self.input.pos;
                let mistyped = expected != kind;
                self.input.skip(kind, depth + 1)?;
                // An i64 of value 0 is the single byte 0 (zigzag varint).
                let zero_offset = id == DICTIONARY_PAGE_OFFSET
                    && !mistyped
                    && self.input.input[value_start..self.input.pos] == [0];
                if mistyped || zero_offset {
                    self.dropped.push(id);
                    continue;
                }
                self.input.pos = value_start;
            }
            self.write_field_header(id, last_out, kind);
            last_out = id;
            let child = match (level, id, kind) {
                (Level::FileMetaData, 4, LIST) => Some(Level::RowGroup),
                (Level::RowGroup, 1, LIST) => Some(Level::ColumnChunk),
                (Level::ColumnChunk, 3, STRUCT) => Some(Level::ColumnMetaData),
                _ => None,
            };
            match (child, kind) {
                (Some(child), LIST) => {
                    let start = self.input.pos;
                    let (size, element) = self.input.list_header()?;
                    self.out
                        .extend_from_slice(&self.input.input[start..self.input.pos]);
                    if element != STRUCT {
                        return None;
                    }
                    for _ in 0..size {
                        self.rewrite_struct(child, depth + 1)?;
                    }
                }
                (Some(child), _) => self.rewrite_struct(child, depth + 1)?,
                (None, _) => {
                    let start = self.input.pos;
                    self.input.skip(kind, depth + 1)?;
                    self.out
                        .extend_from_slice(&self.input.input[start..self.input.pos]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compact-protocol struct from (field id, type, raw value bytes), with short headers.
    fn fields(items: &[(i16, u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut last = 0;
        for (id, kind, value) in items {
            out.push((((id - last) as u8) << 4) | kind);
            out.extend_from_slice(value);
            last = *id;
        }
        out.push(STOP);
        out
    }

    /// FileMetaData { 4: [RowGroup { 1: [ColumnChunk { 3: meta }] }] }.
    fn footer(meta: &[u8]) -> Vec<u8> {
        let mut chunk = vec![(3u8 << 4) | STRUCT];
        chunk.extend_from_slice(meta);
        chunk.push(STOP);
        let mut group = vec![(1u8 << 4) | LIST, (1 << 4) | STRUCT];
        group.extend_from_slice(&chunk);
        group.push(STOP);
        let mut file = vec![(4u8 << 4) | LIST, (1 << 4) | STRUCT];
        file.extend_from_slice(&group);
        file.push(STOP);
        file
    }

    #[test]
    fn a_list_where_the_format_has_an_i32_is_dropped_and_later_ids_kept() {
        // 9: i64 data_page_offset = 4; 15: list<i32> [1, 2] (should be an i32); 16: struct {}.
        let list = [(2u8 << 4) | I32, 2, 4];
        let bad = fields(&[(9, I64, &[8]), (15, LIST, &list), (16, STRUCT, &[STOP])]);
        let good = fields(&[(9, I64, &[8]), (16, STRUCT, &[STOP])]);
        let (fixed, dropped) = repair_footer(&footer(&bad)).expect("repaired");
        assert_eq!(dropped, vec![15]);
        assert_eq!(fixed, footer(&good));
    }

    #[test]
    fn a_zero_dictionary_page_offset_is_dropped_and_a_real_one_kept() {
        let zero = fields(&[(9, I64, &[8]), (11, I64, &[0]), (14, I64, &[2])]);
        let (fixed, dropped) = repair_footer(&footer(&zero)).expect("repaired");
        assert_eq!(dropped, vec![11]);
        assert_eq!(fixed, footer(&fields(&[(9, I64, &[8]), (14, I64, &[2])])));
        let real = fields(&[(9, I64, &[8]), (11, I64, &[4])]);
        assert!(repair_footer(&footer(&real)).is_none());
    }

    #[test]
    fn a_well_typed_or_malformed_footer_is_left_alone() {
        let good = fields(&[(9, I64, &[8]), (15, I32, &[6])]);
        assert!(repair_footer(&footer(&good)).is_none());
        let mut truncated = footer(&fields(&[(9, I64, &[8]), (15, LIST, &[0x25, 2])]));
        truncated.truncate(truncated.len() - 4);
        assert!(repair_footer(&truncated).is_none());
        // A list claiming more elements than bytes remain.
        assert!(repair_footer(&[(4 << 4) | LIST, 0xfc, 0xff, 0xff, 0x7f]).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2_000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(7),
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Random bytes, and a repairable footer with random bytes overwritten, never panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            edits in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..4),
        ) {
            let _ = repair_footer(&bytes);
            let list = [(2u8 << 4) | I32, 2, 4];
            let mut footer = footer(&fields(&[(9, I64, &[8]), (11, I64, &[0]), (15, LIST, &list)]));
            for (at, value) in edits {
                let at = at % footer.len();
                footer[at] = value;
            }
            let _ = repair_footer(&footer);
        }
    }
}
