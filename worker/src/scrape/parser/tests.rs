//! Prometheus's own parser tests (`model/textparse/promparse_test.go`,
//! `openmetricsparse_test.go`, Prometheus 3), ported as tables with the exact expected
//! series, labels, values and timestamps, plus promshard's own cases and the real fixtures.
//!
//! Deliberately not ported:
//! - `type-and-unit=true` variants of TestPromParse / TestOpenMetricsParse: the
//!   `type-and-unit-labels` feature (`__type__`/`__unit__` labels) is not implemented.
//! - Exemplar expectations (`es`) and created timestamps (`ct`) in TestOpenMetricsParse and
//!   TestOpenMetricsParse_UTF8: exemplars are validated and dropped, and `_created` lines are
//!   returned as ordinary samples (Prometheus's default, `OpenMetricsSkipSTSeries` off). The
//!   upstream tests run with `_created` skipping on; here the same inputs expect the
//!   `_created` samples in place.
//! - TestCTParseFailures: it tests created-timestamp lookup, which promshard does not do.
//! - The four comment entries of TestPromParse (`EntryComment`): comments are not returned.
//! - Exact error strings: messages keep Prometheus's wording ("expected label value, got ...
//!   while parsing: ...") but not its lexer token names, so errors are matched on the part
//!   that says what was wrong (the whole upstream message where it is identical).

use super::*;

/// What the parser produced, owned, with Prometheus-style sorted label sets.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Series {
        series: String,
        value: Value,
        ts: Option<i64>,
        lset: Vec<(String, String)>,
    },
}

/// f64 with NaN == NaN, so expectations can be compared with `assert_eq!`.
#[derive(Debug, Clone, Copy)]
struct Value(f64);

impl PartialEq for Value {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0 || (self.0.is_nan() && o.0.is_nan())
    }
}

fn help(m: &str, h: &str) -> Got {
    Got::Help(m.into(), h.into())
}

fn typ(m: &str, t: MetricType) -> Got {
    Got::Type(m.into(), t)
}

fn unit(m: &str, u: &str) -> Got {
    Got::Unit(m.into(), u.into())
}

/// A sample: `series` as exposed, and `lset` as `labels.FromStrings` takes it (pairs,
/// `__name__` included).
fn smp(series: &str, v: f64, ts: Option<i64>, lset: &[&str]) -> Got {
    let mut l: Vec<(String, String)> = lset
        .chunks(2)
        .map(|p| (p[0].to_string(), p[1].to_string()))
        .collect();
    l.sort();
    Got::Series {
        series: series.into(),
        value: Value(v),
        ts,
        lset: l,
    }
}

fn collect(input: &[u8], format: Format) -> Result<Vec<Got>, ParseError> {
    let mut p = Parser::new(input, format);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(e) = p.next_entry()? {
        out.push(match e {
            Entry::Help { name, help } => Got::Help(name.into(), help.into()),
            Entry::Type { name, kind } => Got::Type(name.into(), kind),
            Entry::Unit { name, unit } => Got::Unit(name.into(), unit.into()),
            Entry::Histogram { .. } => unreachable!("the text formats carry no native histograms"),
            Entry::Sample(s) => {
                s.labels_into(&mut buf)?;
                let mut lset: Vec<(String, String)> = buf
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                lset.push(("__name__".into(), s.name.to_string()));
                lset.sort();
                Got::Series {
                    series: String::from_utf8_lossy(s.series).into_owned(),
                    value: Value(s.value),
                    ts: s.timestamp_ms,
                    lset,
                }
            }
        });
    }
    Ok(out)
}

fn check(input: &[u8], format: Format, exp: &[Got]) {
    let got = collect(input, format).unwrap_or_else(|e| panic!("unexpected error: {e}"));
    for (i, (g, e)) in got.iter().zip(exp).enumerate() {
        assert_eq!(g, e, "entry {i}");
    }
    assert_eq!(got.len(), exp.len(), "number of entries: got {got:#?}");
}

/// Parses to the end; `err` empty means success, otherwise the error must contain it.
fn check_error(i: usize, input: &[u8], format: Format, err: &str) {
    let res = collect(input, format);
    match (res, err) {
        (Ok(_), "") => {}
        (Ok(got), _) => panic!("case {i} {input:?}: expected error {err:?}, parsed {got:?}"),
        (Err(e), "") => panic!("case {i} {input:?}: unexpected error {e}"),
        (Err(e), _) => assert!(
            e.message().contains(err),
            "case {i} {input:?}: error {:?} does not contain {err:?}",
            e.message()
        ),
    }
}

const PROM_INPUT: &str = r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# 	TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25",} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
go_gc_duration_seconds{quantile="0.8", a="b"} 8.3835e-05
go_gc_duration_seconds{ quantile="0.9", a="b"} 8.3835e-05
# HELP prometheus_http_request_duration_seconds Histogram of latencies for HTTP requests.
# TYPE prometheus_http_request_duration_seconds histogram
prometheus_http_request_duration_seconds_bucket{handler="/",le="1"} 423
prometheus_http_request_duration_seconds_bucket{handler="/",le="2"} 1423
prometheus_http_request_duration_seconds_bucket{handler="/",le="+Inf"} 1423
prometheus_http_request_duration_seconds_sum{handler="/"} 2000
prometheus_http_request_duration_seconds_count{handler="/"} 1423
# Hrandom comment starting with prefix of HELP
#
wind_speed{A="2",c="3"} 12345
# comment with escaped \n newline
# comment with escaped \ escape character
# HELP nohelp1
# HELP nohelp2 
go_gc_duration_seconds{ quantile="1.0", a="b" } 8.3835e-05
go_gc_duration_seconds { quantile="1.0", a="b" } 8.3835e-05
go_gc_duration_seconds { quantile= "1.0", a= "b", } 8.3835e-05
go_gc_duration_seconds { quantile = "1.0", a = "b" } 8.3835e-05
go_gc_duration_seconds { quantile = "2.0" a = "b" } 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b="c"}	1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33  	123123
# TYPE some_counter_total counter
# HELP some_counter_total Help after type.
some_counter_total 12
# HELP nohelp3
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\"bar\""} 1
testmetric{le="10"} 1
# HELP type_and_unit_test1 Type specified in metadata overrides.
# TYPE type_and_unit_test1 gauge
type_and_unit_test1{__type__="counter"} 123
# HELP type_and_unit_test2 Type specified in label.
type_and_unit_test2{__type__="counter"} 123"#;

