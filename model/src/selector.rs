//! Kubernetes label and field selectors (`selectors[].label` / `selectors[].field` of a
//! `kubernetes_sd_config`), parsed and matched locally. Here rather than in the master so that
//! loading a config rejects a malformed selector, as Prometheus does.
//!
//! Prometheus hands selectors to the API server, which filters its LIST and WATCH. We keep one
//! unfiltered watch per kind for the whole master and apply each job's selectors over the
//! shared store instead, so these must accept and match exactly what the API server would:
//! the grammar follows `k8s.io/apimachinery/pkg/labels.Parse` and `fields.ParseSelector`.
//!
//! Field selectors are only as good as the field lookup: the API server supports a few fields
//! per kind and rejects others; the master lists them and reads them from objects.

use std::collections::BTreeMap;
use std::fmt;

/// A parsed selector: a conjunction of requirements. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Selector {
    /// The selector that matches everything (an empty string parses to it too).
    pub fn everything() -> Self {
        Selector::default()
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Parses a label selector: comma-separated requirements `k=v`, `k==v`, `k!=v`,
    /// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>1`, `k<1`.
    pub fn parse_label(s: &str) -> Result<Self, String> {
        LabelParser {
            tokens: lex(s).map_err(|e| format!("label selector {s:?}: {e}"))?,
            pos: 0,
        }
        .parse()
        .map_err(|e| format!("label selector {s:?}: {e}"))
    }

    /// Parses a field selector: comma-separated `k=v`, `k==v`, `k!=v`; `\` escapes `,`, `=`
    /// and `\` in values.
    pub fn parse_field(s: &str) -> Result<Self, String> {
        parse_field(s).map_err(|e| format!("field selector {s:?}: {e}"))
    }

    /// True if the labels satisfy every requirement (a missing key satisfies `!=`, `notin`
    /// and `!k`, as in Kubernetes).
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
    }

    /// True if the fields satisfy every requirement; `field` returns a field's value, `None`
    /// for a field the object does not have, which compares as the empty string (as
    /// Kubernetes's `fields.Set` does).
    pub fn matches_fields(&self, field: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let v = field(&r.key).unwrap_or_default();
            r.matches(Some(&v))
        })
    }

    /// The keys the selector constrains (for validating field selectors per role).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|r| r.key.as_str())
    }
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        let in_set = |v: &str| self.values.iter().any(|x| x == v);
        match (self.op, value) {
            (Op::Equals | Op::In, Some(v)) => in_set(v),
            (Op::Equals | Op::In, None) => false,
            (Op::NotEquals | Op::NotIn, Some(v)) => !in_set(v),
            (Op::NotEquals | Op::NotIn, None) => true,
            (Op::Exists, v) => v.is_some(),
            (Op::DoesNotExist, v) => v.is_none(),
            (Op::GreaterThan | Op::LessThan, None) => false,
            (op @ (Op::GreaterThan | Op::LessThan), Some(v)) => {
                let (Ok(have), Ok(want)) = (v.parse::<i64>(), self.values[0].parse::<i64>()) else {
                    return false;
                };
                if op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let (k, v) = (&r.key, r.values.join(","));
            match r.op {
                Op::Equals => write!(f, "{k}={v}")?,
                Op::NotEquals => write!(f, "{k}!={v}")?,
                Op::In => write!(f, "{k} in ({v})")?,
                Op::NotIn => write!(f, "{k} notin ({v})")?,
                Op::Exists => write!(f, "{k}")?,
                Op::DoesNotExist => write!(f, "!{k}")?,
                Op::GreaterThan => write!(f, "{k}>{v}")?,
                Op::LessThan => write!(f, "{k}<{v}")?,
            }
        }
        Ok(())
    }
}

// ---- label selectors -------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    In,
    NotIn,
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Comma,
    Open,
    Close,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Token::Ident(s) => return write!(f, "{s:?}"),
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Not => "!",
            Token::Eq => "=",
            Token::DoubleEq => "==",
            Token::NotEq => "!=",
            Token::Gt => ">",
            Token::Lt => "<",
            Token::Comma => ",",
            Token::Open => "(",
            Token::Close => ")",
        };
        write!(f, "'{s}'")
    }
}

/// `labels.Lexer`: identifiers run until whitespace or one of `!=(),<>`.
fn lex(s: &str) -> Result<Vec<Token>, String> {
    let special = |c: char| "!=(),<>".contains(c);
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if special(c) {
            chars.next();
            let next_eq = chars.peek() == Some(&'=');
            out.push(match c {
                '!' if next_eq => {
                    chars.next();
                    Token::NotEq
                }
                '!' => Token::Not,
                '=' if next_eq => {
                    chars.next();
                    Token::DoubleEq
                }
                '=' => Token::Eq,
                '(' => Token::Open,
                ')' => Token::Close,
                ',' => Token::Comma,
                '>' => Token::Gt,
                _ => Token::Lt,
            });
            continue;
        }
        let mut ident = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || special(c) {
                break;
            }
            ident.push(c);
            chars.next();
        }
        out.push(match ident.as_str() {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Ident(ident),
        });
    }
    Ok(out)
}

