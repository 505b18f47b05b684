//! RE2 (Go `regexp/syntax`) patterns rewritten into Rust `regex` syntax with the same meaning,
//! so relabel regexes match exactly what they match in Prometheus.
//!
//! Go's `regexp` and the Rust `regex` crate share the engine semantics (leftmost-first
//! submatches, linear time), but not the syntax:
//!
//! - `\d \s \w \b` (and negations) are ASCII in RE2 but Unicode in Rust: they become explicit
//!   ASCII classes and `(?-u:\b)`. Unicode mode itself stays on, so `.`, literals, `(?i)` and
//!   `\p{…}` work per character as in Go (`RegexBuilder::unicode(false)` would make `.` match
//!   bytes and `^.$` fail on `é`).
//! - RE2-only syntax is translated: `\Q…\E`, octal `\123`, `\p{^Greek}`, `(?)`, a `{` that is
//!   not a repetition (literal in Go, an error in Rust), `[` and the set operators `&& -- ~~`
//!   inside a class (literal in Go, nesting and set operations in Rust), `\<` `\>` (literal in
//!   Go, word boundaries in Rust).
//! - What Go rejects is rejected: stacked repetitions `a**`, repeat counts over 1000, flags
//!   other than `imsU`, unknown escapes (`\C`, `\e`, `\u…`), unknown POSIX classes.
//!
//! - The whole anchored pattern `^(?s:…)$` is translated, as Go parses it whole: an unclosed
//!   `\Q` or a trailing `\` in a relabel regex swallows the closing `)`.
//! - Group names are kept aside (Go allows duplicates and names like `1x`, Rust does not);
//!   capture group numbers are unchanged.
//!
//! Known gaps: Unicode property names that only Rust knows (`\p{Letter}`, `\p{Alphabetic}`),
//! escapes of surrogates (`\x{D800}`, accepted by Go and never matching), Go's limit on the
//! size of nested repetitions, and Unicode table versions.

fn syntax_error(what: &str, fragment: &[char]) -> regex::Error {
    let fragment: String = fragment.iter().collect();
    regex::Error::Syntax(format!("error parsing regexp: {what}: `{fragment}`"))
}

/// A pattern rewritten into Rust syntax, with capture groups left unnamed, and Go's names.
#[derive(Clone, Debug)]
pub(super) struct Translated {
    pub(super) pattern: String,
    /// `(name, group index)` in order. Go allows duplicate names and names like `1x`; Rust does
    /// not, so names are resolved with this list rather than by the Rust regex.
    pub(super) names: Vec<(String, usize)>,
}

