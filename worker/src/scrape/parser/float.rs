//! Numbers as Prometheus reads and writes them: Go's `strconv.ParseFloat` grammar (with
//! Prometheus's own refusal of `p`, `P` and `_` for sample values) and
//! `labels.FormatOpenMetricsFloat` for `le`/`quantile` normalization.

use std::fmt::Write as _;

/// Why a number was refused; the `Display` texts follow Go's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FloatError {
    /// Prometheus's `parseFloat` refuses `p`, `P` and `_` (hex floats and digit separators).
    Unsupported,
    /// Not Go float syntax.
    Syntax,
    /// Overflows f64 (Go returns ±Inf with `ErrRange`).
    Range,
}

impl FloatError {
    pub(super) fn describe(self, s: &[u8]) -> String {
        let q = super::lex::go_quote(s);
        match self {
            FloatError::Unsupported => "unsupported character in float".to_string(),
            FloatError::Syntax => format!("strconv.ParseFloat: parsing {q}: invalid syntax"),
            FloatError::Range => format!("strconv.ParseFloat: parsing {q}: value out of range"),
        }
    }
}

/// Prometheus's canonical NaN (`value.NormalNaN`). Every NaN read from an exposition is
/// turned into this one, so it can never be mistaken for a stale marker.
pub(super) const NORMAL_NAN: u64 = 0x7ff8_0000_0000_0001;

/// Exact powers of ten representable in an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Prometheus's `parseFloat` for sample values and timestamps: `p`, `P` and `_` refused,
/// then Go's `strconv.ParseFloat`. NaN is canonicalised to [`NORMAL_NAN`].
#[inline]
pub(super) fn parse_value(s: &[u8]) -> Result<f64, FloatError> {
    if let Some(v) = fast_decimal(s) {
        return Ok(v);
    }
    if s.iter().any(|&c| matches!(c, b'p' | b'P' | b'_')) {
        return Err(FloatError::Unsupported);
    }
    let v = parse_go_float(s)?;
    Ok(if v.is_nan() {
        f64::from_bits(NORMAL_NAN)
    } else {
        v
    })
}

/// Clinger's fast path: a decimal with at most 15 significant digits and a power of ten within
/// ±22 converts with one correctly rounded multiplication or division. Covers nearly every
/// value real exporters write (`0`, `1`, `12345`, `5.74788e+08`, `0.000136088`).
#[inline]
fn fast_decimal(s: &[u8]) -> Option<f64> {
    let mut i = 0;
    let neg = match s.first()? {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut mant: u64 = 0;
    let mut digits = 0u32;
    let mut frac = 0i32;
    while let Some(&c) = s.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mant = mant.wrapping_mul(10).wrapping_add(d as u64);
        digits += 1;
        i += 1;
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&c) = s.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            mant = mant.wrapping_mul(10).wrapping_add(d as u64);
            digits += 1;
            frac += 1;
            i += 1;
        }
    }
    if digits == 0 || digits > 15 {
        return None;
    }
    let mut exp: i32 = 0;
    if let Some(&(b'e' | b'E')) = s.get(i) {
        i += 1;
        let eneg = match s.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while let Some(&c) = s.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 || exp > 1000 {
                break;
            }
            exp = exp * 10 + d as i32;
            i += 1;
        }
        if i == start {
            return None;
        }
        if eneg {
            exp = -exp;
        }
    }
    if i != s.len() {
        return None;
    }
    let e10 = exp - frac;
    let m = mant as f64;
    let v = if mant == 0 {
        0.0
    } else if (0..=22).contains(&e10) {
        m * POW10[e10 as usize]
    } else if (-22..0).contains(&e10) {
        m / POW10[(-e10) as usize]
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// Go's `strconv.ParseFloat(s, 64)`: decimal and hexadecimal (`0x1.8p3`) floats, `_` digit
/// separators, `inf`/`infinity`/`nan` in any case, overflow refused with [`FloatError::Range`].
pub(super) fn parse_go_float(s: &[u8]) -> Result<f64, FloatError> {
    if let Some((v, n)) = special(s) {
        return if n == s.len() {
            Ok(v)
        } else {
            Err(FloatError::Syntax)
        };
    }
    let mut i = 0;
    let neg = match s.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let hex = i + 2 < s.len() && s[i] == b'0' && (s[i + 1] | 0x20) == b'x';
    if hex {
        return parse_hex(s, i + 2, neg);
    }
    // Decimal: check the grammar here, let Rust's correctly rounded parser do the rest.
    let mut underscores = false;
    let mut saw_dot = false;
    let mut saw_digits = false;
    while let Some(&c) = s.get(i) {
        match c {
            b'_' => underscores = true,
            b'.' if !saw_dot => saw_dot = true,
            b'0'..=b'9' => saw_digits = true,
            _ => break,
        }
        i += 1;
    }
    if !saw_digits {
        return Err(FloatError::Syntax);
    }
    if let Some(&(b'e' | b'E')) = s.get(i) {
        i += 1;
        if let Some(&(b'+' | b'-')) = s.get(i) {
            i += 1;
        }
        if !s.get(i).is_some_and(u8::is_ascii_digit) {
            return Err(FloatError::Syntax);
        }
        while let Some(&c) = s.get(i) {
            match c {
                b'_' => underscores = true,
                b'0'..=b'9' => {}
                _ => break,
            }
            i += 1;
        }
    }
    if i != s.len() || (underscores && !underscore_ok(s)) {
        return Err(FloatError::Syntax);
    }
    let v = if underscores {
        let clean: Vec<u8> = s.iter().copied().filter(|&c| c != b'_').collect();
        parse_std(&clean)?
    } else {
        parse_std(s)?
    };
    if v.is_infinite() {
        return Err(FloatError::Range);
    }
    Ok(v)
}

fn parse_std(s: &[u8]) -> Result<f64, FloatError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or(FloatError::Syntax)
}

