//! Fuzzes the exposition parser with arbitrary bytes, as the text format and as OpenMetrics.
//!
//! Input: any bytes (the fixtures in `testdata/`, inflated, make good seeds).
//!
//! Checked: no panic and termination; at most one entry per line and the position always
//! advances; after an error the parser stays finished and the error's line exists; every
//! series is a non-empty slice of the input; a NaN value is Prometheus's normal NaN; label sets
//! accepted by `labels_into` have unique names and no `__name__`; and every such sample,
//! written back as a text-format line with quoted names, parses to the same name, labels,
//! value and timestamp.
#![no_main]

use std::borrow::Cow;
use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;

// The parser lives inside the worker crate and only needs `std`: compile it in directly.
#[allow(dead_code, unreachable_pub)]
#[path = "../../worker/src/scrape/parser/mod.rs"]
mod parser;

use parser::{Entry, Format, Parser};

/// Prometheus's `value.NormalNaN`.
const NORMAL_NAN: u64 = 0x7ff8_0000_0000_0001;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Text, Format::OpenMetrics] {
        check(data, format);
    }
});

fn check(data: &[u8], format: Format) {
    let lines = data.iter().filter(|&&c| c == b'\n').count() + 1;
    let input = data.as_ptr_range();
    let mut p = Parser::new(data, format);
    let mut entries = 0;
    let mut last = 0;
    let mut labels = Vec::new();
    loop {
        let entry = match p.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                assert!(
                    (1..=lines).contains(&e.line()),
                    "error line {} of {lines}: {e}",
                    e.line()
                );
                assert!(!e.message().is_empty());
                assert_eq!(p.next_entry(), Ok(None), "parser goes on after an error");
                break;
            }
        };
        entries += 1;
        assert!(entries <= lines, "{entries} entries from {lines} lines");
        assert!(
            p.position() > last && p.position() <= data.len(),
            "position did not advance"
        );
        last = p.position();
        let Entry::Sample(s) = entry else { continue };
        let series = s.series.as_ptr_range();
        assert!(!s.series.is_empty());
        assert!(
            input.start <= series.start && series.end <= input.end,
            "series outside the input"
        );
        if s.value.is_nan() {
            assert_eq!(s.value.to_bits(), NORMAL_NAN);
        }
        if s.labels_into(&mut labels).is_ok() {
            for (i, (n, _)) in labels.iter().enumerate() {
                assert_ne!(n, "__name__");
                assert!(
                    labels[..i].iter().all(|(m, _)| m != n),
                    "duplicate label {n:?}"
                );
            }
            round_trip(&s.name, &labels, s.value, s.timestamp_ms);
        }
    }
    assert_eq!(p.next_entry(), Ok(None));
}

/// Writes the sample as `{"name","label"="value",...} value [ts]` and parses it again.
fn round_trip(name: &str, labels: &[(Cow<'_, str>, Cow<'_, str>)], value: f64, ts: Option<i64>) {
    let mut line = String::from("{");
    quote(&mut line, name);
    for (n, v) in labels {
        line.push(',');
        quote(&mut line, n);
        line.push('=');
        quote(&mut line, v);
    }
    line.push_str("} ");
    if value.is_nan() {
        line.push_str("NaN");
    } else if value.is_infinite() {
        line.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(line, "{value:e}");
    }
    // The text format has no negative timestamps.
    let ts = ts.filter(|&t| t >= 0);
    if let Some(t) = ts {
        let _ = write!(line, " {t}");
    }
    line.push('\n');

    let mut p = Parser::new(line.as_bytes(), Format::Text);
    let s = match p.next_entry() {
        Ok(Some(Entry::Sample(s))) => s,
        other => panic!("{line:?} does not parse back: {other:?}"),
    };
    assert_eq!(s.name, name, "{line:?}");
    let mut again = Vec::new();
    assert_eq!(s.labels_into(&mut again), Ok(()), "{line:?}");
    assert_eq!(again, labels, "{line:?}");
    assert!(
        s.value.to_bits() == value.to_bits() || (s.value.is_nan() && value.is_nan()),
        "{line:?}"
    );
    assert_eq!(s.timestamp_ms, ts, "{line:?}");
    assert_eq!(p.next_entry(), Ok(None), "{line:?}");
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}