/// Rewrites a complete RE2 pattern into a Rust pattern with the same meaning.
pub(super) fn translate(pattern: &str) -> Result<Translated, regex::Error> {
    let t: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let (mut names, mut groups) = (Vec::new(), 0);
    let mut i = 0;
    let mut last_repeat: Option<usize> = None;
    // Flags of a `(?i)` group not written yet: Go applies a repetition right after such a group
    // to the atom before it (`x(?i)*` is `x*(?i)`), which Rust rejects.
    let mut pending_flags = String::new();
    while i < t.len() {
        let start = i;
        let repeat = match t[i] {
            '*' | '+' | '?' => Some((0, -1, 1)),
            '{' => parse_repeat(&t[i..]),
            _ => None,
        };
        let Some((min, max, len)) = repeat else {
            last_repeat = None;
            if t[i] == '(' && t.get(i + 1) == Some(&'?') {
                let (group, next) = group(&t, i)?;
                i = next;
                match group {
                    Group::Flags(flags) => pending_flags.push_str(&flags),
                    Group::NonCapturing(open) => {
                        out.push_str(&std::mem::take(&mut pending_flags));
                        out.push_str(&open);
                    }
                    Group::Named(name) => {
                        out.push_str(&std::mem::take(&mut pending_flags));
                        groups += 1;
                        names.push((name, groups));
                        out.push('(');
                    }
                }
                continue;
            }
            out.push_str(&std::mem::take(&mut pending_flags));
            match t[i] {
                '\\' => i = escape(&t, i, &mut out)?,
                '[' => i = class(&t, i, &mut out)?,
                '(' => {
                    groups += 1;
                    out.push('(');
                    i += 1;
                }
                // Not a repetition: Go takes the brace literally, Rust would reject it.
                c @ ('{' | '}' | ']') => {
                    out.push('\\');
                    out.push(c);
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
            continue;
        };
        if !(0..=1000).contains(&min) || max > 1000 || (max >= 0 && min > max) {
            return Err(syntax_error("invalid repeat count", &t[i..i + len]));
        }
        out.extend(&t[i..i + len]);
        i += len;
        if t.get(i) == Some(&'?') {
            out.push('?');
            i += 1;
        }
        if let Some(prev) = last_repeat {
            return Err(syntax_error(
                "invalid nested repetition operator",
                &t[prev..i],
            ));
        }
        out.push_str(&std::mem::take(&mut pending_flags));
        last_repeat = Some(start);
    }
    out.push_str(&pending_flags);
    Ok(Translated {
        pattern: out,
        names,
    })
}

fn push_literal(out: &mut String, c: char) {
    out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
}

/// RE2's Perl classes are ASCII: the body of the equivalent class and whether it is negated.
fn perl_class(c: char) -> Option<(bool, &'static str)> {
    let body = match c.to_ascii_lowercase() {
        'd' => "0-9",
        's' => r"\t\n\x0C\r ",
        'w' => "0-9A-Za-z_",
        _ => return None,
    };
    Some((c.is_ascii_uppercase(), body))
}

/// A backslash escape outside a class, starting at `t[i] == '\\'`; returns the next index.
fn escape(t: &[char], i: usize, out: &mut String) -> Result<usize, regex::Error> {
    let Some(&c) = t.get(i + 1) else {
        return Err(syntax_error("trailing backslash at end of expression", &[]));
    };
    match c {
        'A' | 'z' => out.extend(['\\', c]),
        'b' | 'B' => out.extend(['(', '?', '-', 'u', ':', '\\', c, ')']),
        'Q' => {
            let rest = &t[i + 2..];
            let end = rest.windows(2).position(|w| w == ['\\', 'E']);
            let literal = &rest[..end.unwrap_or(rest.len())];
            literal.iter().for_each(|&c| push_literal(out, c));
            return Ok(i + 2 + literal.len() + if end.is_some() { 2 } else { 0 });
        }
        'p' | 'P' => return unicode_class(t, i, out),
        _ => match perl_class(c) {
            Some((negated, body)) => {
                out.push_str(if negated { "[^" } else { "[" });
                out.push_str(body);
                out.push(']');
            }
            None => {
                let (literal, len) = go_escape(t, i)?;
                push_literal(out, literal);
                return Ok(i + len);
            }
        },
    }
    Ok(i + 2)
}

/// Go's `parseEscape` for single characters, at `t[i] == '\\'`: the character and the length.
fn go_escape(t: &[char], i: usize) -> Result<(char, usize), regex::Error> {
    let invalid =
        |len: usize| syntax_error("invalid escape sequence", &t[i..(i + len).min(t.len())]);
    let Some(&c) = t.get(i + 1) else {
        return Err(syntax_error("trailing backslash at end of expression", &[]));
    };
    let digit = |k: usize, radix: u32| t.get(i + k).and_then(|d| d.to_digit(radix));
    let (code, len) = match c {
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => (c as u32, 2),
        'a' => (7, 2),
        'f' => (12, 2),
        'n' => (10, 2),
        'r' => (13, 2),
        't' => (9, 2),
        'v' => (11, 2),
        // A lone \1-\7 would be a backreference, which RE2 does not support.
        '1'..='7' if digit(2, 8).is_none() => return Err(invalid(2)),
        '0'..='7' => {
            let (mut code, mut len) = (c as u32 - '0' as u32, 2);
            while len < 4
                && let Some(d) = digit(len, 8)
            {
                code = code * 8 + d;
                len += 1;
            }
            (code, len)
        }
        'x' if t.get(i + 2) == Some(&'{') => {
            let digits = t[i + 3..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            if digits == 0 || t.get(i + 3 + digits) != Some(&'}') {
                return Err(invalid(3 + digits + 1));
            }
            let hex: String = t[i + 3..i + 3 + digits].iter().collect();
            (
                u32::from_str_radix(&hex, 16).unwrap_or(u32::MAX),
                4 + digits,
            )
        }
        'x' => match (digit(2, 16), digit(3, 16)) {
            (Some(hi), Some(lo)) => (hi * 16 + lo, 4),
            _ => return Err(invalid(4)),
        },
        _ => return Err(invalid(2)),
    };
    // Surrogates and values past U+10FFFF are no characters (Go accepts surrogates, which
    // then never match valid UTF-8).
    char::from_u32(code)
        .map(|c| (c, len))
        .ok_or_else(|| invalid(len))
}

/// `\pN`, `\p{Name}`, `\p{^Name}` and the `\P` forms, at `t[i] == '\\'`.
fn unicode_class(t: &[char], i: usize, out: &mut String) -> Result<usize, regex::Error> {
    let bad = |end: usize| syntax_error("invalid character class range", &t[i..end.min(t.len())]);
    let mut negated = t[i + 1] == 'P';
    let (mut name, next) = match t.get(i + 2) {
        None => return Err(bad(i + 2)),
        Some('{') => {
            let close = t[i + 3..]
                .iter()
                .position(|&c| c == '}')
                .ok_or_else(|| bad(t.len()))?;
            (&t[i + 3..i + 3 + close], i + 4 + close)
        }
        Some(_) => (&t[i + 2..i + 3], i + 3),
    };
    if let Some(('^', rest)) = name.split_first() {
        negated = !negated;
        name = rest;
    }
    // Go's names (categories, scripts, `Any`) are capitalized; Rust also accepts `greek`.
    let capitalized = name.first().is_some_and(char::is_ascii_uppercase);
    if !capitalized || !name.iter().all(|c| c.is_ascii_alphanumeric() || *c == '_') {
        return Err(bad(next));
    }
    out.push_str(if negated { r"\P{" } else { r"\p{" });
    out.extend(name);
    out.push('}');
    Ok(next)
}

const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// A bracketed class, at `t[i] == '['` (Go's `parseClass`). Every literal is escaped so that
/// Rust's nested classes and set operators (`[`, `&&`, `--`, `~~`) stay literal as in Go.
fn class(t: &[char], start: usize, out: &mut String) -> Result<usize, regex::Error> {
    let missing = || syntax_error("missing closing ]", &t[start..]);
    let mut i = start + 1;
    out.push('[');
    if t.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true; // A `]` right after `[` or `[^` is a literal.
    loop {
        match t.get(i) {
            None => return Err(missing()),
            Some(']') if !first => {
                out.push(']');
                return Ok(i + 1);
            }
            _ => first = false,
        }
        if t[i] == '[' && t.get(i + 1) == Some(&':') {
            let close = t[i + 2..].windows(2).position(|w| w == [':', ']']);
            if let Some(close) = close {
                let end = i + 2 + close + 2;
                let name: String = t[i + 2..end - 2].iter().collect();
                if !POSIX_CLASSES.contains(&name.strip_prefix('^').unwrap_or(&name)) {
                    return Err(syntax_error("invalid character class range", &t[i..end]));
                }
                out.extend(&t[i..end]);
                i = end;
                continue;
            }
        }
        if t[i] == '\\' {
            match t.get(i + 1) {
                Some('p' | 'P') => {
                    i = unicode_class(t, i, out)?;
                    continue;
                }
                Some(&c) => {
                    if let Some((negated, body)) = perl_class(c) {
                        if negated {
                            out.extend(["[^", body, "]"]);
                        } else {
                            out.push_str(body);
                        }
                        i += 2;
                        continue;
                    }
                }
                None => return Err(missing()),
            }
        }
        let item = i;
        let (lo, len) = class_char(t, i).ok_or_else(missing)??;
        i += len;
        let mut hi = lo;
        if t.get(i) == Some(&'-') && t.get(i + 1).is_some_and(|&c| c != ']') {
            let (c, len) = class_char(t, i + 1).ok_or_else(missing)??;
            hi = c;
            i += 1 + len;
            if hi < lo {
                return Err(syntax_error("invalid character class range", &t[item..i]));
            }
        }
        push_literal(out, lo);
        if hi != lo {
            out.push('-');
            push_literal(out, hi);
        }
    }
}

/// One character inside a class; `None` at the end of the pattern.
fn class_char(t: &[char], i: usize) -> Option<Result<(char, usize), regex::Error>> {
    match t.get(i)? {
        '\\' => Some(go_escape(t, i)),
        &c => Some(Ok((c, 1))),
    }
}

enum Group {
    /// `(?flags)`: the flags to write (empty for `(?)`, which Go accepts and Rust does not).
    Flags(String),
    /// `(?flags:`, written as is.
    NonCapturing(String),
    /// `(?P<name>` or `(?<name>`.
    Named(String),
}

/// A group opening with `(?`, at `t[i] == '('`; returns it and the next index.
fn group(t: &[char], i: usize) -> Result<(Group, usize), regex::Error> {
    let rest = &t[i + 2..];
    let name_start = match rest {
        ['P', '<', ..] => Some(i + 4),
        ['<', ..] => Some(i + 3),
        _ => None,
    };
    if let Some(s) = name_start {
        let end = t[s..].iter().position(|&c| c == '>').map(|p| s + p);
        let Some(end) = end else {
            return Err(syntax_error("invalid named capture", &t[i..]));
        };
        let name = &t[s..end];
        if name.is_empty() || !name.iter().all(|c| c.is_ascii_alphanumeric() || *c == '_') {
            return Err(syntax_error("invalid named capture", &t[i..=end]));
        }
        return Ok((Group::Named(name.iter().collect()), end + 1));
    }
    let end = rest.iter().position(|&c| c == ':' || c == ')');
    match end {
        Some(e)
            if rest[..e]
                .iter()
                .all(|c| matches!(c, 'i' | 'm' | 's' | 'U' | '-')) =>
        {
            let text: String = t[i..i + 3 + e].iter().collect();
            let group = match rest[e] {
                ')' if e == 0 => Group::Flags(String::new()),
                ')' => Group::Flags(text),
                _ => Group::NonCapturing(text),
            };
            Ok((group, i + 3 + e))
        }
        _ => Err(syntax_error(
            "invalid or unsupported Perl syntax",
            &t[i..(i + 3).min(t.len())],
        )),
    }
}

/// Go's `parseRepeat` at `t[0] == '{'`: `(min, max, length)` for `{n}`, `{n,}` (max -1) or
/// `{n,m}`; `None` if this is not a repetition and the brace is a literal. -1 marks a count
/// too large to parse.
fn parse_repeat(t: &[char]) -> Option<(i64, i64, usize)> {
    let (mut min, len) = parse_int(&t[1..])?;
    let mut i = 1 + len;
    let max = if *t.get(i)? == ',' {
        i += 1;
        if *t.get(i)? == '}' {
            -1
        } else {
            let (max, len) = parse_int(&t[i..])?;
            i += len;
            if max < 0 {
                min = -1;
            }
            max
        }
    } else {
        min
    };
    (*t.get(i)? == '}').then_some((min, max, i + 1))
}

/// Go's `parseInt`: decimal digits without a leading zero; -1 if too large.
fn parse_int(t: &[char]) -> Option<(i64, usize)> {
    let len = t.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 || (len >= 2 && t[0] == '0') {
        return None;
    }
    let mut n: i64 = 0;
    for c in &t[..len] {
        if n >= 100_000_000 {
            return Some((-1, len));
        }
        n = n * 10 + i64::from(c.to_digit(10)?);
    }
    Some((n, len))
}
