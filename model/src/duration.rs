//! Prometheus durations (`model.Duration`): `1y2w3d4h5m6s7ms`, units in that order, each once,
//! or `0`. Formatting is Go's `model.Duration.String()`, which target labels such as
//! `__scrape_interval__` carry, so both must round-trip exactly.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(pub Duration);

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

impl PromDuration {
    pub fn from_secs(s: u64) -> Self {
        PromDuration(Duration::from_secs(s))
    }

    pub fn from_millis(ms: u64) -> Self {
        PromDuration(Duration::from_millis(ms))
    }

    pub fn as_millis(&self) -> u64 {
        self.0.as_millis() as u64
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "0" {
            return Ok(PromDuration(Duration::ZERO));
        }
        if s.is_empty() {
            return Err("empty duration string".into());
        }
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut total: u64 = 0;
        let mut next_unit = 0; // index into UNITS: each unit at most once, in order
        while pos < bytes.len() {
            let start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            if start == pos {
                return Err(format!("not a valid duration string: {s:?}"));
            }
            let n: u64 = s[start..pos]
                .parse()
                .map_err(|_| format!("duration out of range: {s:?}"))?;
            let ustart = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
                pos += 1;
            }
            let unit = &s[ustart..pos];
            let idx = UNITS[next_unit..]
                .iter()
                .position(|(u, _)| *u == unit)
                .map(|i| i + next_unit)
                .ok_or_else(|| format!("not a valid duration string: {s:?}"))?;
            next_unit = idx + 1;
            total = n
                .checked_mul(UNITS[idx].1)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("duration out of range: {s:?}"))?;
        }
        Ok(PromDuration(Duration::from_millis(total)))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, mult) in UNITS {
            if ms >= mult {
                write!(f, "{}{}", ms / mult, unit)?;
                ms %= mult;
            }
        }
        Ok(())
    }
}

impl From<PromDuration> for Duration {
    fn from(d: PromDuration) -> Duration {
        d.0
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_forms() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("15s", 15_000),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("500ms", 500),
            ("1m0s500ms", 60_500),
        ];
        for (s, ms) in cases {
            assert_eq!(PromDuration::parse(s).unwrap().as_millis(), ms, "{s}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in ["", "1", "s", "1.5s", "30s1m", "1s1s", "-1s", "1 s", "1x"] {
            assert!(PromDuration::parse(s).is_err(), "{s} should be rejected");
        }
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (0, "0s"),
            (15_000, "15s"),
            (90_000, "1m30s"),
            (86_400_000, "1d"),
            (60_500, "1m500ms"),
        ];
        for (ms, s) in cases {
            assert_eq!(PromDuration::from_millis(ms).to_string(), s);
        }
    }
}
