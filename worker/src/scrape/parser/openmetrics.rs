//! OpenMetrics 1.0.0 text, as `openmetricslex.l` and `openmetricsparse.go` read it: exactly
//! one space between tokens, no blank or comment lines besides `HELP`/`TYPE`/`UNIT`, float
//! second timestamps, exemplars after ` # `, and a final `# EOF`.

use std::borrow::Cow;

use super::float::parse_value;
use super::lex::{
    Escapes, QuoteRules, find_newline, go_quote, is_label_start, is_metric_start, scan_label_name,
    scan_metric_name, scan_quoted, unescape, utf8,
};
use super::{Entry, MetricType, ParseError, Parser, Sample, ascii_str};

/// `<sLValue>\"(\\.|[^\\"\n])*\"`: one line; NUL bytes are skipped by the lexer (kept).
const LABEL_VALUE: QuoteRules = QuoteRules {
    newline: false,
    nul: true,
};
/// `<sLabels>\"(\\.|[^\\"])*\"` and `<sMeta1>`: may span lines, a NUL ends the token.
const QUOTED_NAME: QuoteRules = QuoteRules {
    newline: true,
    nul: false,
};
/// Exemplar label names and values: one line, no NUL.
const EXEMPLAR: QuoteRules = QuoteRules {
    newline: false,
    nul: false,
};

const NO_EOF: &str = "data does not end with # EOF";

pub(super) fn next<'a>(p: &mut Parser<'a>) -> Result<Option<Entry<'a>>, ParseError> {
    let b = p.input;
    let start = p.pos;
    let Some(&c) = b.get(start) else {
        return Err(p.error(start, start, NO_EOF.to_string()));
    };
    if is_metric_start(c) || c == b'{' {
        return series(p, start).map(|s| Some(Entry::Sample(s)));
    }
    if c == b'#' && b.get(start + 1) == Some(&b' ') {
        let k = start + 2;
        let rest = &b[k.min(b.len())..];
        for (word, kind) in [
            (b"HELP ", Meta::Help),
            (b"TYPE ", Meta::Type),
            (b"UNIT ", Meta::Unit),
        ] {
            if rest.starts_with(word) {
                return meta(p, start, kind, k + 5).map(Some);
            }
        }
        if rest.starts_with(b"EOF") {
            let mut j = k + 3;
            if b.get(j) == Some(&b'\n') {
                j += 1;
            }
            if j != b.len() {
                return Err(p.error(start, j, "unexpected data after # EOF".to_string()));
            }
            p.pos = j;
            p.done = true;
            return Ok(None);
        }
        return Err(p.unexpected(start, k, "expected a valid start token"));
    }
    Err(p.unexpected(start, start, "expected a valid start token"))
}

#[derive(Clone, Copy)]
enum Meta {
    Help,
    Type,
    Unit,
}

