//! The protobuf wire primitives the write path writes by hand: requests straight from our
//! samples (building prost structs first cost a `String` copy per label and made encoding
//! ~10x slower than snappy), series labels encoded once, WAL sample records. Output is
//! byte-for-byte what prost writes (default values omitted), checked in `client.rs`'s tests.

pub(super) fn varint_len(v: u64) -> usize {
    // prost's `encoded_len_varint`.
    ((((v | 1).leading_zeros() ^ 63) * 9 + 73) / 64) as usize
}

pub(super) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Size of a length-delimited field holding `len` bytes (key included).
pub(super) fn nested_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

pub(super) fn put_nested(buf: &mut Vec<u8>, key: u8, len: usize) {
    buf.push(key);
    put_varint(buf, len as u64);
}

/// `Sample{double value = 1; int64 timestamp = 2}`, the same in 1.0 and 2.0.
pub(super) fn sample_len(ts: i64, v: f64) -> usize {
    (if v != 0.0 { 9 } else { 0 })
        + (if ts != 0 {
            1 + varint_len(ts as u64)
        } else {
            0
        })
}

pub(super) fn put_sample(buf: &mut Vec<u8>, key: u8, ts: i64, v: f64) {
    put_nested(buf, key, sample_len(ts, v));
    if v != 0.0 {
        buf.push(0x09);
        buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    if ts != 0 {
        buf.push(0x10);
        put_varint(buf, ts as u64);
    }
}

/// A varint field, omitted when zero.
pub(super) fn varint_field_len(v: u64) -> usize {
    if v == 0 { 0 } else { 1 + varint_len(v) }
}

pub(super) fn put_varint_field(buf: &mut Vec<u8>, key: u8, v: u64) {
    if v != 0 {
        buf.push(key);
        put_varint(buf, v);
    }
}

/// A string field, omitted when empty (proto3 default, as prost writes it).
pub(super) fn str_len(s: &str) -> usize {
    if s.is_empty() { 0 } else { nested_len(s.len()) }
}

pub(super) fn put_str(buf: &mut Vec<u8>, key: u8, s: &str) {
    if !s.is_empty() {
        put_nested(buf, key, s.len());
        buf.extend_from_slice(s.as_bytes());
    }
}

/// Reads a varint from the front of `b`.
pub(super) fn get_varint(b: &mut &[u8]) -> Result<u64, &'static str> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first().ok_or("truncated varint")?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(v);
        }
    }
    Err("varint too long")
}