struct LabelParser {
    tokens: Vec<Token>,
    pos: usize,
}

impl LabelParser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn parse(mut self) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        if self.tokens.is_empty() {
            return Ok(Selector::everything());
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                None => break,
                Some(Token::Comma) if self.peek().is_some() => {}
                Some(Token::Comma) => return Err("expected a requirement after ','".into()),
                Some(t) => return Err(format!("found {t}, expected ','")),
            }
        }
        Ok(Selector { requirements })
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let negated = self.peek() == Some(&Token::Not);
        if negated {
            self.pos += 1;
        }
        let key = match self.next() {
            Some(Token::Ident(k)) => k,
            Some(t) => return Err(format!("found {t}, expected a label key")),
            None => return Err("expected a label key".into()),
        };
        validate_key(&key)?;
        if negated {
            return Ok(Requirement {
                key,
                op: Op::DoesNotExist,
                values: vec![],
            });
        }
        let op = match self.peek() {
            None | Some(Token::Comma) => {
                return Ok(Requirement {
                    key,
                    op: Op::Exists,
                    values: vec![],
                });
            }
            Some(Token::Eq | Token::DoubleEq) => Op::Equals,
            Some(Token::NotEq) => Op::NotEquals,
            Some(Token::In) => Op::In,
            Some(Token::NotIn) => Op::NotIn,
            Some(Token::Gt) => Op::GreaterThan,
            Some(Token::Lt) => Op::LessThan,
            Some(t) => {
                return Err(format!(
                    "found {t}, expected one of =, ==, !=, in, notin, >, <"
                ));
            }
        };
        self.pos += 1;
        let values = match op {
            Op::In | Op::NotIn => self.value_set(&key)?,
            _ => vec![self.exact_value()?],
        };
        for v in &values {
            validate_value(v)?;
        }
        if matches!(op, Op::GreaterThan | Op::LessThan) && values[0].parse::<i64>().is_err() {
            return Err(format!(
                "value {:?} of {key:?} must be an integer for '>' and '<'",
                values[0]
            ));
        }
        Ok(Requirement { key, op, values })
    }

    /// After `=`, `==`, `!=`, `>`, `<`: one value, possibly empty (`a=` selects `a: ""`).
    fn exact_value(&mut self) -> Result<String, String> {
        match self.peek() {
            None | Some(Token::Comma) => Ok(String::new()),
            Some(Token::Ident(v)) => {
                let v = v.clone();
                self.pos += 1;
                Ok(v)
            }
            Some(t) => Err(format!("found {t}, expected a value")),
        }
    }

    /// After `in`/`notin`: `(v1, v2, ...)`, not empty.
    fn value_set(&mut self, key: &str) -> Result<Vec<String>, String> {
        if self.next() != Some(Token::Open) {
            return Err(format!("expected '(' after in/notin of {key:?}"));
        }
        let mut values = Vec::new();
        let mut want_value = true;
        loop {
            match self.next() {
                Some(Token::Ident(v)) if want_value => {
                    values.push(v);
                    want_value = false;
                }
                Some(Token::Comma) => {
                    if want_value {
                        values.push(String::new());
                    }
                    want_value = true;
                }
                Some(Token::Close) => {
                    if want_value && !values.is_empty() {
                        values.push(String::new());
                    }
                    break;
                }
                Some(t) => return Err(format!("found {t} in the value set of {key:?}")),
                None => return Err(format!("missing ')' in the value set of {key:?}")),
            }
        }
        if values.is_empty() {
            return Err(format!(
                "the value set of {key:?} for in/notin must not be empty"
            ));
        }
        Ok(values)
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters
/// (`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`).
fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if p.is_empty() || p.len() > 253 || !p.split('.').all(label_ok) {
            return Err(format!(
                "invalid label key {key:?}: prefix must be a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || !is_qualified_name_part(name) {
        return Err(format!(
            "invalid label key {key:?}: name must be 1-63 characters of [A-Za-z0-9-_.], \
             starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

/// A label value: empty, or like a key's name part.
fn validate_value(v: &str) -> Result<(), String> {
    if v.is_empty() || is_qualified_name_part(v) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {v:?}: must be at most 63 characters of [A-Za-z0-9-_.], \
             starting and ending with an alphanumeric"
        ))
    }
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

// ---- field selectors -------------------------------------------------------------------

fn parse_field(s: &str) -> Result<Selector, String> {
    let mut requirements = Vec::new();
    for term in split_unescaped(s, ',') {
        if term.is_empty() {
            continue;
        }
        let (key, op, value) = split_term(term).ok_or_else(|| {
            format!("can't understand {term:?}: expected key=value or key!=value")
        })?;
        if key.is_empty() {
            return Err(format!("missing field name in {term:?}"));
        }
        let value = unescape(value)?;
        requirements.push(Requirement {
            key: key.to_string(),
            op,
            values: vec![value],
        });
    }
    Ok(Selector { requirements })
}

/// Splits at every `sep` not preceded by an escaping backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `fields.splitTerm`: the first unescaped operator, preferring `!=` and `==` to `=`.
fn split_term(term: &str) -> Option<(&str, Op, &str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        let rest = &term[i..];
        for (tok, op) in [("!=", Op::NotEquals), ("==", Op::Equals), ("=", Op::Equals)] {
            if rest.starts_with(tok) {
                return Some((&term[..i], op, &term[i + tok.len()..]));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`: `\\`, `\,` and `\=` are the only escapes; a bare `,` or `=` in a
/// value is an error.
fn unescape(v: &str) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => return Err(format!("invalid escape sequence '\\{e}' in {v:?}")),
                None => return Err(format!("trailing '\\' in {v:?}")),
            },
            ',' | '=' => return Err(format!("unescaped '{c}' in value {v:?}")),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_cases() {
        let app_web = labels(&[("app", "web"), ("tier", "frontend"), ("n", "5")]);
        let app_db = labels(&[("app", "db")]);
        let none = labels(&[]);
        // (selector, matches app_web, matches app_db, matches none)
        let cases: &[(&str, bool, bool, bool)] = &[
            ("", true, true, true),
            ("app=web", true, false, false),
            ("app==web", true, false, false),
            ("app = web", true, false, false),
            ("app!=web", false, true, true),
            ("app in (web, db)", true, true, false),
            ("app in (web)", true, false, false),
            ("app notin (web)", false, true, true),
            ("app", true, true, false),
            ("!app", false, false, true),
            ("!tier", false, true, true),
            ("app=web,tier=frontend", true, false, false),
            ("app=web, tier!=frontend", false, false, false),
            ("app,!tier", false, true, false),
            ("n>4", true, false, false),
            ("n<5", false, false, false),
            ("tier=", false, false, false),
            ("tier!=", true, true, true),
            ("example.com/app=web", false, false, false),
            ("app in (web,)", true, false, false),
        ];
        for (s, w, d, n) in cases {
            let sel = Selector::parse_label(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(sel.matches_labels(&app_web), *w, "{s} on app_web");
            assert_eq!(sel.matches_labels(&app_db), *d, "{s} on app_db");
            assert_eq!(sel.matches_labels(&none), *n, "{s} on none");
        }
        let empty_value = labels(&[("tier", "")]);
        assert!(
            Selector::parse_label("tier=")
                .unwrap()
                .matches_labels(&empty_value)
        );
        assert!(
            Selector::parse_label("tier in (,x)")
                .unwrap()
                .matches_labels(&empty_value)
        );
    }

    #[test]
    fn label_selector_errors() {
        let cases: &[(&str, &str)] = &[
            ("app in ()", "must not be empty"),
            ("app in web", "expected '('"),
            ("app in (web", "missing ')'"),
            ("app=web,", "expected a requirement after ','"),
            (",app", "expected a label key"),
            ("app web", "expected one of =, ==, !=, in, notin"),
            ("=web", "expected a label key"),
            ("app=we b", "expected ','"),
            ("-app=x", "invalid label key"),
            ("Example.com/app=x", "prefix must be a DNS subdomain"),
            ("app=-x", "invalid label value"),
            ("n>x", "must be an integer"),
            ("app=(x)", "expected a value"),
            ("!app=x", "expected ','"),
        ];
        for (s, want) in cases {
            let e = Selector::parse_label(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
            assert!(e.starts_with("label selector"), "{s}: {e}");
        }
    }

    #[test]
    fn label_selector_display_round_trips() {
        for s in [
            "a=b",
            "a!=b",
            "a in (x,y)",
            "a notin (x)",
            "a",
            "!a",
            "a>3",
            "a=b,!c",
        ] {
            let sel = Selector::parse_label(s).unwrap();
            assert_eq!(Selector::parse_label(&sel.to_string()).unwrap(), sel, "{s}");
        }
    }

    #[test]
    fn field_selector_escapes_and_errors() {
        let sel = Selector::parse_field(r"metadata.name=a\,b\=c\\d").unwrap();
        assert!(sel.matches_fields(|_| Some(r"a,b=c\d".to_string())));
        let sel = Selector::parse_field("a!=b").unwrap();
        assert!(!sel.matches_fields(|_| Some("b".into())));
        assert!(
            sel.matches_fields(|_| None),
            "a missing field compares as empty"
        );

        let cases: &[(&str, &str)] = &[
            ("metadata.name", "can't understand"),
            ("=x", "missing field name"),
            ("a=b=c", "unescaped '='"),
            (r"a=b\x", "invalid escape sequence"),
            (r"a=b\", "trailing"),
        ];
        for (s, want) in cases {
            let e = Selector::parse_field(s).expect_err(s);
            assert!(
                e.contains(want) && e.starts_with("field selector"),
                "{s}: {e}"
            );
        }
    }
}