/// `# HELP`, `# TYPE` or `# UNIT`; `m` is where the metric name should start.
fn meta<'a>(
    p: &mut Parser<'a>,
    start: usize,
    kind: Meta,
    m: usize,
) -> Result<Entry<'a>, ParseError> {
    let b = p.input;
    let word = match kind {
        Meta::Help => "HELP",
        Meta::Type => "TYPE",
        Meta::Unit => "UNIT",
    };
    let (raw_name, name_end, newlines) = match b.get(m) {
        Some(b'"') => {
            let q = scan_quoted(b, m, QUOTED_NAME).map_err(|at| {
                p.unexpected(start, at, &format!("expected metric name after {word}"))
            })?;
            (&b[m + 1..q.end - 1], q.end, q.newlines)
        }
        Some(&c) if is_metric_start(c) => {
            let e = scan_metric_name(b, m);
            (&b[m..e], e, 0)
        }
        _ => return Err(p.unexpected(start, m, &format!("expected metric name after {word}"))),
    };
    // `<sMeta2>{S}{C}*\n`: one space, the text, and the line must end.
    let nl = find_newline(b, name_end);
    if b.get(name_end) != Some(&b' ') || nl == b.len() {
        return Err(p.error(start, name_end, format!("expected text in {word}")));
    }
    let text = &b[name_end + 1..nl];
    let name_str = utf8(raw_name, "metric name").map_err(|e| p.error(start, m, e))?;
    let name = if b[m] == b'"' {
        unescape(name_str, Escapes::Label)
    } else {
        Cow::Borrowed(name_str)
    };
    let entry = match kind {
        Meta::Help => {
            let Ok(help) = std::str::from_utf8(text) else {
                let msg = format!("help text {} is not a valid utf8 string", go_quote(text));
                return Err(p.error(start, name_end, msg));
            };
            Entry::Help {
                name,
                help: unescape(help, Escapes::Label),
            }
        }
        Meta::Type => {
            let kind = match text {
                b"counter" => MetricType::Counter,
                b"gauge" => MetricType::Gauge,
                b"histogram" => MetricType::Histogram,
                b"gaugehistogram" => MetricType::GaugeHistogram,
                b"summary" => MetricType::Summary,
                b"info" => MetricType::Info,
                b"stateset" => MetricType::StateSet,
                b"unknown" => MetricType::Unknown,
                _ => {
                    let msg = format!("invalid metric type {}", go_quote(text));
                    return Err(p.error(start, name_end, msg));
                }
            };
            p.mtype = kind;
            Entry::Type { name, kind }
        }
        Meta::Unit => {
            let unit = utf8(text, "unit").map_err(|e| p.error(start, name_end, e))?;
            // The name must end in `_<unit>` (checked on the name as written).
            let ok = unit.is_empty()
                || (raw_name.len() > unit.len()
                    && raw_name.ends_with(unit.as_bytes())
                    && raw_name[raw_name.len() - unit.len() - 1] == b'_');
            if !ok {
                let msg = format!(
                    "unit {} not a suffix of metric {}",
                    go_quote(text),
                    go_quote(raw_name)
                );
                return Err(p.error(start, name_end, msg));
            }
            Entry::Unit { name, unit }
        }
    };
    p.pos = nl + 1;
    p.line += 1 + newlines;
    Ok(entry)
}

/// End of a `[^ \n]+` token starting at `i` (a NUL also ends it: the lexer never matches it).
#[inline]
fn token_end(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if c == b' ' || c == b'\n' || c == 0 {
            break;
        }
        i += 1;
    }
    i
}

/// Whether ` # {` (an exemplar) starts at `i`.
#[inline]
fn exemplar_at(b: &[u8], i: usize) -> bool {
    b.get(i..i + 4) == Some(b" # {")
}

/// A sample line starting at `start` (a name start or `{`).
#[inline]
fn series<'a>(p: &mut Parser<'a>, start: usize) -> Result<Sample<'a>, ParseError> {
    let b = p.input;
    let mut name = None;
    let mut newlines = 0;
    let mut end = start;
    let open = if b[start] == b'{' {
        Some(start)
    } else {
        let e = scan_metric_name(b, start);
        name = Some(Cow::Borrowed(ascii_str(&b[start..e])));
        end = e;
        (b.get(e) == Some(&b'{')).then_some(e)
    };
    let mut labels: &'a [u8] = &[];
    if let Some(open) = open {
        end = parse_labels(p, start, open, &mut name, &mut newlines)?;
        labels = &b[open..end];
    }
    p.sample_after_series(start, end, name, labels, newlines, value_and_rest)
}

/// [`text::series_ends_at`](super::text::series_ends_at) for OpenMetrics. Equal bytes from a
/// line's start parse the same; OpenMetrics puts exactly one space after the series text, so a
/// name that goes on, or is followed by `{`, does not end there (and [`value_and_rest`] would
/// refuse it too). The text format's series grammar is looser (blanks inside braces, between
/// name and `{`): the caller must have seen the text under this format.
pub(super) fn series_ends_at(b: &[u8], start: usize, end: usize) -> bool {
    b.get(start)
        .is_some_and(|&c| is_metric_start(c) || c == b'{')
        && b.get(end) == Some(&b' ')
}