/// TestPromParse (type-and-unit=false).
#[test]
fn prom_parse() {
    use MetricType::*;
    let input =
        format!("{PROM_INPUT}\n# HELP metric foo\x00bar\nnull_byte_metric{{a=\"abc\x00\"}} 1");
    let exp = [
        help(
            "go_gc_duration_seconds",
            "A summary of the GC invocation durations.",
        ),
        typ("go_gc_duration_seconds", Summary),
        smp(
            r#"go_gc_duration_seconds{quantile="0"}"#,
            4.9351e-05,
            None,
            &["__name__", "go_gc_duration_seconds", "quantile", "0.0"],
        ),
        smp(
            r#"go_gc_duration_seconds{quantile="0.25",}"#,
            7.424100000000001e-05,
            None,
            &["__name__", "go_gc_duration_seconds", "quantile", "0.25"],
        ),
        smp(
            r#"go_gc_duration_seconds{quantile="0.5",a="b"}"#,
            8.3835e-05,
            None,
            &[
                "__name__",
                "go_gc_duration_seconds",
                "quantile",
                "0.5",
                "a",
                "b",
            ],
        ),
        smp(
            r#"go_gc_duration_seconds{quantile="0.8", a="b"}"#,
            8.3835e-05,
            None,
            &[
                "__name__",
                "go_gc_duration_seconds",
                "quantile",
                "0.8",
                "a",
                "b",
            ],
        ),
        smp(
            r#"go_gc_duration_seconds{ quantile="0.9", a="b"}"#,
            8.3835e-05,
            None,
            &[
                "__name__",
                "go_gc_duration_seconds",
                "quantile",
                "0.9",
                "a",
                "b",
            ],
        ),
        help(
            "prometheus_http_request_duration_seconds",
            "Histogram of latencies for HTTP requests.",
        ),
        typ("prometheus_http_request_duration_seconds", Histogram),
        smp(
            r#"prometheus_http_request_duration_seconds_bucket{handler="/",le="1"}"#,
            423.0,
            None,
            &[
                "__name__",
                "prometheus_http_request_duration_seconds_bucket",
                "handler",
                "/",
                "le",
                "1.0",
            ],
        ),
        smp(
            r#"prometheus_http_request_duration_seconds_bucket{handler="/",le="2"}"#,
            1423.0,
            None,
            &[
                "__name__",
                "prometheus_http_request_duration_seconds_bucket",
                "handler",
                "/",
                "le",
                "2.0",
            ],
        ),
        smp(
            r#"prometheus_http_request_duration_seconds_bucket{handler="/",le="+Inf"}"#,
            1423.0,
            None,
            &[
                "__name__",
                "prometheus_http_request_duration_seconds_bucket",
                "handler",
                "/",
                "le",
                "+Inf",
            ],
        ),
        smp(
            r#"prometheus_http_request_duration_seconds_sum{handler="/"}"#,
            2000.0,
            None,
            &[
                "__name__",
                "prometheus_http_request_duration_seconds_sum",
                "handler",
                "/",
            ],
        ),
        smp(
            r#"prometheus_http_request_duration_seconds_count{handler="/"}"#,
            1423.0,
            None,
            &[
                "__name__",
                "prometheus_http_request_duration_seconds_count",
                "handler",
                "/",
            ],
        ),
        smp(
            r#"wind_speed{A="2",c="3"}"#,
            12345.0,
            None,
            &["A", "2", "__name__", "wind_speed", "c", "3"],
        ),
        help("nohelp1", ""),
        help("nohelp2", ""),
        // The type is still `histogram` (the last TYPE line), so `quantile` is not normalized.
        smp(
            r#"go_gc_duration_seconds{ quantile="1.0", a="b" }"#,
            8.3835e-05,
            None,
            &[
                "__name__",
                "go_gc_duration_seconds",
                "quantile",
                "1.0",
                "a",
                "b",
            ],
        ),
        smp(
            r#"go_gc_duration_seconds { quantile="1.0", a="b" }"#,
            8.3835e-05,
            None,
            &[
                "__name__",
                "go_gc_duration_seconds",
                "quantile",
                "1.0",
                "a",
                "b",
            ],
        ),
        smp(
            r#"go_gc_duration_seconds { quantile= "1.0", a= "b", }"#,
            8.3835e-05,
            None,
            &[
                "__name__",
                "go_gc_duration_seconds",
                "quantile",
                "1.0",
                "a",
                "b",
            ],
        ),
        smp(
            r#"go_gc_duration_seconds { quantile = "1.0", a = "b" }"#,
            8.3835e-05,
            None,
            &[
                "__name__",
                "go_gc_duration_seconds",
                "quantile",
                "1.0",
                "a",
                "b",
            ],
        ),
        // Unlike OpenMetrics, the text format allows label terms without commas.
        smp(
            r#"go_gc_duration_seconds { quantile = "2.0" a = "b" }"#,
            8.3835e-05,
            None,
            &[
                "__name__",
                "go_gc_duration_seconds",
                "quantile",
                "2.0",
                "a",
                "b",
            ],
        ),
        smp(
            "go_gc_duration_seconds_count",
            99.0,
            None,
            &["__name__", "go_gc_duration_seconds_count"],
        ),
        smp(
            r#"some:aggregate:rate5m{a_b="c"}"#,
            1.0,
            None,
            &["__name__", "some:aggregate:rate5m", "a_b", "c"],
        ),
        help(
            "go_goroutines",
            "Number of goroutines that currently exist.",
        ),
        typ("go_goroutines", Gauge),
        smp(
            "go_goroutines",
            33.0,
            Some(123123),
            &["__name__", "go_goroutines"],
        ),
        typ("some_counter_total", Counter),
        help("some_counter_total", "Help after type."),
        smp(
            "some_counter_total",
            12.0,
            None,
            &["__name__", "some_counter_total"],
        ),
        help("nohelp3", ""),
        smp(
            "_metric_starting_with_underscore",
            1.0,
            None,
            &["__name__", "_metric_starting_with_underscore"],
        ),
        smp(
            r#"testmetric{_label_starting_with_underscore="foo"}"#,
            1.0,
            None,
            &[
                "__name__",
                "testmetric",
                "_label_starting_with_underscore",
                "foo",
            ],
        ),
        smp(
            r#"testmetric{label="\"bar\""}"#,
            1.0,
            None,
            &["__name__", "testmetric", "label", "\"bar\""],
        ),
        // A counter: `le` stays as written.
        smp(
            r#"testmetric{le="10"}"#,
            1.0,
            None,
            &["__name__", "testmetric", "le", "10"],
        ),
        help(
            "type_and_unit_test1",
            "Type specified in metadata overrides.",
        ),
        typ("type_and_unit_test1", Gauge),
        smp(
            r#"type_and_unit_test1{__type__="counter"}"#,
            123.0,
            None,
            &["__name__", "type_and_unit_test1", "__type__", "counter"],
        ),
        help("type_and_unit_test2", "Type specified in label."),
        smp(
            r#"type_and_unit_test2{__type__="counter"}"#,
            123.0,
            None,
            &["__name__", "type_and_unit_test2", "__type__", "counter"],
        ),
        help("metric", "foo\x00bar"),
        smp(
            "null_byte_metric{a=\"abc\x00\"}",
            1.0,
            None,
            &["__name__", "null_byte_metric", "a", "abc\x00"],
        ),
    ];
    check(input.as_bytes(), Format::Text, &exp);
}

/// TestUTF8PromParse.
#[test]
fn utf8_prom_parse() {
    let input = r#"# HELP "go.gc_duration_seconds" A summary of the GC invocation durations.
# 	TYPE "go.gc_duration_seconds" summary
{"go.gc_duration_seconds",quantile="0"} 4.9351e-05
{"go.gc_duration_seconds",quantile="0.25",} 7.424100000000001e-05
{"go.gc_duration_seconds",quantile="0.5",a="b"} 8.3835e-05
{"go.gc_duration_seconds",quantile="0.8", a="b"} 8.3835e-05
{"go.gc_duration_seconds", quantile="0.9", a="b"} 8.3835e-05
{"go.gc_duration_seconds", quantile="1.0", a="b" } 8.3835e-05
{ "go.gc_duration_seconds", quantile="1.0", a="b" } 8.3835e-05
{ "go.gc_duration_seconds", quantile= "1.0", a= "b", } 8.3835e-05
{ "go.gc_duration_seconds", quantile = "1.0", a = "b" } 8.3835e-05
{"go.gc_duration_seconds_count"} 99
{"Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}","strange©™\n'quoted' \"name\""="6"} 10.0"#;
    let g = "go.gc_duration_seconds";
    let exp = [
        help(g, "A summary of the GC invocation durations."),
        typ(g, MetricType::Summary),
        smp(
            r#"{"go.gc_duration_seconds",quantile="0"}"#,
            4.9351e-05,
            None,
            &["__name__", g, "quantile", "0.0"],
        ),
        smp(
            r#"{"go.gc_duration_seconds",quantile="0.25",}"#,
            7.424100000000001e-05,
            None,
            &["__name__", g, "quantile", "0.25"],
        ),
        smp(
            r#"{"go.gc_duration_seconds",quantile="0.5",a="b"}"#,
            8.3835e-05,
            None,
            &["__name__", g, "quantile", "0.5", "a", "b"],
        ),
        smp(
            r#"{"go.gc_duration_seconds",quantile="0.8", a="b"}"#,
            8.3835e-05,
            None,
            &["__name__", g, "quantile", "0.8", "a", "b"],
        ),
        smp(
            r#"{"go.gc_duration_seconds", quantile="0.9", a="b"}"#,
            8.3835e-05,
            None,
            &["__name__", g, "quantile", "0.9", "a", "b"],
        ),
        smp(
            r#"{"go.gc_duration_seconds", quantile="1.0", a="b" }"#,
            8.3835e-05,
            None,
            &["__name__", g, "quantile", "1.0", "a", "b"],
        ),
        smp(
            r#"{ "go.gc_duration_seconds", quantile="1.0", a="b" }"#,
            8.3835e-05,
            None,
            &["__name__", g, "quantile", "1.0", "a", "b"],
        ),
        smp(
            r#"{ "go.gc_duration_seconds", quantile= "1.0", a= "b", }"#,
            8.3835e-05,
            None,
            &["__name__", g, "quantile", "1.0", "a", "b"],
        ),
        smp(
            r#"{ "go.gc_duration_seconds", quantile = "1.0", a = "b" }"#,
            8.3835e-05,
            None,
            &["__name__", g, "quantile", "1.0", "a", "b"],
        ),
        smp(
            r#"{"go.gc_duration_seconds_count"}"#,
            99.0,
            None,
            &["__name__", "go.gc_duration_seconds_count"],
        ),
        smp(
            r#"{"Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}","strange©™\n'quoted' \"name\""="6"}"#,
            10.0,
            None,
            &[
                "__name__",
                "Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}",
                "strange©™\n'quoted' \"name\"",
                "6",
            ],
        ),
    ];
    check(input.as_bytes(), Format::Text, &exp);
}

