//! The exposition parser: Prometheus text format 0.0.4 and OpenMetrics 1.0.0, read straight
//! from the response body, and the entries of a protobuf exposition decoded elsewhere
//! ([`Decoded`], filled by `scrape::protobuf`), so one consumer reads every format.
//!
//! It owns what Prometheus's `model/textparse` owns (`promparse.go`, `openmetricsparse.go`
//! and their golex lexers) and reproduces their grammar, quirks included (blanks before a
//! text-format name belong to the name, a NUL where a line may start ends the input, `le` is
//! normalized after any `histogram` TYPE line), so a target is read as Prometheus 3 reads it.
//! Where this module differs, on purpose:
//! - OpenMetrics: only a quoted string can be the metric name inside braces (Prometheus also
//!   takes `{foo,a="b"}`, naming the metric `o`).
//! - Invalid UTF-8 in quoted names, and repeated label names, are refused here; Prometheus
//!   refuses them a step later (scrape label checks), so the scrape fails either way.
//! - Metric names in `HELP`/`TYPE`/`UNIT` given as quoted strings are unescaped.
//! - OpenMetrics timestamps outside the i64 millisecond range saturate (Go's conversion is
//!   platform-defined there).
//!
//! # Cost model
//!
//! [`Parser::next_entry`] never allocates for a sample without escapes: [`Sample::series`] and
//! [`Sample::name`] borrow the input, the value and timestamp are parsed in place. It checks
//! the whole line (syntax and UTF-8), so a body that passes is valid. The label work
//! (splitting, unescaping, `le`/`quantile` normalization, duplicate names) is left to
//! [`Sample::labels_into`], which a caller with a series cache only calls on a miss: the
//! labels are a pure function of `(series, metric_type)`.
//!
//! A caller that expects a series it has seen can skip even the syntax check of its text:
//! [`Parser::next_known`] takes the text's length and a check of its bytes (the caller's
//! hash), and parses only the value, timestamp and (OpenMetrics) exemplar after it. Equal
//! bytes from a line's start parse the same, so this returns exactly what `next_entry` would,
//! in both formats; on anything else it declines and `next_entry` reads the line.
//!
//! Nothing here depends on anything but `std`, so the fuzz target can compile this module on
//! its own.

use std::borrow::Cow;
use std::fmt;

mod float;
mod lex;
mod openmetrics;
pub(crate) mod pb;
mod text;

#[cfg(test)]
mod tests;

use lex::{Escapes, go_quote, scan_label_name, skip_ws, unescape};