/// The rest of a sample line after its series text (`start..end`): value, optional
/// timestamp, optional exemplar, end of line. Moves the parser to the next line.
#[inline]
pub(super) fn value_and_rest(
    p: &mut Parser<'_>,
    start: usize,
    end: usize,
    newlines: usize,
) -> Result<(f64, Option<i64>), ParseError> {
    let b = p.input;
    // `<sValue>{S}[^ \n]+`
    if b.get(end) != Some(&b' ') {
        return Err(p.unexpected(start, end, "expected value after metric"));
    }
    let v0 = end + 1;
    let v1 = token_end(b, v0);
    if v1 == v0 {
        return Err(p.unexpected(start, v0, "expected value after metric"));
    }
    let value = parse_float(p, start, v0, v1)?;

    let mut k = v1;
    let mut timestamp_ms = None;
    match b.get(k) {
        None => return Err(p.error(start, k, NO_EOF.to_string())),
        Some(b'\n') => {}
        Some(b' ') if exemplar_at(b, k) => k = exemplar(p, start, k + 4)?,
        Some(b' ') => {
            let t0 = k + 1;
            let t1 = token_end(b, t0);
            if t1 == t0 {
                return Err(p.unexpected(start, t0, "expected timestamp or exemplar"));
            }
            let ts = parse_float(p, start, t0, t1)?;
            if !ts.is_finite() {
                return Err(p.error(start, t1, format!("invalid timestamp {}", go_float(ts))));
            }
            // Go's `int64(ts * 1000)`: truncation toward zero.
            timestamp_ms = Some((ts * 1000.0) as i64);
            k = t1;
            match b.get(k) {
                Some(b'\n') => {}
                Some(b' ') if exemplar_at(b, k) => k = exemplar(p, start, k + 4)?,
                _ => return Err(p.unexpected(start, k, "expected next entry after timestamp")),
            }
        }
        Some(_) => return Err(p.unexpected(start, k, "expected timestamp or exemplar")),
    }

    p.pos = k + 1;
    p.line += 1 + newlines;
    Ok((value, timestamp_ms))
}

fn parse_float(p: &mut Parser<'_>, start: usize, v0: usize, v1: usize) -> Result<f64, ParseError> {
    let b = p.input;
    parse_value(&b[v0..v1]).map_err(|e| {
        let msg = format!(
            "{} while parsing: {}",
            e.describe(&b[v0..v1]),
            go_quote(&b[start..v1])
        );
        p.error(start, v1, msg)
    })
}

/// Go's `%f` for the non-finite values the timestamp errors print.
fn go_float(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

/// The inside of `{...}` whose `{` is at `open`; returns the index after `}`.
///
/// `openmetricsparse.go`'s `parseLVals`: no blanks, a comma between labels, a trailing comma
/// allowed, a quoted string followed by `,` or `}` is the metric name.
#[inline]
fn parse_labels<'a>(
    p: &mut Parser<'a>,
    start: usize,
    open: usize,
    name: &mut Option<Cow<'a, str>>,
    newlines: &mut usize,
) -> Result<usize, ParseError> {
    let b = p.input;
    let mut k = open + 1;
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
        if let Some(q) = &quoted {
            let raw = &b[tok + 1..tok_end - 1];
            // Upstream also takes an unquoted name here (dropping its first and last byte);
            // only a quoted string can be a metric name.
            if let Some(&sep @ (b',' | b'}')) = b.get(tok_end) {
                if name.is_some() {
                    let msg = format!(
                        "metric name already set while parsing: {}",
                        go_quote(&b[start..tok_end + 1])
                    );
                    return Err(p.error(start, tok_end, msg));
                }
                let s = utf8(raw, "metric name").map_err(|e| p.error(start, tok, e))?;
                *name = Some(if q.escaped {
                    unescape(s, Escapes::Label)
                } else {
                    Cow::Borrowed(s)
                });
                if sep == b'}' {
                    return Ok(tok_end + 1);
                }
                k = tok_end + 1;
                continue;
            }
            if q.non_ascii {
                utf8(raw, "label name").map_err(|e| p.error(start, tok, e))?;
            }
        }
        if b.get(tok_end) != Some(&b'=') {
            return Err(p.unexpected(start, tok_end, "expected equal"));
        }
        let v = tok_end + 1;
        if b.get(v) != Some(&b'"') {
            return Err(p.unexpected(start, v, "expected label value"));
        }
        let q = scan_quoted(b, v, LABEL_VALUE)
            .map_err(|at| p.unexpected(start, at, "expected label value"))?;
        if q.non_ascii && std::str::from_utf8(&b[v..q.end]).is_err() {
            let msg = format!("invalid UTF-8 label value: {}", go_quote(&b[v..q.end]));
            return Err(p.error(start, v, msg));
        }
        k = q.end;
        match b.get(k) {
            Some(b',') => k += 1,
            Some(b'}') => {}
            _ => return Err(p.unexpected(start, k, "expected comma or brace close")),
        }
    }
}