/// TestPromParseErrors.
#[test]
fn prom_parse_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"a", "expected value after metric"),
        (
            b"a{b='c'} 1\n",
            "expected label value, got \"'\" while parsing: \"a{b='\"",
        ),
        (b"a{b=\n", "expected label value"),
        (
            b"a{\xff=\"foo\"} 1\n",
            "expected label name, got \"\\xff\" while parsing: \"a{\\xff\"",
        ),
        (
            b"a{b=\"\xff\"} 1\n",
            "invalid UTF-8 label value: \"\\\"\\xff\\\"\"",
        ),
        (br#"{"a", "b = "c"}"#, "expected equal"),
        (br#"{"a",b\nc="d"} 1"#, "expected equal"),
        (
            b"a true\n",
            "strconv.ParseFloat: parsing \"true\": invalid syntax while parsing: \"a true\"",
        ),
        (b"something_weird{problem=\"", "expected label value"),
        (b"empty_label_name{=\"\"} 0", "expected label name"),
        (
            b"foo 1_2\n",
            "unsupported character in float while parsing: \"foo 1_2\"",
        ),
        (
            b"foo 0x1p-3\n",
            "unsupported character in float while parsing: \"foo 0x1p-3\"",
        ),
        (
            b"foo 0x1P-3\n",
            "unsupported character in float while parsing: \"foo 0x1P-3\"",
        ),
        (b"foo 0 1_2\n", "expected next entry after timestamp"),
        (br#"{a="ok"} 1"#, "metric name not set"),
        (b"# TYPE #\n#EOF\n", "expected metric name after TYPE"),
        (b"# HELP #\n#EOF\n", "expected metric name after HELP"),
    ];
    for (i, (input, err)) in cases.iter().enumerate() {
        check_error(i, input, Format::Text, err);
    }
}

/// TestPromNullByteHandling.
#[test]
fn prom_null_byte_handling() {
    let cases: &[(&[u8], &str)] = &[
        (b"null_byte_metric{a=\"abc\x00\"} 1", ""),
        (b"a{b=\"\x00ss\"} 1\n", ""),
        (b"a{b=\"\x00\"} 1\n", ""),
        (b"a{b=\"\x00\"} 1\n", ""),
        (b"a{b=\x00\"ssss\"} 1\n", "expected label value"),
        (b"a{b=\"\x00", "expected label value"),
        (b"a{b\x00=\"hiih\"}\t1", "expected equal"),
        (b"a\x00{b=\"ddd\"} 1", "expected value after metric"),
        (b"a 0 1\x00", "expected next entry after timestamp"),
    ];
    for (i, (input, err)) in cases.iter().enumerate() {
        check_error(i, input, Format::Text, err);
    }
}

const OM_INPUT: &str = r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
# UNIT go_gc_duration_seconds seconds
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25"} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
# HELP nohelp1 
# HELP help2 escape \ \n \\ \" \x chars
# UNIT nounit 
go_gc_duration_seconds{quantile="1.0",a="b"} 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b="c"} 1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33 123.123
# TYPE hh histogram
hh_bucket{le="+Inf"} 1
# TYPE gh gaugehistogram
gh_bucket{le="+Inf"} 1
# TYPE hhh histogram
hhh_bucket{le="+Inf"} 1 # {id="histogram-bucket-test"} 4
hhh_count 1 # {id="histogram-count-test"} 4
# TYPE ggh gaugehistogram
ggh_bucket{le="+Inf"} 1 # {id="gaugehistogram-bucket-test",xx="yy"} 4 123.123
ggh_count 1 # {id="gaugehistogram-count-test",xx="yy"} 4 123.123
# TYPE smr_seconds summary
smr_seconds_count 2.0 # {id="summary-count-test"} 1 123.321
smr_seconds_sum 42.0 # {id="summary-sum-test"} 1 123.321
# TYPE ii info
ii{foo="bar"} 1
# TYPE ss stateset
ss{ss="foo"} 1
ss{ss="bar"} 0
ss{A="a"} 0
# TYPE un unknown
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\"bar\""} 1
# HELP foo Counter with and without labels to certify CT is parsed for both cases
# TYPE foo counter
foo_total 17.0 1520879607.789 # {id="counter-test"} 5
foo_created 1520872607.123
foo_total{a="b"} 17.0 1520879607.789 # {id="counter-test"} 5
foo_created{a="b"} 1520872607.123
foo_total{le="c"} 21.0
foo_created{le="c"} 1520872621.123
foo_total{le="1"} 10.0
# HELP bar Summary with CT at the end, making sure we find CT even if it's multiple lines a far
# TYPE bar summary
bar_count 17.0
bar_sum 324789.3
bar{quantile="0.95"} 123.7
bar{quantile="0.99"} 150.0
bar_created 1520872608.124
# HELP baz Histogram with the same objective as above's summary
# TYPE baz histogram
baz_bucket{le="0.0"} 0
baz_bucket{le="+Inf"} 17
baz_count 17
baz_sum 324789.3
baz_created 1520872609.125
# HELP fizz_created Gauge which shouldn't be parsed as CT
# TYPE fizz_created gauge
fizz_created 17.0
# HELP something Histogram with _created between buckets and summary
# TYPE something histogram
something_count 18
something_sum 324789.4
something_created 1520430001
something_bucket{le="0.0"} 1
something_bucket{le="1"} 2
something_bucket{le="+Inf"} 18
# HELP yum Summary with _created between sum and quantiles
# TYPE yum summary
yum_count 20
yum_sum 324789.5
yum_created 1520430003
yum{quantile="0.95"} 123.7
yum{quantile="0.99"} 150.0
# HELP foobar Summary with _created as the first line
# TYPE foobar summary
foobar_count 21
foobar_created 1520430004
foobar_sum 324789.6
foobar{quantile="0.95"} 123.8
foobar{quantile="0.99"} 150.1"#;

