//! Prometheus text format 0.0.4, as `promlex.l` and `promparse.go` read it: blanks allowed
//! between tokens and inside braces, label terms without commas, a trailing comma, label
//! values spanning lines, integer millisecond timestamps, comments anywhere.

use std::borrow::Cow;

use super::float::parse_value;
use super::lex::{
    Escapes, QuoteRules, find_newline, go_quote, is_label_start, is_metric_continue,
    is_metric_start, scan_label_name, scan_metric_name, scan_quoted, skip_ws, unescape, utf8,
};
use super::{Entry, MetricType, ParseError, Parser, Sample, ascii_str};

/// `<sLValue>\"(\\.|[^\\"])*\"`: may span lines; the lexer skips NUL bytes here, so they
/// are kept in the value.
const LABEL_VALUE: QuoteRules = QuoteRules {
    newline: true,
    nul: true,
};
/// Quoted metric and label names: may span lines, a NUL ends the token.
const QUOTED_NAME: QuoteRules = QuoteRules {
    newline: true,
    nul: false,
};

pub(super) fn next<'a>(p: &mut Parser<'a>) -> Result<Option<Entry<'a>>, ParseError> {
    let b = p.input;
    loop {
        let start = p.pos;
        let i = skip_ws(b, start);
        let Some(&c) = b.get(i) else {
            p.pos = i;
            p.done = true;
            return Ok(None);
        };
        if is_metric_start(c) || c == b'{' {
            return series(p, start, i).map(|s| Some(Entry::Sample(s)));
        }
        match c {
            b'\n' => {
                p.pos = i + 1;
                p.line += 1;
            }
            b'#' => {
                if let Some(e) = comment(p, start, i)? {
                    return Ok(Some(e));
                }
                if p.done {
                    return Ok(None);
                }
            }
            // `\0 return tEOF`: a NUL where a token may start ends the input.
            0 => {
                p.done = true;
                return Ok(None);
            }
            _ => return Err(p.unexpected(start, i, "expected a valid start token")),
        }
    }
}

#[derive(Clone, Copy)]
enum Meta {
    Help,
    Type,
}

/// A line starting with `#` at `i`: HELP or TYPE, or a comment that is skipped (`Ok(None)`).
fn comment<'a>(
    p: &mut Parser<'a>,
    start: usize,
    i: usize,
) -> Result<Option<Entry<'a>>, ParseError> {
    let b = p.input;
    if let Some(b' ' | b'\t') = b.get(i + 1) {
        // `#[ \t]+` enters the comment state, where `HELP[\t ]+` and `TYPE[\t ]+` are tokens.
        let k = skip_ws(b, i + 1);
        let rest = &b[k..];
        let kind = if rest.starts_with(b"HELP") {
            Some(Meta::Help)
        } else if rest.starts_with(b"TYPE") {
            Some(Meta::Type)
        } else {
            None
        };
        if let (Some(kind), Some(b' ' | b'\t')) = (kind, b.get(k + 4)) {
            return meta(p, start, kind, skip_ws(b, k + 4)).map(Some);
        }
        // Any other comment runs to the end of the line (NUL bytes are skipped in it).
        p.pos = (find_newline(b, k) + 1).min(b.len());
        p.line += 1;
        return Ok(None);
    }
    // `#` followed by anything else: `consumeComment` from the initial state, where a NUL
    // reads as the end of the input.
    let mut j = i + 1;
    while let Some(&c) = b.get(j) {
        if c == b'\n' || c == 0 {
            break;
        }
        j += 1;
    }
    if b.get(j) == Some(&0) {
        p.pos = j;
        p.done = true;
        return Ok(None);
    }
    p.pos = (j + 1).min(b.len());
    p.line += 1;
    Ok(None)
}