/// An exemplar ` # {labels} value [timestamp]` whose labels start at `k`. Checked like
/// Prometheus checks it, then dropped. Returns the index of the line's `\n`.
fn exemplar(p: &mut Parser<'_>, start: usize, mut k: usize) -> Result<usize, ParseError> {
    let b = p.input;
    loop {
        let tok = k;
        let (tok_end, quoted) = match b.get(k) {
            Some(b'}') => {
                k += 1;
                break;
            }
            Some(b'"') => {
                let q = scan_quoted(b, k, EXEMPLAR)
                    .map_err(|at| p.unexpected(start, at, "expected label name"))?;
                (q.end, Some(q))
            }
            Some(&c) if is_label_start(c) => (scan_label_name(b, k), None),
            _ => return Err(p.unexpected(start, k, "expected label name")),
        };
        if matches!(b.get(tok_end), Some(b',' | b'}')) {
            return Err(p.unexpected(start, tok_end, "expected label name"));
        }
        if quoted.is_some_and(|q| q.non_ascii) {
            utf8(&b[tok + 1..tok_end - 1], "label name").map_err(|e| p.error(start, tok, e))?;
        }
        if b.get(tok_end) != Some(&b'=') {
            return Err(p.unexpected(start, tok_end, "expected equal"));
        }
        let v = tok_end + 1;
        if b.get(v) != Some(&b'"') {
            return Err(p.unexpected(start, v, "expected label value"));
        }
        let q = scan_quoted(b, v, EXEMPLAR)
            .map_err(|at| p.unexpected(start, at, "expected label value"))?;
        if q.non_ascii && std::str::from_utf8(&b[v..q.end]).is_err() {
            let msg = format!("invalid UTF-8 label value: {}", go_quote(&b[v..q.end]));
            return Err(p.error(start, v, msg));
        }
        k = q.end;
        match b.get(k) {
            Some(b',') => k += 1,
            Some(b'}') => {}
            _ => return Err(p.unexpected(start, k, "expected comma or brace close")),
        }
    }
    if b.get(k) != Some(&b' ') {
        return Err(p.unexpected(start, k, "expected value after exemplar labels"));
    }
    let v1 = token_end(b, k + 1);
    if v1 == k + 1 {
        return Err(p.unexpected(start, k + 1, "expected value after exemplar labels"));
    }
    parse_float(p, start, k + 1, v1)?;
    k = v1;
    match b.get(k) {
        None => Err(p.error(start, k, NO_EOF.to_string())),
        Some(b'\n') => Ok(k),
        Some(b' ') => {
            let t1 = token_end(b, k + 1);
            if t1 == k + 1 {
                return Err(p.unexpected(start, k + 1, "expected timestamp or comment"));
            }
            let ts = parse_float(p, start, k + 1, t1)?;
            if !ts.is_finite() {
                let msg = format!("invalid exemplar timestamp {}", go_float(ts));
                return Err(p.error(start, t1, msg));
            }
            if b.get(t1) != Some(&b'\n') {
                return Err(p.unexpected(
                    start,
                    t1,
                    "expected next entry after exemplar timestamp",
                ));
            }
            Ok(t1)
        }
        Some(_) => Err(p.unexpected(start, k, "expected timestamp or comment")),
    }
}
