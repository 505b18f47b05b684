//! Environment variables in `external_labels` values, as Prometheus 3 expands them when it
//! loads a file (`config.Load`, Go's `os.Expand`): `${VAR}` and `$VAR` (a name of letters,
//! digits and `_`) become the variable's value, empty when unset; `$$` becomes `$`; a `$` not
//! followed by a name stays, and malformed `${...` is dropped, as `os.Expand` does.

/// Expands `s` with `env`.
pub(super) fn expand(s: &str, env: &impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        let (name, len) = shell_name(rest);
        if name == "$" {
            // Prometheus maps the name "$" to a literal `$`.
            out.push('$');
        } else if !name.is_empty() {
            out.push_str(&env(name).unwrap_or_default());
        } else if len == 0 {
            // Not followed by a name: the `$` stays.
            out.push('$');
        }
        // Otherwise bad syntax (`${}`, `${x`): Go drops what it read.
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

/// Go's `os.getShellName`: the name after a `$` and how many bytes it takes.
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    match b.first() {
        None => ("", 0),
        Some(b'{') => {
            // `${}` and a bad name are consumed without output (Go: "bad syntax").
            if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
                return (&s[1..2], 3);
            }
            match s[1..].find('}') {
                Some(end) if end > 0 => (&s[1..1 + end], end + 2),
                Some(_) => ("", 2),
                None => ("", 1),
            }
        }
        Some(&c) if is_special(c) => (&s[..1], 1),
        Some(_) => {
            let end = b
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                .unwrap_or(b.len());
            (&s[..end], end)
        }
    }
}

/// Go's `isShellSpecialVar`.
fn is_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_as_prometheus_does() {
        // The cases of Prometheus's external_labels.good.yml (TEST=TestValue), and more.
        let env = |k: &str| match k {
            "TEST" => Some("TestValue".to_string()),
            "CLUSTER_NAME" => Some("eu-1".to_string()),
            _ => None,
        };
        let cases = [
            ("foo", "foo"),
            ("${TEST}", "TestValue"),
            ("foo${TEST}bar", "fooTestValuebar"),
            ("foo$${TEST}", "foo${TEST}"),
            ("foo$$bar", "foo$bar"),
            ("$TEST", "TestValue"),
            ("$TEST-x", "TestValue-x"),
            ("${UNSET}", ""),
            ("a-${CLUSTER_NAME}-b", "a-eu-1-b"),
            ("price: 5$", "price: 5$"),
            ("a $ b", "a $ b"),
            ("${TEST", "TEST"),
            ("x${}y", "xy"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &env), want, "{input}");
        }
    }
}