/// TestOpenMetricsParse (type-and-unit=false), `_created` lines kept as samples.
#[test]
fn openmetrics_parse() {
    use MetricType::*;
    let input = format!(
        "{OM_INPUT}\n# HELP metric foo\x00bar\nnull_byte_metric{{a=\"abc\x00\"}} 1\n# EOF\n"
    );
    let gc = "go_gc_duration_seconds";
    let exp = [
        help(gc, "A summary of the GC invocation durations."),
        typ(gc, Summary),
        unit(gc, "seconds"),
        smp(
            r#"go_gc_duration_seconds{quantile="0"}"#,
            4.9351e-05,
            None,
            &["__name__", gc, "quantile", "0.0"],
        ),
        smp(
            r#"go_gc_duration_seconds{quantile="0.25"}"#,
            7.424100000000001e-05,
            None,
            &["__name__", gc, "quantile", "0.25"],
        ),
        smp(
            r#"go_gc_duration_seconds{quantile="0.5",a="b"}"#,
            8.3835e-05,
            None,
            &["__name__", gc, "quantile", "0.5", "a", "b"],
        ),
        help("nohelp1", ""),
        help("help2", "escape \\ \n \\ \" \\x chars"),
        unit("nounit", ""),
        smp(
            r#"go_gc_duration_seconds{quantile="1.0",a="b"}"#,
            8.3835e-05,
            None,
            &["__name__", gc, "quantile", "1.0", "a", "b"],
        ),
        smp(
            "go_gc_duration_seconds_count",
            99.0,
            None,
            &["__name__", "go_gc_duration_seconds_count"],
        ),
        smp(
            r#"some:aggregate:rate5m{a_b="c"}"#,
            1.0,
            None,
            &["__name__", "some:aggregate:rate5m", "a_b", "c"],
        ),
        help(
            "go_goroutines",
            "Number of goroutines that currently exist.",
        ),
        typ("go_goroutines", Gauge),
        smp(
            "go_goroutines",
            33.0,
            Some(123123),
            &["__name__", "go_goroutines"],
        ),
        typ("hh", Histogram),
        smp(
            r#"hh_bucket{le="+Inf"}"#,
            1.0,
            None,
            &["__name__", "hh_bucket", "le", "+Inf"],
        ),
        typ("gh", GaugeHistogram),
        smp(
            r#"gh_bucket{le="+Inf"}"#,
            1.0,
            None,
            &["__name__", "gh_bucket", "le", "+Inf"],
        ),
        typ("hhh", Histogram),
        smp(
            r#"hhh_bucket{le="+Inf"}"#,
            1.0,
            None,
            &["__name__", "hhh_bucket", "le", "+Inf"],
        ),
        smp("hhh_count", 1.0, None, &["__name__", "hhh_count"]),
        typ("ggh", GaugeHistogram),
        smp(
            r#"ggh_bucket{le="+Inf"}"#,
            1.0,
            None,
            &["__name__", "ggh_bucket", "le", "+Inf"],
        ),
        smp("ggh_count", 1.0, None, &["__name__", "ggh_count"]),
        typ("smr_seconds", Summary),
        smp(
            "smr_seconds_count",
            2.0,
            None,
            &["__name__", "smr_seconds_count"],
        ),
        smp(
            "smr_seconds_sum",
            42.0,
            None,
            &["__name__", "smr_seconds_sum"],
        ),
        typ("ii", Info),
        smp(
            r#"ii{foo="bar"}"#,
            1.0,
            None,
            &["__name__", "ii", "foo", "bar"],
        ),
        typ("ss", StateSet),
        smp(
            r#"ss{ss="foo"}"#,
            1.0,
            None,
            &["__name__", "ss", "ss", "foo"],
        ),
        smp(
            r#"ss{ss="bar"}"#,
            0.0,
            None,
            &["__name__", "ss", "ss", "bar"],
        ),
        smp(r#"ss{A="a"}"#, 0.0, None, &["A", "a", "__name__", "ss"]),
        typ("un", Unknown),
        smp(
            "_metric_starting_with_underscore",
            1.0,
            None,
            &["__name__", "_metric_starting_with_underscore"],
        ),
        smp(
            r#"testmetric{_label_starting_with_underscore="foo"}"#,
            1.0,
            None,
            &[
                "__name__",
                "testmetric",
                "_label_starting_with_underscore",
                "foo",
            ],
        ),
        smp(
            r#"testmetric{label="\"bar\""}"#,
            1.0,
            None,
            &["__name__", "testmetric", "label", "\"bar\""],
        ),
        help(
            "foo",
            "Counter with and without labels to certify CT is parsed for both cases",
        ),
        typ("foo", Counter),
        smp(
            "foo_total",
            17.0,
            Some(1520879607789),
            &["__name__", "foo_total"],
        ),
        smp(
            "foo_created",
            1520872607.123,
            None,
            &["__name__", "foo_created"],
        ),
        smp(
            r#"foo_total{a="b"}"#,
            17.0,
            Some(1520879607789),
            &["__name__", "foo_total", "a", "b"],
        ),
        smp(
            r#"foo_created{a="b"}"#,
            1520872607.123,
            None,
            &["__name__", "foo_created", "a", "b"],
        ),
        smp(
            r#"foo_total{le="c"}"#,
            21.0,
            None,
            &["__name__", "foo_total", "le", "c"],
        ),
        smp(
            r#"foo_created{le="c"}"#,
            1520872621.123,
            None,
            &["__name__", "foo_created", "le", "c"],
        ),
        smp(
            r#"foo_total{le="1"}"#,
            10.0,
            None,
            &["__name__", "foo_total", "le", "1"],
        ),
        help(
            "bar",
            "Summary with CT at the end, making sure we find CT even if it's multiple lines a far",
        ),
        typ("bar", Summary),
        smp("bar_count", 17.0, None, &["__name__", "bar_count"]),
        smp("bar_sum", 324789.3, None, &["__name__", "bar_sum"]),
        smp(
            r#"bar{quantile="0.95"}"#,
            123.7,
            None,
            &["__name__", "bar", "quantile", "0.95"],
        ),
        smp(
            r#"bar{quantile="0.99"}"#,
            150.0,
            None,
            &["__name__", "bar", "quantile", "0.99"],
        ),
        smp(
            "bar_created",
            1520872608.124,
            None,
            &["__name__", "bar_created"],
        ),
        help(
            "baz",
            "Histogram with the same objective as above's summary",
        ),
        typ("baz", Histogram),
        smp(
            r#"baz_bucket{le="0.0"}"#,
            0.0,
            None,
            &["__name__", "baz_bucket", "le", "0.0"],
        ),
        smp(
            r#"baz_bucket{le="+Inf"}"#,
            17.0,
            None,
            &["__name__", "baz_bucket", "le", "+Inf"],
        ),
        smp("baz_count", 17.0, None, &["__name__", "baz_count"]),
        smp("baz_sum", 324789.3, None, &["__name__", "baz_sum"]),
        smp(
            "baz_created",
            1520872609.125,
            None,
            &["__name__", "baz_created"],
        ),
        help("fizz_created", "Gauge which shouldn't be parsed as CT"),
        typ("fizz_created", Gauge),
        smp("fizz_created", 17.0, None, &["__name__", "fizz_created"]),
        help(
            "something",
            "Histogram with _created between buckets and summary",
        ),
        typ("something", Histogram),
        smp(
            "something_count",
            18.0,
            None,
            &["__name__", "something_count"],
        ),
        smp(
            "something_sum",
            324789.4,
            None,
            &["__name__", "something_sum"],
        ),
        smp(
            "something_created",
            1520430001.0,
            None,
            &["__name__", "something_created"],
        ),
        smp(
            r#"something_bucket{le="0.0"}"#,
            1.0,
            None,
            &["__name__", "something_bucket", "le", "0.0"],
        ),
        smp(
            r#"something_bucket{le="1"}"#,
            2.0,
            None,
            &["__name__", "something_bucket", "le", "1.0"],
        ),
        smp(
            r#"something_bucket{le="+Inf"}"#,
            18.0,
            None,
            &["__name__", "something_bucket", "le", "+Inf"],
        ),
        help("yum", "Summary with _created between sum and quantiles"),
        typ("yum", Summary),
        smp("yum_count", 20.0, None, &["__name__", "yum_count"]),
        smp("yum_sum", 324789.5, None, &["__name__", "yum_sum"]),
        smp(
            "yum_created",
            1520430003.0,
            None,
            &["__name__", "yum_created"],
        ),
        smp(
            r#"yum{quantile="0.95"}"#,
            123.7,
            None,
            &["__name__", "yum", "quantile", "0.95"],
        ),
        smp(
            r#"yum{quantile="0.99"}"#,
            150.0,
            None,
            &["__name__", "yum", "quantile", "0.99"],
        ),
        help("foobar", "Summary with _created as the first line"),
        typ("foobar", Summary),
        smp("foobar_count", 21.0, None, &["__name__", "foobar_count"]),
        smp(
            "foobar_created",
            1520430004.0,
            None,
            &["__name__", "foobar_created"],
        ),
        smp("foobar_sum", 324789.6, None, &["__name__", "foobar_sum"]),
        smp(
            r#"foobar{quantile="0.95"}"#,
            123.8,
            None,
            &["__name__", "foobar", "quantile", "0.95"],
        ),
        smp(
            r#"foobar{quantile="0.99"}"#,
            150.1,
            None,
            &["__name__", "foobar", "quantile", "0.99"],
        ),
        help("metric", "foo\x00bar"),
        smp(
            "null_byte_metric{a=\"abc\x00\"}",
            1.0,
            None,
            &["__name__", "null_byte_metric", "a", "abc\x00"],
        ),
    ];
    check(input.as_bytes(), Format::OpenMetrics, &exp);
}

/// TestOpenMetricsParse_UTF8, `_created` kept as a sample.
#[test]
fn openmetrics_parse_utf8() {
    let input = r#"# HELP "go.gc_duration_seconds" A summary of the GC invocation durations.
# TYPE "go.gc_duration_seconds" summary
# UNIT "go.gc_duration_seconds" seconds
{"go.gc_duration_seconds",quantile="0"} 4.9351e-05
{"go.gc_duration_seconds",quantile="0.25"} 7.424100000000001e-05
{"go.gc_duration_seconds_created"} 1520872607.123
{"go.gc_duration_seconds",quantile="0.5",a="b"} 8.3835e-05
{"http.status",q="0.9",a="b"} 8.3835e-05
{"http.status",q="0.9",a="b"} 8.3835e-05
{q="0.9","http.status",a="b"} 8.3835e-05
{"go.gc_duration_seconds_sum"} 0.004304266
{"Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}","strange©™\n'quoted' \"name\""="6"} 10.0
quotedexemplar_count 1 # {"id.thing"="histogram-count-test"} 4
quotedexemplar2_count 1 # {"id.thing"="histogram-count-test",other="hello"} 4
# EOF
"#;
    let g = "go.gc_duration_seconds";
    let exp = [
        help(g, "A summary of the GC invocation durations."),
        typ(g, MetricType::Summary),
        unit(g, "seconds"),
        smp(
            r#"{"go.gc_duration_seconds",quantile="0"}"#,
            4.9351e-05,
            None,
            &["__name__", g, "quantile", "0.0"],
        ),
        smp(
            r#"{"go.gc_duration_seconds",quantile="0.25"}"#,
            7.424100000000001e-05,
            None,
            &["__name__", g, "quantile", "0.25"],
        ),
        smp(
            r#"{"go.gc_duration_seconds_created"}"#,
            1520872607.123,
            None,
            &["__name__", "go.gc_duration_seconds_created"],
        ),
        smp(
            r#"{"go.gc_duration_seconds",quantile="0.5",a="b"}"#,
            8.3835e-05,
            None,
            &["__name__", g, "quantile", "0.5", "a", "b"],
        ),
        smp(
            r#"{"http.status",q="0.9",a="b"}"#,
            8.3835e-05,
            None,
            &["__name__", "http.status", "q", "0.9", "a", "b"],
        ),
        smp(
            r#"{"http.status",q="0.9",a="b"}"#,
            8.3835e-05,
            None,
            &["__name__", "http.status", "q", "0.9", "a", "b"],
        ),
        smp(
            r#"{q="0.9","http.status",a="b"}"#,
            8.3835e-05,
            None,
            &["__name__", "http.status", "q", "0.9", "a", "b"],
        ),
        smp(
            r#"{"go.gc_duration_seconds_sum"}"#,
            0.004304266,
            None,
            &["__name__", "go.gc_duration_seconds_sum"],
        ),
        smp(
            r#"{"Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}","strange©™\n'quoted' \"name\""="6"}"#,
            10.0,
            None,
            &[
                "__name__",
                "Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}",
                "strange©™\n'quoted' \"name\"",
                "6",
            ],
        ),
        smp(
            "quotedexemplar_count",
            1.0,
            None,
            &["__name__", "quotedexemplar_count"],
        ),
        smp(
            "quotedexemplar2_count",
            1.0,
            None,
            &["__name__", "quotedexemplar2_count"],
        ),
    ];
    check(input.as_bytes(), Format::OpenMetrics, &exp);
}

/// TestOpenMetricsParseErrors (the first two are the happy cases).
#[test]
fn openmetrics_parse_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"# EOF", ""),
        (b"# EOF\n", ""),
        (b"", "data does not end with # EOF"),
        (
            b"\n",
            "expected a valid start token, got \"\\n\" while parsing: \"\\n\"",
        ),
        (b"metric", "expected value after metric"),
        (b"metric 1", "data does not end with # EOF"),
        (b"metric 1\n", "data does not end with # EOF"),
        (
            b"metric_total 1 # {aa=\"bb\"} 4",
            "data does not end with # EOF",
        ),
        (b"a\n#EOF\n", "expected value after metric"),
        (b"\n\n#EOF\n", "expected a valid start token"),
        (b" a 1\n#EOF\n", "expected a valid start token"),
        (b"9\n#EOF\n", "expected a valid start token"),
        (
            b"# TYPE u untyped\n#EOF\n",
            "invalid metric type \"untyped\"",
        ),
        (
            b"# TYPE c counter \n#EOF\n",
            "invalid metric type \"counter \"",
        ),
        (b"#  TYPE c counter\n#EOF\n", "expected a valid start token"),
        (b"# TYPE \n#EOF\n", "expected metric name after TYPE"),
        (b"# TYPE m\n#EOF\n", "expected text in TYPE"),
        (
            b"# UNIT metric suffix\n#EOF\n",
            "unit \"suffix\" not a suffix of metric \"metric\"",
        ),
        (
            b"# UNIT metricsuffix suffix\n#EOF\n",
            "unit \"suffix\" not a suffix of metric \"metricsuffix\"",
        ),
        (
            b"# UNIT m suffix\n#EOF\n",
            "unit \"suffix\" not a suffix of metric \"m\"",
        ),
        (b"# UNIT \n#EOF\n", "expected metric name after UNIT"),
        (b"# UNIT m\n#EOF\n", "expected text in UNIT"),
        (b"# HELP \n#EOF\n", "expected metric name after HELP"),
        (b"# HELP m\n#EOF\n", "expected text in HELP"),
        (b"a\t1\n#EOF\n", "expected value after metric"),
        (
            b"a 1\t2\n#EOF\n",
            "strconv.ParseFloat: parsing \"1\\t2\": invalid syntax while parsing: \"a 1\\t2\"",
        ),
        (b"a 1 2 \n#EOF\n", "expected next entry after timestamp"),
        (b"a 1 2 #\n#EOF\n", "expected next entry after timestamp"),
        (
            b"a 1 1z\n#EOF\n",
            "strconv.ParseFloat: parsing \"1z\": invalid syntax while parsing: \"a 1 1z\"",
        ),
        (b" # EOF\n", "expected a valid start token"),
        (b"# EOF\na 1", "unexpected data after # EOF"),
        (b"# EOF\n\n", "unexpected data after # EOF"),
        (b"# EOFa 1", "unexpected data after # EOF"),
        (b"#\tTYPE c counter\n", "expected a valid start token"),
        (b"# TYPE c  counter\n", "invalid metric type \" counter\""),
        (b"a 1 1 1\n# EOF\n", "expected next entry after timestamp"),
        (
            b"a{b='c'} 1\n# EOF\n",
            "expected label value, got \"'\" while parsing: \"a{b='\"",
        ),
        (b"a{,b=\"c\"} 1\n# EOF\n", "expected label name"),
        (
            b"a{b=\"c\"d=\"e\"} 1\n# EOF\n",
            "expected comma or brace close",
        ),
        (b"a{b=\"c\",,d=\"e\"} 1\n# EOF\n", "expected label name"),
        (b"a{b=\n# EOF\n", "expected label value"),
        (b"a{\xff=\"foo\"} 1\n# EOF\n", "expected label name"),
        (
            b"a{b=\"\xff\"} 1\n# EOF\n",
            "invalid UTF-8 label value: \"\\\"\\xff\\\"\"",
        ),
        (b"{\"a\",\"b = \"c\"}\n# EOF\n", "expected equal"),
        (b"{\"a\",b\\nc=\"d\"} 1\n# EOF\n", "expected equal"),
        (
            b"a true\n",
            "strconv.ParseFloat: parsing \"true\": invalid syntax while parsing: \"a true\"",
        ),
        (
            b"something_weird{problem=\"\n# EOF\n",
            "expected label value",
        ),
        (b"empty_label_name{=\"\"} 0\n# EOF\n", "expected label name"),
        (
            b"foo 1_2\n\n# EOF\n",
            "unsupported character in float while parsing: \"foo 1_2\"",
        ),
        (
            b"foo 0x1p-3\n\n# EOF\n",
            "unsupported character in float while parsing: \"foo 0x1p-3\"",
        ),
        (
            b"foo 0x1P-3\n\n# EOF\n",
            "unsupported character in float while parsing: \"foo 0x1P-3\"",
        ),
        (
            b"foo 0 1_2\n\n# EOF\n",
            "unsupported character in float while parsing: \"foo 0 1_2\"",
        ),
        (
            b"custom_metric_total 1 # {aa=bb}\n# EOF\n",
            "expected label value",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"}\n# EOF\n",
            "expected value after exemplar labels",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"}",
            "expected value after exemplar labels",
        ),
        (b"custom_metric_total 1 # {bb}", "expected label name"),
        (
            b"custom_metric_total 1 # {bb, a=\"dd\"}",
            "expected label name",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\",,cc=\"dd\"} 1",
            "expected label name",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"} 1_2",
            "unsupported character in float",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"} 0x1p-3",
            "unsupported character in float",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\"} true",
            "strconv.ParseFloat: parsing \"true\": invalid syntax",
        ),
        (
            b"custom_metric_total 1 # {aa=\"bb\",cc=}",
            "expected label value",
        ),
        (
            b"custom_metric_total 1 # {aa=\\\"\xff\\\"} 9.0",
            "expected label value",
        ),
        (b"{b=\"c\",} 1", "metric name not set"),
        (b"a 1 NaN", "invalid timestamp NaN"),
        (b"a 1 -Inf", "invalid timestamp -Inf"),
        (b"a 1 Inf", "invalid timestamp +Inf"),
        (
            b"# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 NaN",
            "invalid exemplar timestamp NaN",
        ),
        (
            b"# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 -Inf",
            "invalid exemplar timestamp -Inf",
        ),
    ];
    for (i, (input, err)) in cases.iter().enumerate() {
        check_error(i, input, Format::OpenMetrics, err);
    }
}

