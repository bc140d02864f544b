//! A bounds-checked reader of the Thrift compact protocol, the encoding of Parquet's footer
//! and page headers.
//!
//! [`Compact`] reads field headers, varints and lists, and skips whole values, from a byte
//! slice. Every length is checked against what is left of the input and nesting is bounded,
//! so hostile bytes give `None`, never a panic or an unbounded allocation. It decodes nothing
//! into structures: its users (`footer_repair`, `page_bounds`) pick the few fields they need.

/// Thrift compact-protocol wire types.
pub(super) const STOP: u8 = 0;
pub(super) const BOOL_TRUE: u8 = 1;
pub(super) const BOOL_FALSE: u8 = 2;
pub(super) const BYTE: u8 = 3;
pub(super) const I16: u8 = 4;
pub(super) const I32: u8 = 5;
pub(super) const I64: u8 = 6;
pub(super) const DOUBLE: u8 = 7;
pub(super) const BINARY: u8 = 8;
pub(super) const LIST: u8 = 9;
pub(super) const SET: u8 = 10;
pub(super) const MAP: u8 = 11;
pub(super) const STRUCT: u8 = 12;

/// Deepest nesting a walk follows (the format needs a handful of levels).
pub(super) const MAX_DEPTH: usize = 64;

/// A field id as encoded: a delta from the previous field's id, or written out.
#[derive(Clone, Copy)]
pub(super) enum FieldId {
    Delta(i16),
    Absolute(i16),
}

impl FieldId {
    /// The field's id, given the previous field's id in the same struct.
    pub(super) fn resolve(self, last: i16) -> Option<i16> {
        match self {
            FieldId::Absolute(id) => Some(id),
            FieldId::Delta(d) => last.checked_add(d),
        }
    }
}

/// A cursor over compact-protocol bytes.
pub(super) struct Compact<'a> {
    pub(super) input: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Compact<'a> {
    pub(super) fn new(input: &'a [u8]) -> Compact<'a> {
        Compact { input, pos: 0 }
    }

    pub(super) fn byte(&mut self) -> Option<u8> {
        let b = *self.input.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub(super) fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(value);
            }
        }
        None
    }

    /// A zigzag-encoded i32 (an `i32` field's value); `None` when it does not fit.
    pub(super) fn i32(&mut self) -> Option<i32> {
        let zigzag = self.varint()?;
        i32::try_from((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64)).ok()
    }

    pub(super) fn advance(&mut self, n: u64) -> Option<()> {
        let end = self.pos.checked_add(usize::try_from(n).ok()?)?;
        (end <= self.input.len()).then(|| self.pos = end)
    }

    /// Skips one value of wire type `kind`.
    pub(super) fn skip(&mut self, kind: u8, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match kind {
            BOOL_TRUE | BOOL_FALSE => Some(()),
            BYTE => self.advance(1),
            I16 | I32 | I64 => self.varint().map(|_| ()),
            DOUBLE => self.advance(8),
            BINARY => {
                let n = self.varint()?;
                self.advance(n)
            }
            LIST | SET => {
                let (size, element) = self.list_header()?;
                for _ in 0..size {
                    match element {
                        // Booleans in a list take one byte each.
                        BOOL_TRUE | BOOL_FALSE => self.advance(1)?,
                        _ => self.skip(element, depth + 1)?,
                    }
                }
                Some(())
            }
            MAP => {
                let size = self.varint()?;
                if size > 0 {
                    let types = self.byte()?;
                    for _ in 0..size {
                        self.skip(types >> 4, depth + 1)?;
                        self.skip(types & 0x0f, depth + 1)?;
                    }
                }
                Some(())
            }
            STRUCT => loop {
                let (_, kind) = self.field_header()?;
                if kind == STOP {
                    return Some(());
                }
                self.skip(kind, depth + 1)?;
            },
            _ => None,
        }
    }

    /// A list header: (size, element type). Sizes beyond the remaining bytes are rejected.
    pub(super) fn list_header(&mut self) -> Option<(u64, u8)> {
        let header = self.byte()?;
        let size = match header >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        (size <= (self.input.len() - self.pos) as u64).then_some((size, header & 0x0f))
    }

    /// A field header: the field id (absolute when long-form, else the delta) and the wire
    /// type. Reads the long-form id too.
    pub(super) fn field_header(&mut self) -> Option<(FieldId, u8)> {
        let header = self.byte()?;
        let kind = header & 0x0f;
        if kind == STOP {
            return Some((FieldId::Delta(0), STOP));
        }
        let delta = header >> 4;
        if delta == 0 {
            let zigzag = self.varint()?;
            let id = i16::try_from((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64)).ok()?;
            Some((FieldId::Absolute(id), kind))
        } else {
            Some((FieldId::Delta(i16::from(delta)), kind))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag_i32s_decode_and_overlong_ones_are_refused() {
        assert_eq!(Compact::new(&[0x96, 0x01]).varint(), Some(150));
        assert_eq!(Compact::new(&[0x03]).i32(), Some(-2));
        assert_eq!(
            Compact::new(&[0xfe, 0xff, 0xff, 0xff, 0x0f]).i32(),
            Some(i32::MAX)
        );
        // 2^32 does not fit an i32; a varint longer than ten bytes is not a varint.
        assert_eq!(Compact::new(&[0x80, 0x80, 0x80, 0x80, 0x20]).i32(), None);
        assert_eq!(Compact::new(&[0xff; 11]).varint(), None);
        assert_eq!(Compact::new(&[0x80]).varint(), None);
    }

    #[test]
    fn skipping_stops_at_the_end_of_the_input_and_at_the_depth_limit() {
        // A struct { 1: binary of 5 bytes } with only 2 bytes present.
        let mut c = Compact::new(&[0x18, 5, b'a', b'b']);
        assert_eq!(c.skip(STRUCT, 0), None);
        // Nested structs beyond the depth limit.
        let deep = vec![0x1c; 2 * MAX_DEPTH];
        assert_eq!(Compact::new(&deep).skip(STRUCT, 0), None);
    }
}
