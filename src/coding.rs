//! Integer coding: the one place where integers become bytes and back.
//!
//! All fixed-width integers are little-endian. Variable-length integers are LEB128
//! (7 bits per byte, low groups first). `usize` is never encoded.
//!
//! Decoding works on a [`Reader`] that tracks its position and returns `None` on any
//! out-of-range read or overflow; callers turn `None` into `Error::Corruption` with
//! their file and offset.

/// Appends a little-endian `u32`.
pub fn put_u32(dst: &mut Vec<u8>, v: u32) {
    dst.extend_from_slice(&v.to_le_bytes());
}
/// Appends a little-endian `u64`.
pub fn put_u64(dst: &mut Vec<u8>, v: u64) {
    dst.extend_from_slice(&v.to_le_bytes());
}

/// Appends a LEB128 varint.
pub fn put_varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Bytes [`put_varint`] appends for `v`.
pub fn varint_size(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends a varint length followed by the bytes.
pub fn put_len_prefixed(dst: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(dst, bytes.len() as u64);
    dst.extend_from_slice(bytes);
}

/// Reads a little-endian `u32` at `pos` of `buf`, if in range.
pub fn get_u32_at(buf: &[u8], pos: usize) -> Option<u32> {
    let end = pos.checked_add(4)?;
    let b = buf.get(pos..end)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Reads a little-endian `u64` at `pos` of `buf`, if in range.
pub fn get_u64_at(buf: &[u8], pos: usize) -> Option<u64> {
    let end = pos.checked_add(8)?;
    let b = buf.get(pos..end)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// A bounds-checked cursor over bytes read from disk.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Current position.
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    /// Takes `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let b = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }
    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }
    /// Takes one byte.
    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    /// Takes a little-endian `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }
    /// Takes a little-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }
    /// Takes a little-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }
    /// Takes a LEB128 varint of at most 10 bytes that fits in a `u64`.
    pub fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let b = self.u8()?;
            let part = u64::from(b & 0x7f);
            if i == 9 && part > 1 {
                return None;
            }
            v |= part << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// Takes a varint that must fit in `u32`, as a `usize`.
    pub fn varint_len(&mut self) -> Option<usize> {
        let v = self.varint()?;
        usize::try_from(u32::try_from(v).ok()?).ok()
    }
    /// Takes a varint length followed by that many bytes.
    pub fn len_prefixed(&mut self) -> Option<&'a [u8]> {
        let n = self.varint_len()?;
        self.bytes(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_roundtrip_and_bounds() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(r.varint(), Some(v));
            assert!(r.is_empty());
            assert_eq!(varint_size(v), b.len());
            assert_eq!(Reader::new(&b[..b.len() - 1]).varint(), None);
        }
        // 11-byte and overflowing encodings are refused.
        assert_eq!(Reader::new(&[0xff; 11]).varint(), None);
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).varint(),
            None
        );
    }

    #[test]
    fn reader_refuses_out_of_range() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), None);
        assert_eq!(r.bytes(usize::MAX), None);
        assert_eq!(r.u16(), Some(0x0201));
        assert_eq!(get_u64_at(&[0; 7], 0), None);
        assert_eq!(get_u32_at(&[0; 8], usize::MAX), None);
    }
}