/// `# HELP` or `# TYPE`; `m` is where the metric name should start.
fn meta<'a>(
    p: &mut Parser<'a>,
    start: usize,
    kind: Meta,
    m: usize,
) -> Result<Entry<'a>, ParseError> {
    let b = p.input;
    let what = match kind {
        Meta::Help => "expected metric name after HELP",
        Meta::Type => "expected metric name after TYPE",
    };
    let (name, name_end, newlines) = match b.get(m) {
        Some(b'"') => {
            let q = scan_quoted(b, m, QUOTED_NAME).map_err(|at| p.unexpected(start, at, what))?;
            let s = utf8(&b[m + 1..q.end - 1], "metric name").map_err(|e| p.error(start, m, e))?;
            (unescape(s, Escapes::Label), q.end, q.newlines)
        }
        Some(&c) if is_metric_start(c) => {
            let e = scan_metric_name(b, m);
            (Cow::Borrowed(ascii_str(&b[m..e])), e, 0)
        }
        _ => return Err(p.unexpected(start, m, what)),
    };
    // `<sMeta2>{C}*` takes the rest of the line and the parser drops its first byte, except
    // that an all-blank rest lexes as whitespace and leaves an empty text.
    let nl = find_newline(b, name_end);
    let rest = &b[name_end..nl];
    let text: &'a [u8] = if rest.iter().all(|&c| c == b' ' || c == b'\t') {
        &[]
    } else {
        rest.get(1..).unwrap_or(&[])
    };
    let entry = match kind {
        Meta::Help => {
            let Ok(help) = std::str::from_utf8(text) else {
                let msg = format!("help text {} is not a valid utf8 string", go_quote(text));
                return Err(p.error(start, name_end, msg));
            };
            Entry::Help {
                name,
                help: unescape(help, Escapes::TextHelp),
            }
        }
        Meta::Type => {
            let kind = match text {
                b"counter" => MetricType::Counter,
                b"gauge" => MetricType::Gauge,
                b"histogram" => MetricType::Histogram,
                b"summary" => MetricType::Summary,
                b"untyped" => MetricType::Unknown,
                _ => {
                    let msg = format!("invalid metric type {}", go_quote(text));
                    return Err(p.error(start, name_end, msg));
                }
            };
            p.mtype = kind;
            Entry::Type { name, kind }
        }
    };
    p.pos = (nl + 1).min(b.len());
    p.line += 1 + newlines;
    Ok(entry)
}

/// A sample line; `i` is its first non-blank byte (a name start or `{`).
#[inline]
fn series<'a>(p: &mut Parser<'a>, start: usize, i: usize) -> Result<Sample<'a>, ParseError> {
    let b = p.input;
    let mut name = None;
    let mut newlines = 0;
    let mut end = i;
    let open = if b[i] == b'{' {
        Some(i)
    } else {
        let e = scan_metric_name(b, i);
        // promparse.go takes the name from the start of the line, blanks included.
        name = Some(Cow::Borrowed(ascii_str(&b[start..e])));
        end = e;
        let k = skip_ws(b, e);
        (b.get(k) == Some(&b'{')).then_some(k)
    };
    let mut labels: &'a [u8] = &[];
    if let Some(open) = open {
        end = parse_labels(p, start, open, &mut name, &mut newlines)?;
        labels = &b[open..end];
    }
    p.sample_after_series(start, end, name, labels, newlines, value_and_timestamp)
}

/// Whether a series text seen before, `start..end` of the input, is one where a full parse
/// would start and end a series ([`Parser::next_known`]): equal bytes from a line's start
/// parse the same, so it is, provided it would end there: after `}`, or after a name that is
/// not continued by the next byte nor followed by `{` (blanks allowed before it).
pub(super) fn series_ends_at(b: &[u8], start: usize, end: usize) -> bool {
    let Some(&c) = b.get(skip_ws(b, start)) else {
        return false;
    };
    if !(is_metric_start(c) || c == b'{') {
        return false;
    }
    b[start..end].last() == Some(&b'}')
        || !(b.get(end).copied().is_some_and(is_metric_continue)
            || b.get(skip_ws(b, end)) == Some(&b'{'))
}

/// The rest of a sample line after its series text (`start..end`): value, optional
/// timestamp, end of line. Moves the parser to the next line.
#[inline]
pub(super) fn value_and_timestamp(
    p: &mut Parser<'_>,
    start: usize,
    end: usize,
    newlines: usize,
) -> Result<(f64, Option<i64>), ParseError> {
    let b = p.input;
    // `<sValue>[^{ \t\n]+`
    let v0 = skip_ws(b, end);
    let mut v1 = v0;
    while let Some(&c) = b.get(v1) {
        if matches!(c, b' ' | b'\t' | b'\n' | b'{' | 0) {
            break;
        }
        v1 += 1;
    }
    if v1 == v0 {
        return Err(p.unexpected(start, v0, "expected value after metric"));
    }
    let value = match parse_value(&b[v0..v1]) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!(
                "{} while parsing: {}",
                e.describe(&b[v0..v1]),
                go_quote(&b[start..v1])
            );
            return Err(p.error(start, v1, msg));
        }
    };

    // `<sTimestamp>{D}+`, then the end of the line.
    let mut k = skip_ws(b, v1);
    let mut timestamp_ms = None;
    match b.get(k) {
        None | Some(b'\n') => {}
        Some(c) if c.is_ascii_digit() => {
            let t0 = k;
            while b.get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            let Some(ts) = parse_int(&b[t0..k]) else {
                let msg = format!(
                    "strconv.ParseInt: parsing {}: value out of range while parsing: {}",
                    go_quote(&b[t0..k]),
                    go_quote(&b[start..k])
                );
                return Err(p.error(start, k, msg));
            };
            timestamp_ms = Some(ts);
            k = skip_ws(b, k);
            if !matches!(b.get(k), None | Some(b'\n')) {
                return Err(p.unexpected(start, k, "expected next entry after timestamp"));
            }
        }
        _ => return Err(p.unexpected(start, k, "expected timestamp or new record")),
    }

    p.pos = (k + 1).min(b.len());
    p.line += 1 + newlines;
    Ok((value, timestamp_ms))
}

