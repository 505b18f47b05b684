//! Just enough of the protobuf wire format to read a message's fields in place, without
//! allocating: what the protobuf exposition's labels need (Prometheus's streaming decoder,
//! `prompb/io/prometheus/client/decoder.go`, reads them the same way). Only `std`, like the rest
//! of the parser.

use std::borrow::Cow;

/// A field's value, as far as the readers here need it.
pub(crate) enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(b: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&c, rest) = b.split_first().ok_or("proto: unexpected end of message")?;
        *b = rest;
        v |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("proto: invalid varint".into())
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err("proto: unexpected end of message".into());
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

/// The next field of an encoded message, advancing `b` past it: its number and value.
pub(crate) fn next_field<'a>(b: &mut &'a [u8]) -> Result<(u64, Value<'a>), String> {
    let key = varint(b)?;
    let value = match key & 7 {
        0 => Value::Varint(varint(b)?),
        1 => {
            take(b, 8)?;
            Value::Fixed
        }
        2 => {
            let n = usize::try_from(varint(b)?).map_err(|_| "proto: length overflow")?;
            Value::Bytes(take(b, n)?)
        }
        5 => {
            take(b, 4)?;
            Value::Fixed
        }
        w => return Err(format!("proto: illegal wire type {w}")),
    };
    Ok((key >> 3, value))
}

/// The `LabelPair` messages of encoded `label` fields (field 1 of `Metric`), appended to
/// `out`, checked as Prometheus's `parseLabel` checks them: a name is non-empty UTF-8, a value
/// UTF-8.
pub(crate) fn label_pairs<'a>(
    mut fields: &'a [u8],
    out: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) -> Result<(), String> {
    while !fields.is_empty() {
        let (1, Value::Bytes(mut pair)) = next_field(&mut fields)? else {
            continue;
        };
        let (mut name, mut value) = ("", "");
        while !pair.is_empty() {
            match next_field(&mut pair)? {
                (1, Value::Bytes(s)) => {
                    name = std::str::from_utf8(s).map_err(|_| {
                        format!("invalid label name: {}", String::from_utf8_lossy(s))
                    })?;
                }
                (2, Value::Bytes(s)) => {
                    value = std::str::from_utf8(s).map_err(|_| {
                        format!("invalid label value: {}", String::from_utf8_lossy(s))
                    })?;
                }
                _ => {}
            }
        }
        if name.is_empty() {
            return Err(format!("invalid label name: {name}"));
        }
        out.push((Cow::Borrowed(name), Cow::Borrowed(value)));
    }
    Ok(())
}