/// TestOMNullByteHandling.
#[test]
fn openmetrics_null_byte_handling() {
    let cases: &[(&[u8], &str)] = &[
        (b"null_byte_metric{a=\"abc\x00\"} 1\n# EOF\n", ""),
        (b"a{b=\"\x00ss\"} 1\n# EOF\n", ""),
        (b"a{b=\"\x00\"} 1\n# EOF\n", ""),
        (b"a{b=\"\x00\"} 1\n# EOF", ""),
        (b"a{b=\x00\"ssss\"} 1\n# EOF\n", "expected label value"),
        (b"a{b=\"\x00", "expected label value"),
        (b"a{b\x00=\"hiih\"}\t1", "expected equal"),
        (b"a\x00{b=\"ddd\"} 1", "expected value after metric"),
        (b"#", "expected a valid start token"),
        (b"# H", "expected a valid start token"),
        (
            b"custom_metric_total 1 # {b=\x00\"ssss\"} 1\n",
            "expected label value",
        ),
        (
            b"custom_metric_total 1 # {b=\"\x00ss\"} 1\n",
            "expected label value",
        ),
    ];
    for (i, (input, err)) in cases.iter().enumerate() {
        check_error(i, input, Format::OpenMetrics, err);
    }
}

// ---------------------------------------------------------------------------------------
// promshard's own cases.

#[test]
fn accept_header_is_prometheus_3_default() {
    assert_eq!(
        ACCEPT_HEADER,
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
         application/openmetrics-text;version=0.0.1;q=0.5,\
         text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
         text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    );
}

#[test]
fn content_type_to_format() {
    let cases = [
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::OpenMetrics,
        ),
        (
            "application/openmetrics-text;version=0.0.1",
            Format::OpenMetrics,
        ),
        ("Application/OpenMetrics-Text", Format::OpenMetrics),
        ("text/plain; version=0.0.4; charset=utf-8", Format::Text),
        (
            "text/plain;version=1.0.0;escaping=allow-utf-8",
            Format::Text,
        ),
        ("", Format::Text),
        ("text/html", Format::Text),
        ("invalid/", Format::Text),
    ];
    for (ct, f) in cases {
        assert_eq!(format_from_content_type(ct), f, "{ct:?}");
    }
}

#[test]
fn negotiate_format_follows_prometheus_3() {
    use ContentTypeError::*;
    let om = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    assert_eq!(negotiate_format(Some(om), None), Ok(Format::OpenMetrics));
    assert_eq!(
        negotiate_format(Some("text/plain; version=0.0.4"), None),
        Ok(Format::Text)
    );
    assert_eq!(negotiate_format(None, None), Err(Blank));
    assert_eq!(negotiate_format(Some(""), None), Err(Blank));
    assert_eq!(negotiate_format(None, Some(Format::Text)), Ok(Format::Text));
    assert_eq!(
        negotiate_format(Some("invalid/"), None),
        Err(Unparsable("invalid/".into()))
    );
    assert_eq!(
        negotiate_format(Some("invalid/"), Some(Format::OpenMetrics)),
        Ok(Format::OpenMetrics)
    );
    assert_eq!(
        negotiate_format(Some("text/html"), None),
        Err(Unsupported("text/html".into()))
    );
    let proto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
    assert_eq!(
        negotiate_format(Some(proto), Some(Format::Text)),
        Ok(Format::Protobuf)
    );
    // Only the media type counts (`textparse.extractMediaType`).
    assert_eq!(
        negotiate_format(Some("application/vnd.google.protobuf"), None),
        Ok(Format::Protobuf)
    );
    assert_eq!(
        Blank.to_string(),
        "non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target"
    );
}