/// Go's `special`: optional sign then `inf`/`infinity`, or `nan` (no sign), any case.
/// Returns the value and how many bytes it used.
fn special(s: &[u8]) -> Option<(f64, usize)> {
    let (sign, rest, nsign) = match s.first()? {
        b'+' => (1.0, &s[1..], 1),
        b'-' => (-1.0, &s[1..], 1),
        _ => (1.0, s, 0),
    };
    let prefix = |word: &[u8]| {
        rest.iter()
            .zip(word)
            .take_while(|(a, b)| a.to_ascii_lowercase() == **b)
            .count()
    };
    match rest.first()? {
        b'i' | b'I' => {
            let mut n = prefix(b"infinity");
            if 3 < n && n < 8 {
                n = 3;
            }
            (n == 3 || n == 8).then_some((sign * f64::INFINITY, nsign + n))
        }
        b'n' | b'N' if nsign == 0 && prefix(b"nan") == 3 => Some((f64::NAN, 3)),
        _ => None,
    }
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix and a digit.
fn underscore_ok(s: &[u8]) -> bool {
    let s = match s.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = (s[1] | 0x20) == b'x';
    }
    while let Some(&c) = s.get(i) {
        i += 1;
        if c.is_ascii_digit() || (hex && (c | 0x20).is_ascii_hexdigit()) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// Hexadecimal float after the `0x` at `i`: Go's `readFloat` (base 16) and `atofHex`.
fn parse_hex(s: &[u8], mut i: usize, neg: bool) -> Result<f64, FloatError> {
    let mut underscores = false;
    let mut saw_dot = false;
    let mut saw_digits = false;
    let mut nd: i64 = 0;
    let mut nd_mant: i64 = 0;
    let mut dp: i64 = 0;
    let mut mantissa: u64 = 0;
    let mut trunc = false;
    while let Some(&c) = s.get(i) {
        match c {
            b'_' => underscores = true,
            b'.' => {
                if saw_dot {
                    break;
                }
                saw_dot = true;
                dp = nd;
            }
            c if c.is_ascii_hexdigit() => {
                saw_digits = true;
                if c == b'0' && nd == 0 {
                    dp -= 1;
                } else {
                    nd += 1;
                    if nd_mant < 16 {
                        let d = (c as char).to_digit(16).unwrap_or(0) as u64;
                        mantissa = mantissa * 16 + d;
                        nd_mant += 1;
                    } else if c != b'0' {
                        trunc = true;
                    }
                }
            }
            _ => break,
        }
        i += 1;
    }
    if !saw_digits {
        return Err(FloatError::Syntax);
    }
    if !saw_dot {
        dp = nd;
    }
    dp *= 4;
    nd_mant *= 4;
    // A hexadecimal mantissa requires a 'p' exponent.
    if !matches!(s.get(i), Some(b'p' | b'P')) {
        return Err(FloatError::Syntax);
    }
    i += 1;
    let mut esign = 1;
    match s.get(i) {
        Some(b'+') => i += 1,
        Some(b'-') => {
            i += 1;
            esign = -1;
        }
        _ => {}
    }
    if !s.get(i).is_some_and(u8::is_ascii_digit) {
        return Err(FloatError::Syntax);
    }
    let mut e: i64 = 0;
    while let Some(&c) = s.get(i) {
        match c {
            b'_' => underscores = true,
            b'0'..=b'9' => {
                if e < 10000 {
                    e = e * 10 + (c - b'0') as i64;
                }
            }
            _ => break,
        }
        i += 1;
    }
    dp += e * esign;
    if i != s.len() || (underscores && !underscore_ok(s)) {
        return Err(FloatError::Syntax);
    }
    let exp = if mantissa != 0 { dp - nd_mant } else { 0 };
    atof_hex(mantissa, exp, neg, trunc)
}

/// Go's `atofHex` for float64: rounds `mantissa * 2^exp` to nearest even.
fn atof_hex(mut mantissa: u64, mut exp: i64, neg: bool, trunc: bool) -> Result<f64, FloatError> {
    const MANTBITS: u32 = 52;
    const BIAS: i64 = -1023;
    const MAX_EXP: i64 = (1 << 11) + BIAS - 2;
    const MIN_EXP: i64 = BIAS + 1;
    exp += MANTBITS as i64;
    while mantissa != 0 && mantissa >> (MANTBITS + 2) == 0 {
        mantissa <<= 1;
        exp -= 1;
    }
    if trunc {
        mantissa |= 1;
    }
    while mantissa >> (1 + MANTBITS + 2) != 0 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    while mantissa > 1 && exp < MIN_EXP - 2 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    let mut round = mantissa & 3;
    mantissa >>= 2;
    round |= mantissa & 1;
    exp += 2;
    if round == 3 {
        mantissa += 1;
        if mantissa == 1 << (1 + MANTBITS) {
            mantissa >>= 1;
            exp += 1;
        }
    }
    if mantissa >> MANTBITS == 0 {
        exp = BIAS;
    }
    if exp > MAX_EXP {
        return Err(FloatError::Range);
    }
    let mut bits = mantissa & ((1 << MANTBITS) - 1);
    bits |= (((exp - BIAS) as u64) & ((1 << 11) - 1)) << MANTBITS;
    if neg {
        bits |= 1 << 63;
    }
    Ok(f64::from_bits(bits))
}

/// A small stack buffer for formatting without allocating.
pub(super) struct FloatBuf {
    buf: [u8; 48],
    len: usize,
}

impl FloatBuf {
    pub(super) fn new() -> Self {
        FloatBuf {
            buf: [0; 48],
            len: 0,
        }
    }

    pub(super) fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    fn push(&mut self, c: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = c;
            self.len += 1;
        }
    }
}

impl std::fmt::Write for FloatBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for &c in s.as_bytes() {
            self.push(c);
        }
        Ok(())
    }
}

