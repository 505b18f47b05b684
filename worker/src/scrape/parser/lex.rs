//! Byte-level building blocks shared by both formats: character classes, a word-at-a-time
//! scanner for quoted strings, unescaping and Go-style quoting for error messages.
//!
//! Everything here works on `&[u8]` with explicit indexes so the callers can keep the
//! exact lexer positions Prometheus's generated lexers would have.

use std::borrow::Cow;

/// `[a-zA-Z_:]`: may start a metric name.
const M_START: u8 = 1;
/// `[a-zA-Z_:0-9]`: may continue a metric name.
const M_CONT: u8 = 2;
/// `[a-zA-Z_]`: may start a label name.
const L_START: u8 = 4;
/// `[a-zA-Z_0-9]`: may continue a label name.
const L_CONT: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        if alpha || b == b':' {
            t[c] |= M_START | M_CONT;
        }
        if digit {
            t[c] |= M_CONT | L_CONT;
        }
        if alpha {
            t[c] |= L_START | L_CONT;
        }
        c += 1;
    }
    t
};

#[inline]
pub(super) fn is_metric_start(c: u8) -> bool {
    CLASS[c as usize] & M_START != 0
}

#[inline]
pub(super) fn is_label_start(c: u8) -> bool {
    CLASS[c as usize] & L_START != 0
}

#[inline]
pub(super) fn is_metric_continue(c: u8) -> bool {
    CLASS[c as usize] & M_CONT != 0
}

/// End of the metric name `{M}({M}|{D})*` whose first byte is at `i` (already checked).
#[inline]
pub(super) fn scan_metric_name(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while let Some(&c) = b.get(i) {
        if CLASS[c as usize] & M_CONT == 0 {
            break;
        }
        i += 1;
    }
    i
}

/// End of the label name `{L}({L}|{D})*` whose first byte is at `i` (already checked).
#[inline]
pub(super) fn scan_label_name(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while let Some(&c) = b.get(i) {
        if CLASS[c as usize] & L_CONT == 0 {
            break;
        }
        i += 1;
    }
    i
}

/// Skips spaces and tabs (the text format's `[ \t]+` token).
#[inline]
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if c != b' ' && c != b'\t' {
            break;
        }
        i += 1;
    }
    i
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

#[inline(always)]
fn load_u64(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// High bit set in every byte lane of `w` equal to `c`. Lanes above the first true match may
/// be false positives, so only the lowest set bit is meaningful.
#[inline(always)]
fn eq_mask(w: u64, c: u8) -> u64 {
    let v = w ^ (LO * c as u64);
    v.wrapping_sub(LO) & !v & HI
}

/// Index of the first `\n` at or after `i`, or `b.len()`.
pub(super) fn find_newline(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let m = eq_mask(load_u64(b, i), b'\n');
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'\n' {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// What a quoted string may contain besides ordinary bytes. Mirrors the states of
/// Prometheus's golex lexers: in label values the lexer skips NUL bytes (so they end up in the
/// value), elsewhere a NUL ends the token; OpenMetrics label values and exemplars cannot span
/// lines, while the text format's can (`\"(\\.|[^\\"])*\"` matches a newline).
#[derive(Clone, Copy)]
pub(super) struct QuoteRules {
    pub(super) newline: bool,
    pub(super) nul: bool,
}

/// Result of [`scan_quoted`].
pub(super) struct Quoted {
    /// Index just past the closing quote.
    pub(super) end: usize,
    /// A backslash escape occurs inside.
    pub(super) escaped: bool,
    /// A byte >= 0x80 occurs inside: the caller must validate UTF-8.
    pub(super) non_ascii: bool,
    /// Raw newlines inside (for line counting).
    pub(super) newlines: usize,
}

/// Scans the quoted string `"(\\.|[^\\"])*"` whose opening quote is at `start`.
///
/// Returns the position where lexing failed on error. Eight bytes are examined at a time; a
/// word without a quote, backslash, control byte or non-ASCII byte is skipped whole, which is
/// the common case for label values.
#[inline]
pub(super) fn scan_quoted(b: &[u8], start: usize, rules: QuoteRules) -> Result<Quoted, usize> {
    let mut q = Quoted {
        end: 0,
        escaped: false,
        non_ascii: false,
        newlines: 0,
    };
    let mut i = start + 1;
    // Once a non-ASCII byte was seen the caller validates the whole string anyway, so stop
    // looking for more (keeps long non-ASCII values on the fast path).
    let mut hi = HI;
    loop {
        while i + 8 <= b.len() {
            let w = load_u64(b, i);
            // Bytes < 0x20: catches `\n`, NUL and other control bytes in one test.
            let ctrl = w.wrapping_sub(LO * 0x20) & !w & HI;
            let m = eq_mask(w, b'"') | eq_mask(w, b'\\') | ctrl | (w & hi);
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        let Some(&c) = b.get(i) else { return Err(i) };
        match c {
            b'"' => {
                q.end = i + 1;
                return Ok(q);
            }
            b'\\' => {
                // `\\.`: lex's `.` never matches a newline.
                match b.get(i + 1) {
                    None | Some(b'\n') => return Err(i + 1),
                    Some(0) if !rules.nul => return Err(i + 1),
                    Some(_) => {}
                }
                q.escaped = true;
                i += 2;
            }
            b'\n' => {
                if !rules.newline {
                    return Err(i);
                }
                q.newlines += 1;
                i += 1;
            }
            0 => {
                if !rules.nul {
                    return Err(i);
                }
                i += 1;
            }
            c if c >= 0x80 => {
                q.non_ascii = true;
                hi = 0;
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// Which escapes are recognised (Go's `strings.Replacer` semantics: left to right, no
/// overlap, an unknown escape is kept verbatim).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Escapes {
    /// Label values, quoted names, OpenMetrics HELP: `\\`, `\"`, `\n`.
    Label,
    /// Text format HELP: `\\`, `\n` only.
    TextHelp,
}

/// Unescapes `s`, borrowing when it holds no backslash.
pub(super) fn unescape(s: &str, esc: Escapes) -> Cow<'_, str> {
    if !s.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let mut ahead = chars.clone();
        match ahead.next() {
            Some('\\') => {
                out.push('\\');
                chars = ahead;
            }
            Some('n') => {
                out.push('\n');
                chars = ahead;
            }
            Some('"') if esc == Escapes::Label => {
                out.push('"');
                chars = ahead;
            }
            _ => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Converts validated bytes to `&str`; `what` names the thing for the error.
pub(super) fn utf8<'a>(b: &'a [u8], what: &str) -> Result<&'a str, String> {
    std::str::from_utf8(b).map_err(|_| format!("invalid UTF-8 {what}: {}", go_quote(b)))
}

/// Longest byte string shown in an error message.
const MAX_QUOTED: usize = 256;

/// Quotes bytes the way Go's `%q` does (close enough for messages): printable UTF-8 kept,
/// invalid bytes as `\xNN`. Long input is cut with `...`.
pub(super) fn go_quote(b: &[u8]) -> String {
    let (b, cut) = if b.len() > MAX_QUOTED {
        (&b[..MAX_QUOTED], true)
    } else {
        (b, false)
    };
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                '\t' => s.push_str("\\t"),
                '\r' => s.push_str("\\r"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    s.push_str(&format!("\\x{:02x}", c as u32));
                }
                c => s.push(c),
            }
        }
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s.push('"');
    if cut {
        s.push_str("...");
    }
    s
}