#[test]
fn openmetrics_float_formatting_matches_go() {
    // Outputs of Go's labels.FormatOpenMetricsFloat.
    let cases = [
        (1.0, "1.0"),
        (0.0, "0.0"),
        (-0.0, "0.0"),
        (-1.0, "-1.0"),
        (2.0, "2.0"),
        (-2.0, "-2.0"),
        (10.0, "10.0"),
        (0.5, "0.5"),
        (0.1, "0.1"),
        (0.005, "0.005"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (2.5e-7, "2.5e-07"),
        (100000.0, "100000.0"),
        (123456.7, "123456.7"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (1e21, "1e+21"),
        (1e100, "1e+100"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
    ];
    for (f, want) in cases {
        let mut buf = float::FloatBuf::new();
        float::format_openmetrics_float(f, &mut buf);
        assert_eq!(buf.as_str(), want, "{f:e}");
    }
}

#[test]
fn go_parse_float_grammar() {
    use float::FloatError::*;
    let ok = [
        ("1", 1.0),
        ("+1.5", 1.5),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E-2", 0.01),
        ("1_000", 1000.0),
        ("1_2.5_0e1_0", 12.5e10),
        ("0x1p-3", 0.125),
        ("0x1.8p1", 3.0),
        ("0X_1p4", 16.0),
        ("Inf", f64::INFINITY),
        ("+inf", f64::INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
        ("1e-400", 0.0),
        // From Go's atof_test.go.
        ("1_23.50_0_0e+1_2", 1.235e+14),
        ("0x_1_2.3_4_5p+1_2", 74565.0),
        ("0x1.00000000000018p0", 1.0000000000000004),
        ("1090544144181609348671888949248", 1.0905441441816093e+30),
        ("1090544144181609348835077142190", 1.0905441441816094e+30),
    ];
    for (s, want) in ok {
        assert_eq!(float::parse_go_float(s.as_bytes()), Ok(want), "{s}");
    }
    assert!(float::parse_go_float(b"NaN").is_ok_and(f64::is_nan));
    assert!(float::parse_go_float(b"nan").is_ok_and(f64::is_nan));
    let bad = [
        ("", Syntax),
        (".", Syntax),
        ("+nan", Syntax),
        ("infin", Syntax),
        ("1e", Syntax),
        ("1e+", Syntax),
        ("_1", Syntax),
        ("1_", Syntax),
        ("1__2", Syntax),
        ("0x10", Syntax),
        ("0x", Syntax),
        ("1.2.3", Syntax),
        ("true", Syntax),
        (" 1", Syntax),
        ("-_123.5e+12", Syntax),
        ("123_.5e+12", Syntax),
        ("123._5e+12", Syntax),
        ("123.5_e+12", Syntax),
        ("123.5__0e+12", Syntax),
        ("123.5e_+12", Syntax),
        ("123.5e+_12", Syntax),
        ("123.5e+1__2", Syntax),
        ("123.5e+12_", Syntax),
        ("-_0x12.345p+12", Syntax),
        ("1e400", Range),
        ("-1e400", Range),
        ("0x1p2000", Range),
    ];
    for (s, want) in bad {
        assert_eq!(float::parse_go_float(s.as_bytes()), Err(want), "{s}");
    }
    // Sample values additionally refuse p, P and _ (Prometheus's parseFloat).
    assert_eq!(float::parse_value(b"1_000"), Err(Unsupported));
    assert_eq!(float::parse_value(b"5.74788e+08"), Ok(5.74788e+08));
    assert_eq!(
        float::parse_value(b"7.424100000000001e-05"),
        Ok(7.424100000000001e-05)
    );
    assert_eq!(
        float::parse_value(b"123456789012345678901234567890"),
        Ok(1.2345678901234568e29)
    );
    assert_eq!(
        float::parse_value(b"-0").map(f64::to_bits),
        Ok((-0.0f64).to_bits())
    );
}

/// Sample labels of the single sample in `input` (text format).
fn labels_of(input: &str) -> Vec<(String, String)> {
    let got = collect(input.as_bytes(), Format::Text).unwrap_or_else(|e| panic!("{e}"));
    match got.last() {
        Some(Got::Series { lset, .. }) => lset.clone(),
        other => panic!("no sample: {other:?}"),
    }
}

#[test]
fn le_and_quantile_normalization() {
    let le = |ty: &str, v: &str| {
        let input = format!("# TYPE h {ty}\nh_bucket{{le=\"{v}\"}} 1\n");
        let l = labels_of(&input);
        l.into_iter()
            .find(|(n, _)| n == "le")
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    assert_eq!(le("histogram", "1"), "1.0");
    assert_eq!(le("histogram", "0.5"), "0.5");
    assert_eq!(le("histogram", "+Inf"), "+Inf");
    assert_eq!(le("histogram", "inf"), "+Inf");
    assert_eq!(le("histogram", "1e3"), "1000.0");
    assert_eq!(le("histogram", "2.5e6"), "2.5e+06");
    assert_eq!(le("histogram", "1_0"), "10.0");
    assert_eq!(le("histogram", "0x1p-3"), "0.125");
    assert_eq!(le("histogram", "abc"), "abc");
    assert_eq!(le("histogram", " 1"), " 1");
    // Prometheus only normalizes classic histograms and summaries.
    assert_eq!(le("untyped", "1"), "1");
    assert_eq!(le("counter", "1"), "1");
    let q = labels_of("# TYPE s summary\ns{quantile=\"1\"} 1\n");
    assert!(q.contains(&("quantile".into(), "1.0".into())), "{q:?}");
    let q = labels_of("# TYPE s histogram\ns{quantile=\"1\"} 1\n");
    assert!(q.contains(&("quantile".into(), "1".into())), "{q:?}");
    // The type of the last TYPE line applies, whichever family the series belongs to.
    let l = labels_of("# TYPE h histogram\nother{le=\"5\"} 1\n");
    assert!(l.contains(&("le".into(), "5.0".into())), "{l:?}");
    // OpenMetrics gaugehistogram: left alone.
    let got = collect(
        b"# TYPE g gaugehistogram\ng_bucket{le=\"1\"} 1\n# EOF\n",
        Format::OpenMetrics,
    );
    assert_eq!(
        got.ok().and_then(|g| g.last().cloned()),
        Some(smp(
            r#"g_bucket{le="1"}"#,
            1.0,
            None,
            &["__name__", "g_bucket", "le", "1"]
        ))
    );
}

#[test]
fn sample_without_escapes_borrows_everything() {
    let input = b"# TYPE c counter\nc_total{a=\"x\",b=\"y\"} 3 17\n";
    let mut p = Parser::new(input, Format::Text);
    assert!(matches!(p.next_entry(), Ok(Some(Entry::Type { .. }))));
    let Ok(Some(Entry::Sample(s))) = p.next_entry() else {
        panic!("no sample")
    };
    assert_eq!(s.series, b"c_total{a=\"x\",b=\"y\"}");
    assert!(matches!(s.name, Cow::Borrowed("c_total")));
    assert_eq!(
        (s.value, s.timestamp_ms, s.metric_type),
        (3.0, Some(17), MetricType::Counter)
    );
    let mut buf = Vec::new();
    assert_eq!(s.labels_into(&mut buf), Ok(()));
    assert!(
        buf.iter()
            .all(|(n, v)| matches!(n, Cow::Borrowed(_)) && matches!(v, Cow::Borrowed(_)))
    );
    assert_eq!(
        buf,
        vec![
            (Cow::Borrowed("a"), Cow::Borrowed("x")),
            (Cow::Borrowed("b"), Cow::Borrowed("y"))
        ]
    );
    assert_eq!(p.next_entry(), Ok(None));
    assert_eq!(p.next_entry(), Ok(None));
}

#[test]
fn label_escapes_and_multiline_values() {
    let input = "a{b=\"x\\\\y\\\"z\\nw\\q\",c=\"line\nbreak\"} 1\nsecond 2\nbad{\n";
    let mut p = Parser::new(input.as_bytes(), Format::Text);
    let Ok(Some(Entry::Sample(s))) = p.next_entry() else {
        panic!("no sample")
    };
    let mut buf = Vec::new();
    assert_eq!(s.labels_into(&mut buf), Ok(()));
    assert_eq!(
        buf[0],
        (Cow::Borrowed("b"), Cow::Owned("x\\y\"z\nw\\q".to_string()))
    );
    assert_eq!(buf[1], (Cow::Borrowed("c"), Cow::Borrowed("line\nbreak")));
    assert!(matches!(p.next_entry(), Ok(Some(Entry::Sample(s))) if s.name == "second"));
    let err = p
        .next_entry()
        .err()
        .map(|e| (e.line(), e.message().to_string()));
    assert_eq!(err.as_ref().map(|e| e.0), Some(4), "{err:?}");
    // The text format's HELP does not unescape `\"`; OpenMetrics' does.
    let got = collect(b"# HELP m a\\\"b\\\\c\\nd\n", Format::Text);
    assert_eq!(got, Ok(vec![help("m", "a\\\"b\\c\nd")]));
    let got = collect(b"# HELP m a\\\"b\\\\c\\nd\n# EOF\n", Format::OpenMetrics);
    assert_eq!(got, Ok(vec![help("m", "a\"b\\c\nd")]));
}

#[test]
fn errors_report_the_line() {
    let input = b"# HELP a x\na 1\nb{c=\"d\"} 2\n\nc{d='e'} 3\n";
    let err = collect(input, Format::Text).err();
    assert_eq!(err.as_ref().map(ParseError::line), Some(5), "{err:?}");
    let shown = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(shown.starts_with("line 5: expected label value"), "{shown}");
    let err = collect(b"a 1\nb 2\n", Format::OpenMetrics).err();
    assert_eq!(
        err.map(|e| (e.line(), e.message().to_string())),
        Some((3, "data does not end with # EOF".into()))
    );
}

#[test]
fn duplicate_label_names_fail() {
    for input in [
        "a{b=\"1\",b=\"2\"} 1\n",
        "a{b=\"1\",\"b\"=\"2\"} 1\n",
        "a{__name__=\"x\"} 1\n",
    ] {
        let err = collect(input.as_bytes(), Format::Text).err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.message().contains("is not unique")),
            "{input}: {err:?}"
        );
    }
    let many: String = (0..40).map(|i| format!("l{i}=\"v\",")).collect();
    let input = format!("a{{{many}l7=\"again\"}} 1\n");
    let err = collect(input.as_bytes(), Format::Text).err();
    assert!(err.is_some_and(|e| e.message().contains("\"l7\" is not unique")));
}

#[test]
fn text_format_quirks_kept_from_prometheus() {
    use MetricType::*;
    // Blanks before the name are part of it (promparse.go takes the name from the line start).
    assert_eq!(
        collect(b" a 1\n", Format::Text),
        Ok(vec![smp(" a", 1.0, None, &["__name__", " a"])])
    );
    // No blank needed between `}` and the value.
    assert_eq!(
        collect(b"a{b=\"c\"}1\n", Format::Text),
        Ok(vec![smp(
            "a{b=\"c\"}",
            1.0,
            None,
            &["__name__", "a", "b", "c"]
        )])
    );
    // Go float syntax: Inf, Infinity and NaN in any case, the NaN canonical.
    let got = collect(b"a +Inf\nb -inf\nc Infinity\nd nan\n", Format::Text);
    let values: Vec<u64> = got
        .unwrap_or_default()
        .iter()
        .filter_map(|g| match g {
            Got::Series { value, .. } => Some(value.0.to_bits()),
            _ => None,
        })
        .collect();
    assert_eq!(
        values,
        vec![
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            f64::INFINITY.to_bits(),
            float::NORMAL_NAN
        ]
    );
    // A NUL where a line may start ends the input; one later on a comment line too.
    assert_eq!(
        collect(b"a 1\n\x00b 2\n", Format::Text),
        Ok(vec![smp("a", 1.0, None, &["__name__", "a"])])
    );
    assert_eq!(collect(b"#x\x00\nb 2\n", Format::Text), Ok(vec![]));
    assert_eq!(
        collect(b"# x\x00\nb 2\n", Format::Text),
        Ok(vec![smp("b", 2.0, None, &["__name__", "b"])])
    );
    // Trailing blanks are fine, a trailing blank in TYPE is not.
    assert_eq!(
        collect(b"a 1 \t\n", Format::Text),
        Ok(vec![smp("a", 1.0, None, &["__name__", "a"])])
    );
    assert!(collect(b"# TYPE a counter \n", Format::Text).is_err());
    // `<sMeta2>{C}*` keeps all but the first blank: a second blank ends up in the text.
    assert!(collect(b"# TYPE a  counter\n", Format::Text).is_err());
    assert_eq!(
        collect(b"# TYPE a\tcounter\n", Format::Text),
        Ok(vec![typ("a", Counter)])
    );
    assert_eq!(
        collect(b"# HELP a  two\n", Format::Text),
        Ok(vec![help("a", " two")])
    );
    // CRLF line ends are refused, as by Prometheus.
    assert!(collect(b"a 1\r\n", Format::Text).is_err());
    assert!(collect(b"# TYPE a counter\r\n", Format::Text).is_err());
    // Timestamps: integers only, no sign, no overflow.
    assert!(collect(b"a 1 -5\n", Format::Text).is_err());
    assert!(collect(b"a 1 1.5\n", Format::Text).is_err());
    assert!(collect(b"a 1 99999999999999999999\n", Format::Text).is_err());
    assert_eq!(
        collect(b"a 1 9223372036854775807\n", Format::Text),
        Ok(vec![smp("a", 1.0, Some(i64::MAX), &["__name__", "a"])])
    );
    // Overflowing values are refused like Go's ParseFloat refuses them.
    assert!(collect(b"a 1e400\n", Format::Text).is_err());
    // Quoted metric names: once, and only inside braces.
    assert!(collect(b"a{\"b\"} 1\n", Format::Text).is_err());
    assert!(collect(b"{\"a\",\"b\"} 1\n", Format::Text).is_err());
    assert_eq!(
        collect(b"{\"a\"} 1\n", Format::Text),
        Ok(vec![smp("{\"a\"}", 1.0, None, &["__name__", "a"])])
    );
    // Empty braces.
    assert_eq!(
        collect(b"a{} 1\n", Format::Text),
        Ok(vec![smp("a{}", 1.0, None, &["__name__", "a"])])
    );
    // Invalid UTF-8 in a quoted name.
    assert!(collect(b"{\"a\xff\"} 1\n", Format::Text).is_err());
    assert!(collect(b"a{\"b\xff\"=\"c\"} 1\n", Format::Text).is_err());
    // HELP text must be UTF-8.
    assert!(collect(b"# HELP a b\xff\n", Format::Text).is_err());
}

#[test]
fn openmetrics_specifics() {
    // Timestamps: float seconds, truncated to milliseconds like Go's int64(ts * 1000).
    let got = collect(
        b"a 1 -1.5\nb 1 0.0019\nc 1 1520879607.789\n# EOF\n",
        Format::OpenMetrics,
    );
    let ts: Vec<Option<i64>> = got
        .unwrap_or_default()
        .iter()
        .filter_map(|g| match g {
            Got::Series { ts, .. } => Some(*ts),
            _ => None,
        })
        .collect();
    assert_eq!(ts, vec![Some(-1500), Some(1), Some(1520879607789)]);
    // Exemplar with a timestamp after the sample timestamp.
    let input = b"# TYPE c counter\nc_total 1 2 # {trace_id=\"abc\"} 0.5 3\n# EOF\n";
    assert_eq!(
        collect(input, Format::OpenMetrics),
        Ok(vec![
            typ("c", MetricType::Counter),
            smp("c_total", 1.0, Some(2000), &["__name__", "c_total"])
        ])
    );
    // Blank lines, plain comments, blanks in braces are all errors.
    for bad in [
        &b"a 1\n\n# EOF\n"[..],
        b"# x\n# EOF\n",
        b"a{ b=\"c\"} 1\n# EOF\n",
        b"a  1\n# EOF\n",
    ] {
        assert!(
            collect(bad, Format::OpenMetrics).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // Only a quoted string can be the metric name inside braces.
    assert!(collect(b"{bb,a=\"dd\"} 1\n# EOF\n", Format::OpenMetrics).is_err());
    // _created series: ordinary samples, flagged for counters, summaries and histograms.
    let input = b"# TYPE a counter\na_total 1\na_created 2\n# TYPE g gauge\ng_created 3\n# EOF\n";
    let flags: Vec<bool> = Parser::new(input, Format::OpenMetrics)
        .filter_map(|e| match e {
            Ok(Entry::Sample(s)) => Some(s.is_created_series()),
            _ => None,
        })
        .collect();
    assert_eq!(flags, vec![false, true, false]);
}

#[test]
fn iterator_stops_after_an_error() {
    let results: Vec<bool> = Parser::new(b"a 1\nb{\nc 3\n", Format::Text)
        .map(|r| r.is_ok())
        .collect();
    assert_eq!(results, vec![true, false]);
}

// ---------------------------------------------------------------------------------------
// Real expositions.

pub(crate) use crate::testdata::testdata;

/// Samples counted without the parser: lines that are neither blank nor comments.
fn count_sample_lines(b: &[u8]) -> usize {
    b.split(|&c| c == b'\n')
        .filter(|l| !l.trim_ascii().is_empty() && !l.starts_with(b"#"))
        .count()
}

struct Fixture {
    samples: usize,
    types: usize,
    helps: usize,
}

fn parse_fixture(name: &str, spot: &[(&str, f64, Option<i64>, &[&str])]) -> Fixture {
    let body = testdata(name);
    let mut f = Fixture {
        samples: 0,
        types: 0,
        helps: 0,
    };
    let mut found = vec![false; spot.len()];
    let mut buf = Vec::new();
    for e in Parser::new(&body, Format::Text) {
        match e.unwrap_or_else(|e| panic!("{name}: {e}")) {
            Entry::Help { .. } => f.helps += 1,
            Entry::Type { .. } => f.types += 1,
            Entry::Unit { .. } | Entry::Histogram { .. } => {}
            Entry::Sample(s) => {
                f.samples += 1;
                s.labels_into(&mut buf)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                for (i, (series, v, ts, lset)) in spot.iter().enumerate() {
                    if s.series == series.as_bytes() {
                        let mut got: Vec<(String, String)> = buf
                            .iter()
                            .map(|(n, v)| (n.to_string(), v.to_string()))
                            .collect();
                        got.push(("__name__".into(), s.name.to_string()));
                        got.sort();
                        assert_eq!(
                            Got::Series {
                                series: series.to_string(),
                                value: Value(s.value),
                                ts: s.timestamp_ms,
                                lset: got
                            },
                            smp(series, *v, *ts, lset)
                        );
                        found[i] = true;
                    }
                }
            }
        }
    }
    assert_eq!(f.samples, count_sample_lines(&body), "{name}: sample count");
    assert!(
        found.iter().all(|&x| x),
        "{name}: spot checks not all found: {found:?}"
    );
    f
}

#[test]
fn fixture_node_exporter() {
    let f = parse_fixture(
        "node_exporter.prom",
        &[
            (
                r#"go_gc_duration_seconds{quantile="1"}"#,
                0.0,
                None,
                &["__name__", "go_gc_duration_seconds", "quantile", "1.0"],
            ),
            (
                r##"node_uname_info{domainname="(none)",machine="x86_64",nodename="vm",release="6.18.44-fc-v769",sysname="Linux",version="#1 SMP PREEMPT_DYNAMIC @0"}"##,
                1.0,
                None,
                &[
                    "__name__",
                    "node_uname_info",
                    "domainname",
                    "(none)",
                    "machine",
                    "x86_64",
                    "nodename",
                    "vm",
                    "release",
                    "6.18.44-fc-v769",
                    "sysname",
                    "Linux",
                    "version",
                    "#1 SMP PREEMPT_DYNAMIC @0",
                ],
            ),
        ],
    );
    assert_eq!((f.samples, f.types, f.helps), (507, 283, 283));
}

#[test]
fn fixture_prometheus() {
    let f = parse_fixture(
        "prometheus.prom",
        &[(
            r#"go_gc_duration_seconds{quantile="0.75"}"#,
            0.000273178,
            None,
            &["__name__", "go_gc_duration_seconds", "quantile", "0.75"],
        )],
    );
    assert_eq!((f.samples, f.types, f.helps), (344, 168, 168));
}

#[test]
fn fixture_cadvisor() {
    let f = parse_fixture(
        "cadvisor_110pods.prom",
        &[(
            r#"container_cpu_usage_seconds_total{container="app",id="/kubepods/burstable/pod00000000-1a2b-4c3d-8e9f-000000000000/e1f0e209a94d595a",image="registry.example.com/kube-system/app:v1.0.0",name="k8s_app_app-0000-3e78e-2b5c893_kube-system_00000000_0",namespace="kube-system",pod="app-0000-3e78e-2b5c893",cpu="total"}"#,
            5.74788e+08,
            Some(1732000000000),
            &[
                "__name__",
                "container_cpu_usage_seconds_total",
                "container",
                "app",
                "id",
                "/kubepods/burstable/pod00000000-1a2b-4c3d-8e9f-000000000000/e1f0e209a94d595a",
                "image",
                "registry.example.com/kube-system/app:v1.0.0",
                "name",
                "k8s_app_app-0000-3e78e-2b5c893_kube-system_00000000_0",
                "namespace",
                "kube-system",
                "pod",
                "app-0000-3e78e-2b5c893",
                "cpu",
                "total",
            ],
        )],
    );
    assert_eq!((f.samples, f.types, f.helps), (8250, 22, 22));
}

#[test]
fn integer_timestamps() {
    for ts in [
        "0",
        "7",
        "12345678",
        "123456789",
        "1732000000000",
        "999999999999999999",
        "9223372036854775807",
    ] {
        let input = format!("a 1 {ts}\n");
        let want: i64 = ts.parse().unwrap_or_default();
        assert_eq!(
            collect(input.as_bytes(), Format::Text),
            Ok(vec![smp("a", 1.0, Some(want), &["__name__", "a"])])
        );
    }
    assert!(collect(b"a 1 9223372036854775808\n", Format::Text).is_err());
}

/// Every way [`Parser::next_known`] is offered series text it has seen (byte equality as
/// `same`), at every step of `body`: each `Some` must be exactly what `next_entry` returns
/// there, leave the parser where `next_entry` leaves it, and change nothing when `None`.
/// Returns how many offers were taken.
fn check_known_against_next_entry(body: &[u8], format: Format, known: &[&[u8]]) -> usize {
    let mut p = Parser::new(body, format);
    let mut taken = 0;
    loop {
        for text in known {
            let newlines = text.iter().filter(|&&c| c == b'\n').count();
            for mtype in [p.mtype, MetricType::Counter] {
                let mut fast = p.clone();
                let got = fast.next_known(text.len(), newlines, mtype, |t| t == *text);
                let Some(k) = got else {
                    assert_eq!(
                        (fast.pos, fast.line, fast.done),
                        (p.pos, p.line, p.done),
                        "a refused offer moved the parser"
                    );
                    continue;
                };
                taken += 1;
                let mut slow = p.clone();
                let Ok(Some(Entry::Sample(s))) = slow.next_entry() else {
                    panic!(
                        "next_known took {:?} where next_entry has no sample",
                        k.series
                    );
                };
                assert_eq!(k.series, s.series);
                assert_eq!(k.value.to_bits(), s.value.to_bits());
                assert_eq!(
                    (k.timestamp_ms, k.metric_type),
                    (s.timestamp_ms, s.metric_type)
                );
                assert_eq!(
                    (fast.pos, fast.line, fast.done),
                    (slow.pos, slow.line, slow.done)
                );
            }
        }
        match p.next_entry() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return taken,
        }
    }
}

/// Series text of every sample of `body` (as far as it parses).
fn series_texts(body: &[u8], format: Format) -> Vec<&[u8]> {
    Parser::new(body, format)
        .map_while(Result::ok)
        .filter_map(|e| match e {
            Entry::Sample(s) => Some(s.series),
            _ => None,
        })
        .collect()
}

#[test]
fn next_known_reads_a_steady_body_as_next_entry_does() {
    for name in ["node_exporter.prom", "prometheus.prom"] {
        let body = testdata(name);
        let texts = series_texts(&body, Format::Text);
        let mut p = Parser::new(&body, Format::Text);
        let (mut fast, mut slow) = (0, 0);
        // As the processor does: offer the next text in order, else read an entry, and
        // offer the text again after a HELP or TYPE line.
        for text in &texts {
            loop {
                let mtype = p.mtype;
                if let Some(k) = p.next_known(text.len(), 0, mtype, |t| t == *text) {
                    assert_eq!(k.series, *text);
                    fast += 1;
                    break;
                }
                match p.next_entry().unwrap() {
                    Some(Entry::Sample(s)) => {
                        assert_eq!(s.series, *text);
                        slow += 1;
                        break;
                    }
                    Some(_) => continue,
                    None => panic!("{name}: ended before {text:?}"),
                }
            }
        }
        assert_eq!((fast, slow), (texts.len(), 0), "{name}: every sample known");
        assert!(p.next_entry().unwrap().is_none());
    }
}

#[test]
fn next_known_never_differs_from_next_entry() {
    let cases: &[(&str, &str)] = &[
        // A name-only series, then the same name with labels, a longer name, labels without
        // a blank, blanks before the name, a quoted name.
        (
            "foo 1\n",
            "foo {a=\"b\"} 2\nfoo{a=\"b\"} 3\nfoobar 4\nfoo1 2\nfoo 5 123\n  foo 6\n",
        ),
        (
            "foo{a=\"b\"} 1\n",
            "foo{a=\"b\"}7\nfoo{a=\"b\"} 7 8\nfoo{a=\"b\"} NaN\n",
        ),
        ("{\"my.name\",a=\"b\"} 1\n", "{\"my.name\",a=\"b\"} +Inf\n"),
        // A label value spanning lines.
        ("foo{a=\"x\ny\"} 1\n", "foo{a=\"x\ny\"} 2\nbar 3\n"),
        // What follows a known series is wrong: the error must come from next_entry.
        (
            "foo{a=\"b\"} 1\n",
            "foo{a=\"b\"} x\nfoo{a=\"b\"} 1 2 3\nfoo{a=\"b\"}\nfoo{a=\"b\"} 1 99999999999999999999\n",
        ),
        ("foo 1\n", "foo\nfoo 1 x\nfoo{\n"),
        // Comments and blank lines between samples, a NUL ending the input.
        (
            "foo 1\nbar{a=\"1\"} 2\n",
            "# HELP foo h\n# TYPE foo counter\nfoo 1\n\n   \nbar{a=\"1\"} 2\n\0foo 3\n",
        ),
        ("foo 1\n", "foo 1"),
        ("foo 1\n", "foo"),
    ];
    for (seen, body) in cases {
        let known = series_texts(seen.as_bytes(), Format::Text);
        check_known_against_next_entry(body.as_bytes(), Format::Text, &known);
        // Each line on its own, so errors at every position are reached.
        for line in body.split_inclusive('\n') {
            check_known_against_next_entry(line.as_bytes(), Format::Text, &known);
        }
    }
    let taken = check_known_against_next_entry(
        b"foo 1\nfoo{a=\"b\"} 2\n",
        Format::Text,
        &[b"foo", b"foo{a=\"b\"}"],
    );
    assert_eq!(taken, 2, "both lines are known and must be taken");
}

#[test]
fn next_known_on_the_real_fixtures() {
    for name in ["node_exporter.prom", "prometheus.prom"] {
        let body = testdata(name);
        let texts = series_texts(&body, Format::Text);
        // Offering every text everywhere is quadratic: a sample of them is enough.
        let some: Vec<&[u8]> = texts.iter().step_by(7).copied().collect();
        let taken = check_known_against_next_entry(&body, Format::Text, &some);
        assert!(
            taken >= some.len(),
            "{name}: {taken} taken of {}",
            some.len()
        );
    }
}

#[test]
fn next_known_never_differs_from_next_entry_in_openmetrics() {
    let cases: &[(&str, &str)] = &[
        // A name-only series, then the name with labels, continued, with a blank before `{`
        // (an error in OpenMetrics), float timestamps, exemplars.
        (
            "foo 1\n# EOF\n",
            "foo 1\nfoo{a=\"b\"} 2\nfoobar 3\nfoo1 4\nfoo 5 1520879607.789\nfoo 6 # {x=\"y\"} 1 2\nfoo 7 1.5 # {x=\"y\"} 1\nfoo {a=\"b\"} 8\n# EOF\n",
        ),
        (
            "foo{a=\"b\"} 1\n# EOF\n",
            "foo{a=\"b\"} +Inf\nfoo{a=\"b\"}  1\nfoo{a=\"b\"} 1 \nfoo{a=\"b\"}1\nfoo{a=\"b\"} NaN 1e3\n# EOF\n",
        ),
        (
            "{\"my.name\",a=\"b\"} 1\n# EOF\n",
            "{\"my.name\",a=\"b\"} 2 3\n# EOF\n",
        ),
        // A quoted name spanning lines (label values cannot): line numbers must follow.
        (
            "{\"my\nname\",a=\"b\"} 1\n# EOF\n",
            "{\"my\nname\",a=\"b\"} 2\nfoo x\n# EOF\n",
        ),
        // What follows a known series is wrong: the error must come from next_entry.
        (
            "foo{a=\"b\"} 1\n# EOF\n",
            "foo{a=\"b\"} x\nfoo{a=\"b\"} 1 +Inf\nfoo{a=\"b\"} 1 2 3\nfoo{a=\"b\"} 1 # {a=\"x\"} x\nfoo{a=\"b\"} 1 # {} 1\nfoo{a=\"b\"} 1 #{a=\"x\"} 1\nfoo{a=\"b\"}\nfoo{a=\"b\"} 1\n",
        ),
        // No `# EOF`, the input ending after a known series, data after `# EOF`.
        ("foo 1\n# EOF\n", "foo 1"),
        ("foo 1\n# EOF\n", "foo 1\n"),
        ("foo 1\n# EOF\n", "foo"),
        ("foo 1\n# EOF\n", "# EOF\nfoo 1\n"),
        // Blank and comment lines are errors in OpenMetrics.
        ("foo 1\n# EOF\n", "\nfoo 1\n# EOF\n"),
        ("foo 1\n# EOF\n", " foo 1\n# EOF\n"),
    ];
    for (seen, body) in cases {
        let known = series_texts(seen.as_bytes(), Format::OpenMetrics);
        assert!(!known.is_empty(), "{seen:?} parses");
        check_known_against_next_entry(body.as_bytes(), Format::OpenMetrics, &known);
        for line in body.split_inclusive('\n') {
            check_known_against_next_entry(line.as_bytes(), Format::OpenMetrics, &known);
        }
    }
    // Prometheus's own OpenMetrics test input: every series offered everywhere.
    let body = format!("{OM_INPUT}\n# EOF\n");
    let texts = series_texts(body.as_bytes(), Format::OpenMetrics);
    assert!(texts.len() > 10, "OM_INPUT parses: {} series", texts.len());
    let taken = check_known_against_next_entry(body.as_bytes(), Format::OpenMetrics, &texts);
    assert!(taken >= texts.len(), "{taken} taken of {}", texts.len());
    let taken = check_known_against_next_entry(
        b"foo 1\nfoo{a=\"b\"} 2 1.5 # {x=\"y\"} 1\n# EOF\n",
        Format::OpenMetrics,
        &[b"foo", b"foo{a=\"b\"}"],
    );
    assert_eq!(taken, 2, "both lines are known and must be taken");
}