/// The `Accept` header Prometheus 3 sends with its default `scrape_protocols`
/// (`OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText1.0.0, PrometheusText0.0.4`)
/// and UTF-8 names allowed: `scrape.go`'s `acceptHeader` weighs them from
/// `q=0.<len(ScrapeProtocolsHeaders)+1>` down, adds `escaping=allow-utf-8` to the 1.0.0
/// formats and ends with `*/*`. Protobuf is not in the default list (it leads the list when
/// `scrape_native_histograms` is on).
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
application/openmetrics-text;version=0.0.1;q=0.5,\
text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
text/plain;version=0.0.4;q=0.3,\
*/*;q=0.2";

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (also served as `text/plain;version=1.0.0`).
    Text,
    /// OpenMetrics 1.0.0 text (`application/openmetrics-text`).
    OpenMetrics,
    /// Delimited protobuf `io.prometheus.client.MetricFamily` messages
    /// (`application/vnd.google.protobuf`), read through [`Decoded`].
    Protobuf,
}

/// The format to parse a body with: OpenMetrics for `application/openmetrics-text`, the text
/// format for anything else, a missing or unparsable header included.
///
/// This is Prometheus 2's rule. Prometheus 3 fails the scrape instead when the header is blank,
/// unparsable or unsupported and no `fallback_scrape_protocol` is configured: see
/// [`negotiate_format`].
pub fn format_from_content_type(ct: &str) -> Format {
    if media_type(ct).is_some_and(|m| m.eq_ignore_ascii_case("application/openmetrics-text")) {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Prometheus 3's choice of parser (`textparse.extractMediaType`): the `Content-Type` decides
/// when it is `application/openmetrics-text` or `text/plain`; otherwise `fallback` (the job's
/// `fallback_scrape_protocol`) is used, and without one the scrape fails with the returned
/// error. Prometheus does not fail a scrape whose body is empty, so only call this for a
/// non-empty body.
pub fn negotiate_format(
    content_type: Option<&str>,
    fallback: Option<Format>,
) -> Result<Format, ContentTypeError> {
    let ct = content_type.unwrap_or("").trim();
    let err = if ct.is_empty() {
        ContentTypeError::Blank
    } else {
        match media_type(ct) {
            None => ContentTypeError::Unparsable(ct.to_string()),
            Some(m) if m.eq_ignore_ascii_case("application/openmetrics-text") => {
                return Ok(Format::OpenMetrics);
            }
            Some(m) if m.eq_ignore_ascii_case("text/plain") => return Ok(Format::Text),
            // Prometheus looks at the media type only, not `proto=` or `encoding=`.
            Some(m) if m.eq_ignore_ascii_case("application/vnd.google.protobuf") => {
                return Ok(Format::Protobuf);
            }
            Some(_) => ContentTypeError::Unsupported(ct.to_string()),
        }
    };
    fallback.ok_or(err)
}

/// Why [`negotiate_format`] could not pick a format (texts as Prometheus logs them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentTypeError {
    /// No `Content-Type` header, or an empty one.
    Blank,
    /// Not a media type (`mime.ParseMediaType` fails).
    Unparsable(String),
    /// A media type neither format uses.
    Unsupported(String),
}

impl fmt::Display for ContentTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentTypeError::Blank => f.write_str(
                "non-compliant scrape target sending blank Content-Type and no \
                 fallback_scrape_protocol specified for target",
            ),
            ContentTypeError::Unparsable(ct) => {
                write!(
                    f,
                    "cannot parse Content-Type {ct:?} and no fallback_scrape_protocol for target"
                )
            }
            ContentTypeError::Unsupported(ct) => write!(
                f,
                "received unsupported Content-Type {ct:?} and no fallback_scrape_protocol \
                 specified for target"
            ),
        }
    }
}

impl std::error::Error for ContentTypeError {}

/// The `type/subtype` of a `Content-Type`, if it is syntactically a media type with
/// well-formed parameters (a light version of Go's `mime.ParseMediaType`).
fn media_type(ct: &str) -> Option<&str> {
    fn is_token(s: &str) -> bool {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&c))
    }
    let mut parts = ct.split(';');
    let mt = parts.next()?.trim();
    let (ty, sub) = mt.split_once('/')?;
    if !is_token(ty) || !is_token(sub) {
        return None;
    }
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (k, v) = p.split_once('=')?;
        let v = v.trim();
        let quoted = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
        if !is_token(k.trim()) || !(quoted || is_token(v)) {
            return None;
        }
    }
    Some(mt)
}

/// A metric family type, as declared by a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// OpenMetrics `unknown`, text format `untyped`, or no `# TYPE` seen yet.
    #[default]
    Unknown,
}

impl MetricType {
    /// Prometheus's name for the type (`model.MetricType`), as in metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of an exposition. Comments other than `HELP`, `TYPE` and `UNIT` are skipped.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP name text`, the text unescaped (`\\`, `\n`; OpenMetrics also `\"`).
    Help {
        name: Cow<'a, str>,
        help: Cow<'a, str>,
    },
    /// `# TYPE name type`. Later samples carry `kind` in [`Sample::metric_type`].
    Type {
        name: Cow<'a, str>,
        kind: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics only).
    Unit {
        name: Cow<'a, str>,
        unit: &'a str,
    },
    Sample(Sample<'a>),
    /// A native histogram (protobuf only): its series as a [`Sample`] whose `value` is NaN,
    /// and where the decoder put the histogram itself.
    Histogram {
        series: Sample<'a>,
        index: usize,
    },
}

/// A sample line read by [`Parser::next_known`]: a series the caller has seen before, so
/// only what changes between scrapes is parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownSample<'a> {
    /// As [`Sample::series`].
    pub series: &'a [u8],
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    pub metric_type: MetricType,
}

/// One sample line.
///
/// A metric name given as a quoted string (`{"my.metric"}`, Prometheus 3 UTF-8 names) is
/// unescaped into an owned `name`; every other field borrows the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The series exactly as exposed: from the start of the line through the metric name, or
    /// through the closing `}` when there are labels (protobuf: the key [`Decoded`] built). Equal bytes under the same
    /// [`Self::metric_type`] give equal labels, which makes this the cache key that lets a
    /// steady-state scrape skip label work.
    pub series: &'a [u8],
    /// The metric name. As in Prometheus, blanks before the name at the start of a text-format
    /// line are part of it.
    pub name: Cow<'a, str>,
    /// The value; any NaN is Prometheus's normal NaN (`0x7ff8000000000001`), never the stale
    /// marker.
    pub value: f64,
    /// Text format: the integer milliseconds as written. OpenMetrics: float seconds times
    /// 1000, truncated toward zero as Go's `int64(ts * 1000)` does.
    pub timestamp_ms: Option<i64>,
    /// The type of the latest `# TYPE` line (whatever family it named), as Prometheus keeps
    /// it. It decides `le`/`quantile` normalization in [`Self::labels_into`].
    pub metric_type: MetricType,
    labels: LabelSource<'a>,
    /// 1-based line of the sample, for errors from [`Self::labels_into`].
    line: usize,
}

/// Where a [`Sample`]'s labels are read from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LabelSource<'a> {
    /// `{...}` inclusive, empty when the series has no braces.
    Text(&'a [u8]),
    /// Protobuf: the metric's `label` fields as encoded (`LabelPair` messages, read and
    /// checked only here, on a cache miss), and the `le` or `quantile` label the sample adds
    /// (already formatted).
    Encoded {
        fields: &'a [u8],
        extra: Option<(&'a str, &'a str)>,
    },
}

/// Re-reading an already validated series: anything goes inside quotes.
const LENIENT: lex::QuoteRules = lex::QuoteRules {
    newline: true,
    nul: true,
};

/// Label name Prometheus uses for the metric name.
const METRIC_NAME_LABEL: &str = "__name__";

impl<'a> Sample<'a> {
    /// Clears `out` and fills it with the sample's labels in exposition order, without the
    /// metric name: names and values unescaped (borrowed unless an escape had to be
    /// replaced), and `le` (after a `histogram` TYPE) or `quantile` (after a `summary` TYPE)
    /// rewritten as Prometheus 3 does (`"1"` becomes `"1.0"`, see
    /// `normalizeFloatsInLabelValues`).
    ///
    /// Fails when a label name repeats or is `__name__` (Prometheus fails the scrape for
    /// that). Reuse `out` across samples to avoid allocating.
    pub fn labels_into(
        &self,
        out: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
    ) -> Result<(), ParseError> {
        out.clear();
        let labels = match self.labels {
            LabelSource::Text(labels) => labels,
            LabelSource::Encoded { fields, extra } => {
                pb::label_pairs(fields, out).map_err(|m| self.error(m))?;
                if let Some((n, v)) = extra {
                    out.push((Cow::Borrowed(n), Cow::Borrowed(v)));
                }
                return self.check_duplicates(out);
            }
        };
        if labels.is_empty() {
            return Ok(());
        }
        // Checked when parsed: quoted names and values are valid UTF-8, the rest is ASCII.
        // One pass over the whole `{...}` lets every piece be sliced out as `&str`.
        let s = lex::utf8(labels, "labels").map_err(|m| self.error(m))?;
        let b = s.as_bytes();
        let piece = |from: usize, to: usize| s.get(from..to).unwrap_or_default();
        let mut k = 1;
        // The series was validated when it was parsed, so this only has to find the pieces.
        // Every step advances `k`, so even a corrupt slice terminates.
        loop {
            k = skip_ws(b, k);
            let (name, quoted) = match b.get(k) {
                None | Some(b'}') => break,
                Some(b',') => {
                    k += 1;
                    continue;
                }
                Some(b'"') => {
                    let q = lex::scan_quoted(b, k, LENIENT).map_err(|_| self.corrupt())?;
                    let name = piece(k + 1, q.end - 1);
                    k = q.end;
                    (name, q.escaped)
                }
                Some(_) => {
                    let e = scan_label_name(b, k);
                    let name = piece(k, e);
                    k = e;
                    (name, false)
                }
            };
            k = skip_ws(b, k);
            if b.get(k) != Some(&b'=') {
                // A quoted string on its own is the metric name.
                continue;
            }
            k = skip_ws(b, k + 1);
            if b.get(k) != Some(&b'"') {
                return Err(self.corrupt());
            }
            let q = lex::scan_quoted(b, k, LENIENT).map_err(|_| self.corrupt())?;
            let value = piece(k + 1, q.end - 1);
            k = q.end;
            let name = if quoted {
                unescape(name, Escapes::Label)
            } else {
                Cow::Borrowed(name)
            };
            let value = if q.escaped {
                unescape(value, Escapes::Label)
            } else {
                Cow::Borrowed(value)
            };
            let value = match self.metric_type {
                MetricType::Histogram | MetricType::Summary => self.normalize(&name, value),
                _ => value,
            };
            out.push((name, value));
        }
        self.check_duplicates(out)
    }

    fn corrupt(&self) -> ParseError {
        self.error(format!("corrupt series {}", go_quote(self.series)))
    }

    /// Prometheus's `normalizeFloatsInLabelValues`: for a `histogram` type the `le` label and
    /// for a `summary` type the `quantile` label, when Go's `ParseFloat` reads the value, is
    /// rewritten with `FormatOpenMetricsFloat`. (Prometheus does not do it for
    /// `gaugehistogram`.)
    fn normalize(&self, name: &str, value: Cow<'a, str>) -> Cow<'a, str> {
        let applies = match self.metric_type {
            MetricType::Histogram => name == "le",
            MetricType::Summary => name == "quantile",
            _ => false,
        };
        if !applies {
            return value;
        }
        let Ok(f) = float::parse_go_float(value.as_bytes()) else {
            return value;
        };
        let mut buf = float::FloatBuf::new();
        float::format_openmetrics_float(f, &mut buf);
        if buf.as_str() == value {
            value
        } else {
            Cow::Owned(buf.as_str().to_string())
        }
    }

    fn check_duplicates(&self, out: &[(Cow<'a, str>, Cow<'a, str>)]) -> Result<(), ParseError> {
        let dup = |n: &str| {
            self.error(format!(
                "label name {} is not unique while parsing: {}",
                go_quote(n.as_bytes()),
                go_quote(self.series)
            ))
        };
        if let Some((n, _)) = out.iter().find(|(n, _)| n == METRIC_NAME_LABEL) {
            return Err(dup(n));
        }
        if out.len() <= 16 {
            for (i, (n, _)) in out.iter().enumerate() {
                if out[..i].iter().any(|(m, _)| m == n) {
                    return Err(dup(n));
                }
            }
        } else {
            let mut names: Vec<&str> = out.iter().map(|(n, _)| n.as_ref()).collect();
            names.sort_unstable();
            if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                return Err(dup(w[0]));
            }
        }
        Ok(())
    }

    /// Whether this is an OpenMetrics `_created` series of a counter, summary or histogram
    /// (Prometheus's `isCreatedSeries`). Prometheus ingests them as ordinary samples unless
    /// created-timestamp ingestion is on; the caller decides.
    pub fn is_created_series(&self) -> bool {
        matches!(
            self.metric_type,
            MetricType::Counter | MetricType::Summary | MetricType::Histogram
        ) && self.name.ends_with("_created")
    }

    fn error(&self, message: String) -> ParseError {
        ParseError {
            line: self.line,
            message,
        }
    }
}

/// A parse failure: the 1-based line it was found on and what was wrong, worded like
/// Prometheus's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    line: usize,
    message: String,
}

impl ParseError {
    /// 1-based line number in the body.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The message without the line number.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // A decoded (protobuf) entry: there are no lines.
            return f.write_str(&self.message);
        }
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A streaming parser over a whole response body.
///
/// ```text
/// let mut p = Parser::new(body, format_from_content_type(ct));
/// while let Some(entry) = p.next_entry()? {
///     if let Entry::Sample(s) = entry { /* s.series, s.value, s.labels_into(&mut buf)? */ }
/// }
/// ```
///
/// After an error or the end, `next_entry` keeps returning `Ok(None)`.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    input: &'a [u8],
    /// Start of the next entry.
    pos: usize,
    /// 1-based line of `pos`.
    line: usize,
    format: Format,
    /// Type of the latest `# TYPE` line (Prometheus's `p.mtype`).
    mtype: MetricType,
    done: bool,
    /// [`Format::Protobuf`]: the decoded entries, `pos` indexing them.
    decoded: Option<&'a Decoded>,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8], format: Format) -> Self {
        Parser {
            input,
            pos: 0,
            line: 1,
            format,
            mtype: MetricType::Unknown,
            done: false,
            decoded: None,
        }
    }

    /// A parser over a decoded protobuf exposition ([`Format::Protobuf`]).
    pub fn decoded(decoded: &'a Decoded) -> Self {
        Parser {
            decoded: Some(decoded),
            ..Parser::new(&[], Format::Protobuf)
        }
    }

    /// The next entry, or `Ok(None)` at the end (for OpenMetrics: after `# EOF`).
    pub fn next_entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        if self.done {
            return Ok(None);
        }
        match self.format {
            Format::Text => text::next(self),
            Format::OpenMetrics => openmetrics::next(self),
            Format::Protobuf => Ok(self.next_decoded()),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The next entry if it is a sample line whose [`Sample::series`] is `len` bytes long,
    /// holds `newlines` newlines, is of `metric_type` and satisfies `same`: the series text
    /// the caller has seen before and holds the labels of. Otherwise `None`, and nothing was
    /// consumed: call [`Self::next_entry`]. A `Some` is exactly what `next_entry` would have
    /// returned for the line, without lexing the labels again (most of a line's bytes).
    ///
    /// The caller must have seen the text under this parser's format: the two formats'
    /// series grammars differ (the text format allows blanks inside braces).
    pub fn next_known(
        &mut self,
        len: usize,
        newlines: usize,
        metric_type: MetricType,
        same: impl FnOnce(&'a [u8]) -> bool,
    ) -> Option<KnownSample<'a>> {
        if self.format == Format::Protobuf {
            return self.next_known_decoded(len, metric_type, same);
        }
        if self.done || self.mtype != metric_type {
            return None;
        }
        let (b, start) = (self.input, self.pos);
        let end = start.checked_add(len).filter(|&e| e <= b.len())?;
        let ends = match self.format {
            Format::Text => text::series_ends_at(b, start, end),
            Format::OpenMetrics => openmetrics::series_ends_at(b, start, end),
            Format::Protobuf => false,
        };
        if !ends || !same(&b[start..end]) {
            return None;
        }
        // The rest of the line on a copy, kept only if it reads: on an error the parser is
        // left as it was, for `next_entry` to report it in full.
        let mut q = self.clone();
        let (value, timestamp_ms) = match self.format {
            Format::Text => text::value_and_timestamp(&mut q, start, end, newlines),
            Format::OpenMetrics => openmetrics::value_and_rest(&mut q, start, end, newlines),
            Format::Protobuf => return None,
        }
        .ok()?;
        *self = q;
        Some(KnownSample {
            series: &self.input[start..end],
            value,
            timestamp_ms,
            metric_type: self.mtype,
        })
    }

    /// The next decoded entry; `pos` counts entries.
    fn next_decoded(&mut self) -> Option<Entry<'a>> {
        let d = self.decoded?;
        let Some(item) = d.items.get(self.pos) else {
            self.done = true;
            return None;
        };
        self.pos += 1;
        Some(d.entry(item))
    }

    /// [`Self::next_known`] over decoded entries: the key is compared, nothing is parsed.
    fn next_known_decoded(
        &mut self,
        len: usize,
        metric_type: MetricType,
        same: impl FnOnce(&'a [u8]) -> bool,
    ) -> Option<KnownSample<'a>> {
        let d = self.decoded?;
        // A histogram's value is not in the entry: the caller reads it with `next_entry`.
        let Some(DecodedItem::Sample {
            key,
            value,
            timestamp_ms,
            metric_type: mt,
            histogram: None,
            ..
        }) = d.items.get(self.pos)
        else {
            return None;
        };
        let series = d.key(*key);
        if *mt != metric_type || series.len() != len || !same(series) {
            return None;
        }
        self.pos += 1;
        Some(KnownSample {
            series,
            value: *value,
            timestamp_ms: *timestamp_ms,
            metric_type,
        })
    }

    /// The end both formats' sample lines share: the series text `start..end` was read
    /// (`name` from it, `labels` its braces, `newlines` inside it); `rest` reads the value
    /// and what follows it and moves to the next line.
    #[inline]
    fn sample_after_series(
        &mut self,
        start: usize,
        end: usize,
        name: Option<Cow<'a, str>>,
        labels: &'a [u8],
        newlines: usize,
        rest: impl FnOnce(&mut Self, usize, usize, usize) -> Result<(f64, Option<i64>), ParseError>,
    ) -> Result<Sample<'a>, ParseError> {
        let b = self.input;
        let Some(name) = name else {
            let msg = format!(
                "metric name not set while parsing: {}",
                go_quote(&b[start..end])
            );
            return Err(self.error(start, end, msg));
        };
        let line = self.line;
        let (value, timestamp_ms) = rest(self, start, end, newlines)?;
        Ok(Sample {
            series: &b[start..end],
            name,
            value,
            timestamp_ms,
            metric_type: self.mtype,
            labels: LabelSource::Text(labels),
            line,
        })
    }

    /// Byte offset of the next entry.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// An error found at byte `at` of the entry starting at `start` (the parser's line).
    fn error(&mut self, start: usize, at: usize, message: String) -> ParseError {
        self.done = true;
        let at = at.min(self.input.len()).max(start);
        let extra = self.input[start..at]
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        ParseError {
            line: self.line + extra,
            message,
        }
    }

    /// "expected X, got Y while parsing: Z", as Prometheus's `parseError` words it.
    fn unexpected(&mut self, start: usize, at: usize, expected: &str) -> ParseError {
        let b = self.input;
        let got = match b.get(at) {
            Some(c) => go_quote(std::slice::from_ref(c)),
            None => "end of input".to_string(),
        };
        let end = (at + 1).min(b.len()).max(start);
        let msg = format!(
            "{expected}, got {got} while parsing: {}",
            go_quote(&b[start..end])
        );
        self.error(start, at, msg)
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

impl std::iter::FusedIterator for Parser<'_> {}

/// `f` as Prometheus writes `le` and `quantile` values (`labels.FormatOpenMetricsFloat`).
pub fn openmetrics_float(f: f64) -> String {
    let mut buf = float::FloatBuf::new();
    float::format_openmetrics_float(f, &mut buf);
    buf.as_str().to_string()
}

/// A protobuf exposition decoded into entries, in the order Prometheus's `ProtobufParser`
/// (`model/textparse/protobufparse.go`) returns them: per family with metrics, `HELP`,
/// `UNIT` when set, `TYPE`, then its samples. Filled by the scrape's protobuf decoder; kept
/// here, free of protobuf types, so one [`Parser`] serves every format and its consumer has
/// one path.
///
/// Strings live in a few arenas rather than one `String` per entry: a decoded scrape costs a
/// handful of allocations beyond the decoder's own.
#[derive(Debug, Default)]
pub struct Decoded {
    items: Vec<DecodedItem>,
    /// Family and metric names, help and unit texts, `le` and `quantile` values.
    text: String,
    /// Every sample's series key: its metric name, `0xff`, the length (u32 LE) and bytes of
    /// its metric's encoded `label` fields, then `0xff name 0xff value` of an `le` or
    /// `quantile` label. Equal keys are equal label sets (names are UTF-8, which has no
    /// `0xff`; the length bounds the encoded part), and building one parses nothing: the
    /// labels themselves are read only on a cache miss.
    keys: Vec<u8>,
}

/// A range of one of [`Decoded`]'s arenas.
type Span = (u32, u32);

#[derive(Debug)]
enum DecodedItem {
    Help {
        name: Span,
        help: Span,
    },
    Unit {
        name: Span,
        unit: Span,
    },
    Type {
        name: Span,
        kind: MetricType,
    },
    Sample {
        name: Span,
        key: Span,
        /// The encoded `label` fields, within the key.
        labels: Span,
        /// `le` or `quantile` (name, value) in `text`.
        extra: Option<(Span, Span)>,
        value: f64,
        timestamp_ms: Option<i64>,
        metric_type: MetricType,
        /// A native histogram: its index among the decoder's histograms.
        histogram: Option<u32>,
    },
}

impl Decoded {
    fn push_text(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        (start, self.text.len() as u32)
    }

    fn text(&self, (a, b): Span) -> &str {
        self.text.get(a as usize..b as usize).unwrap_or_default()
    }

    fn key(&self, (a, b): Span) -> &[u8] {
        self.keys.get(a as usize..b as usize).unwrap_or_default()
    }

    pub fn push_help(&mut self, name: &str, help: &str) {
        let (name, help) = (self.push_text(name), self.push_text(help));
        self.items.push(DecodedItem::Help { name, help });
    }

    pub fn push_unit(&mut self, name: &str, unit: &str) {
        let (name, unit) = (self.push_text(name), self.push_text(unit));
        self.items.push(DecodedItem::Unit { name, unit });
    }

    pub fn push_type(&mut self, name: &str, kind: MetricType) {
        let name = self.push_text(name);
        self.items.push(DecodedItem::Type { name, kind });
    }

    /// A sample of `name` whose metric's `label` fields, as encoded, are `fields`, plus the
    /// `extra` label (`le`, `quantile`) the sample adds.
    pub fn push_sample(
        &mut self,
        name: &str,
        fields: &[u8],
        extra: Option<(&str, &str)>,
        value: f64,
        timestamp_ms: Option<i64>,
        metric_type: MetricType,
    ) {
        self.push_series(name, fields, extra, value, timestamp_ms, metric_type, None);
    }

    /// A native histogram sample, the histogram being the decoder's number `index`; labels as
    /// in [`Self::push_sample`].
    pub fn push_histogram(
        &mut self,
        name: &str,
        fields: &[u8],
        index: u32,
        timestamp_ms: Option<i64>,
        metric_type: MetricType,
    ) {
        self.push_series(
            name,
            fields,
            None,
            f64::NAN,
            timestamp_ms,
            metric_type,
            Some(index),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push_series(
        &mut self,
        name: &str,
        fields: &[u8],
        extra: Option<(&str, &str)>,
        value: f64,
        timestamp_ms: Option<i64>,
        metric_type: MetricType,
        histogram: Option<u32>,
    ) {
        let key_start = self.keys.len();
        self.keys.extend_from_slice(name.as_bytes());
        self.keys.push(0xff);
        self.keys
            .extend_from_slice(&(fields.len() as u32).to_le_bytes());
        let labels_start = self.keys.len() as u32;
        self.keys.extend_from_slice(fields);
        let labels = (labels_start, self.keys.len() as u32);
        let extra = extra.map(|(n, v)| {
            self.keys.push(0xff);
            self.keys.extend_from_slice(n.as_bytes());
            self.keys.push(0xff);
            self.keys.extend_from_slice(v.as_bytes());
            (self.push_text(n), self.push_text(v))
        });
        let key = (key_start as u32, self.keys.len() as u32);
        // As the text formats read it: a target cannot send the stale marker.
        let value = if value.is_nan() {
            f64::from_bits(float::NORMAL_NAN)
        } else {
            value
        };
        let name = self.push_text(name);
        self.items.push(DecodedItem::Sample {
            name,
            key,
            labels,
            extra,
            value,
            timestamp_ms,
            metric_type,
            histogram,
        });
    }

    /// Room for about `bytes` of exposition, so the arenas are not grown (copied) as they fill.
    pub fn reserve(&mut self, bytes: usize) {
        // Keys hold nearly every byte of the labels; `text` names and help only.
        self.keys.reserve(bytes);
        self.text.reserve(bytes / 16);
        self.items.reserve(bytes / 128);
    }

    /// Entries decoded so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `item` as an entry.
    fn entry<'a>(&'a self, item: &DecodedItem) -> Entry<'a> {
        match *item {
            DecodedItem::Help { name, help } => Entry::Help {
                name: Cow::Borrowed(self.text(name)),
                help: Cow::Borrowed(self.text(help)),
            },
            DecodedItem::Unit { name, unit } => Entry::Unit {
                name: Cow::Borrowed(self.text(name)),
                unit: self.text(unit),
            },
            DecodedItem::Type { name, kind } => Entry::Type {
                name: Cow::Borrowed(self.text(name)),
                kind,
            },
            DecodedItem::Sample {
                name,
                key,
                labels,
                extra,
                value,
                timestamp_ms,
                metric_type,
                histogram,
            } => {
                let sample = Sample {
                    series: self.key(key),
                    name: Cow::Borrowed(self.text(name)),
                    value,
                    timestamp_ms,
                    metric_type,
                    labels: LabelSource::Encoded {
                        fields: self.key(labels),
                        extra: extra.map(|(n, v)| (self.text(n), self.text(v))),
                    },
                    // Errors name no line: a decoded exposition has none.
                    line: 0,
                };
                match histogram {
                    None => Entry::Sample(sample),
                    Some(index) => Entry::Histogram {
                        series: sample,
                        index: index as usize,
                    },
                }
            }
        }
    }
}

/// Bytes known to be ASCII (checked by the grammar) as `&str`.
#[inline]
fn ascii_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}