/// The inside of `{...}` whose `{` is at `open`; returns the index after `}`.
///
/// `promparse.go`'s `parseLVals`: blanks between all tokens, a comma after a label optional,
/// a quoted string followed by `,` or `}` is the metric name.
#[inline]
fn parse_labels<'a>(
    p: &mut Parser<'a>,
    start: usize,
    open: usize,
    name: &mut Option<Cow<'a, str>>,
    newlines: &mut usize,
) -> Result<usize, ParseError> {
    let b = p.input;
    let mut k = skip_ws(b, open + 1);
    loop {
        let tok = k;
        let (tok_end, quoted) = match b.get(k) {
            Some(b'}') => return Ok(k + 1),
            Some(b'"') => {
                let q = scan_quoted(b, k, QUOTED_NAME)
                    .map_err(|at| p.unexpected(start, at, "expected label name"))?;
                *newlines += q.newlines;
                (q.end, Some(q))
            }
            Some(&c) if is_label_start(c) => (scan_label_name(b, k), None),
            _ => return Err(p.unexpected(start, k, "expected label name")),
        };
        let t = skip_ws(b, tok_end);
        if let Some(q) = &quoted {
            let raw = &b[tok + 1..tok_end - 1];
            if let Some(&sep @ (b',' | b'}')) = b.get(t) {
                if name.is_some() {
                    let msg = format!(
                        "metric name already set while parsing: {}",
                        go_quote(&b[start..t + 1])
                    );
                    return Err(p.error(start, t, msg));
                }
                let s = utf8(raw, "metric name").map_err(|e| p.error(start, tok, e))?;
                *name = Some(if q.escaped {
                    unescape(s, Escapes::Label)
                } else {
                    Cow::Borrowed(s)
                });
                if sep == b'}' {
                    return Ok(t + 1);
                }
                k = skip_ws(b, t + 1);
                continue;
            }
            if q.non_ascii {
                utf8(raw, "label name").map_err(|e| p.error(start, tok, e))?;
            }
        }
        if b.get(t) != Some(&b'=') {
            return Err(p.unexpected(start, t, "expected equal"));
        }
        let v = skip_ws(b, t + 1);
        if b.get(v) != Some(&b'"') {
            return Err(p.unexpected(start, v, "expected label value"));
        }
        let q = scan_quoted(b, v, LABEL_VALUE)
            .map_err(|at| p.unexpected(start, at, "expected label value"))?;
        if q.non_ascii && std::str::from_utf8(&b[v..q.end]).is_err() {
            let msg = format!("invalid UTF-8 label value: {}", go_quote(&b[v..q.end]));
            return Err(p.error(start, v, msg));
        }
        *newlines += q.newlines;
        k = skip_ws(b, q.end);
        if b.get(k) == Some(&b',') {
            k = skip_ws(b, k + 1);
        }
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)` for a run of ASCII digits; `None` on overflow.
#[inline]
fn parse_int(digits: &[u8]) -> Option<i64> {
    if digits.len() > 18 {
        return digits.iter().try_fold(0i64, |v, &c| {
            v.checked_mul(10)?.checked_add((c - b'0') as i64)
        });
    }
    // Millisecond timestamps have 13 digits: take 8 at a time.
    let (mut v, rest) = match digits.split_first_chunk::<8>() {
        Some((eight, rest)) => (eight_digits(eight) as i64, rest),
        None => (0, digits),
    };
    for &c in rest {
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Value of exactly eight ASCII digits, most significant first (SWAR, as in simdjson).
#[inline]
fn eight_digits(d: &[u8; 8]) -> u64 {
    let v = u64::from_le_bytes(*d).wrapping_sub(0x3030_3030_3030_3030);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let hi = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let lo = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    hi.wrapping_add(lo) >> 32
}
