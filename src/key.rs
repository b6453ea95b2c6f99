//! Internal keys: a user key with a sequence number and a value kind.
//!
//! Encoded form (in SSTable blocks): `user key ‖ trailer u64 LE`, with
//! `trailer = sequence << 8 | kind`. Order: user key ascending, then sequence descending, so
//! the newest version of a key comes first.

use std::cmp::Ordering;

/// Largest sequence number (56 bits).
pub(crate) const MAX_SEQ: u64 = (1 << 56) - 1;
/// Bytes of the trailer.
pub(crate) const TRAILER_LEN: usize = 8;

/// What an entry holds. On-disk ids, never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ValueKind {
    /// A tombstone.
    Delete = 0,
    /// A value stored inline.
    Put = 1,
    /// A pointer to a value in the value log.
    Pointer = 2,
}

impl ValueKind {
    pub(crate) fn from_u8(b: u8) -> Option<ValueKind> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            2 => Some(ValueKind::Pointer),
            _ => None,
        }
    }
}

/// Appends the encoded internal key.
pub(crate) fn encode(dst: &mut Vec<u8>, user_key: &[u8], seq: u64, kind: ValueKind) {
    dst.extend_from_slice(user_key);
    dst.extend_from_slice(&((seq << 8) | kind as u64).to_le_bytes());
}

/// An encoded internal key for seeking: the first entry at or after (`user_key`, `seq`).
pub(crate) fn seek_key(user_key: &[u8], seq: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    v.extend_from_slice(user_key);
    v.extend_from_slice(&((seq << 8) | 0xff).to_le_bytes());
    v
}

/// Splits an encoded internal key into user key and trailer; `None` if too short.
pub(crate) fn split(ikey: &[u8]) -> Option<(&[u8], u64)> {
    let at = ikey.len().checked_sub(TRAILER_LEN)?;
    let (u, t) = ikey.split_at(at);
    Some((u, u64::from_le_bytes(t.try_into().ok()?)))
}

/// The user key of an encoded internal key (empty if malformed; callers validate first).
pub(crate) fn user_key(ikey: &[u8]) -> &[u8] {
    split(ikey).map_or(&[][..], |(u, _)| u)
}

/// Compares encoded internal keys (malformed keys order first).
pub(crate) fn compare(a: &[u8], b: &[u8]) -> Ordering {
    match (split(a), split(b)) {
        (Some((ua, ta)), Some((ub, tb))) => ua.cmp(ub).then_with(|| tb.cmp(&ta)),
        (None, None) => a.cmp(b),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_user_asc_seq_desc() {
        let mut a = Vec::new();
        encode(&mut a, b"k", 5, ValueKind::Put);
        let mut b = Vec::new();
        encode(&mut b, b"k", 9, ValueKind::Put);
        let mut c = Vec::new();
        encode(&mut c, b"k\0", 1, ValueKind::Delete);
        assert_eq!(compare(&b, &a), Ordering::Less);
        assert_eq!(compare(&a, &c), Ordering::Less);
        assert_eq!(compare(&seek_key(b"k", 9), &b), Ordering::Less);
        assert_eq!(compare(&seek_key(b"k", 8), &b), Ordering::Greater);
        assert_eq!(compare(&seek_key(b"k", 8), &a), Ordering::Less);
    }
}