/// Prometheus's `labels.FormatOpenMetricsFloat`: Go's `strconv.FormatFloat(f, 'g', -1, 64)`
/// with `.0` appended when the result has neither `.` nor `e`; `1.0`, `0.0`, `-1.0`, `NaN`,
/// `+Inf`, `-Inf` spelled out.
pub(super) fn format_openmetrics_float(f: f64, out: &mut FloatBuf) {
    out.len = 0;
    let fixed = if f == 1.0 {
        "1.0"
    } else if f == 0.0 {
        "0.0"
    } else if f == -1.0 {
        "-1.0"
    } else if f.is_nan() {
        "NaN"
    } else if f == f64::INFINITY {
        "+Inf"
    } else if f == f64::NEG_INFINITY {
        "-Inf"
    } else {
        ""
    };
    if !fixed.is_empty() {
        let _ = out.write_str(fixed);
        return;
    }
    format_go_g(f, out);
    if !out.buf[..out.len].iter().any(|&c| c == b'.' || c == b'e') {
        let _ = out.write_str(".0");
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` for finite non-zero `f`: shortest round-trip
/// digits; `%e` form when the decimal exponent is < -4 or >= 6 (Go decides with precision 6
/// when formatting the shortest representation), `%f` form otherwise.
fn format_go_g(f: f64, out: &mut FloatBuf) {
    // Rust's `{:e}` gives the same shortest round-trip digits: `d[.ddd]e[-]x`.
    let mut sci = FloatBuf::new();
    let _ = write!(sci, "{:e}", f.abs());
    let s = &sci.buf[..sci.len];
    let mut digits = [0u8; 32];
    let mut nd = 0;
    let mut k = 0;
    while k < s.len() && s[k] != b'e' {
        if s[k].is_ascii_digit() && nd < digits.len() {
            digits[nd] = s[k];
            nd += 1;
        }
        k += 1;
    }
    let exp10: i32 = std::str::from_utf8(&s[(k + 1).min(s.len())..])
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let digits = &digits[..nd];
    // Go's decimal point position: value = 0.d1d2... * 10^dp.
    let dp = exp10 + 1;
    if f < 0.0 {
        out.push(b'-');
    }
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        // %e: d.ddde±XX (at least two exponent digits).
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            for &d in &digits[1..] {
                out.push(d);
            }
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        let _ = write!(out, "{e}");
    } else {
        // %f with exactly the digits needed.
        if dp > 0 {
            for j in 0..dp as usize {
                out.push(*digits.get(j).unwrap_or(&b'0'));
            }
        } else {
            out.push(b'0');
        }
        let frac = nd as i32 - dp;
        if frac > 0 {
            out.push(b'.');
            for i in 1..=frac {
                let j = dp + i - 1;
                out.push(if j >= 0 {
                    *digits.get(j as usize).unwrap_or(&b'0')
                } else {
                    b'0'
                });
            }
        }
    }
}
