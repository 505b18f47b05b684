//! Label and field selectors, parsed and matched the way the API server does.
//!
//! Label selectors support every set-based form (`a=b`, `a==b`, `a!=b`, `a`, `!a`,
//! `a in (x,y)`, `a notin (x,y)`); field selectors support `=`, `==` and `!=` on any dotted
//! path (`metadata.name`, `metadata.namespace`, `spec.nodeName`, `status.phase`, ...). A real
//! API server only accepts a few field paths per kind; the double accepts any, which is enough
//! to check what a client sends and never rejects what a real server would accept.

use serde_json::Value;

/// A label selector; the empty selector matches everything.
#[derive(Debug, Default)]
pub(super) struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

#[derive(Debug, PartialEq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl LabelSelector {
    pub(super) fn parse(selector: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for term in split_top_level(selector) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(term)?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether an object with these `metadata.labels` is selected.
    pub(super) fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                LabelRequirement::Equals(k, v) => label(k) == Some(v.as_str()),
                LabelRequirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
                LabelRequirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
                LabelRequirement::NotIn(k, vs) => {
                    !label(k).is_some_and(|l| vs.iter().any(|v| v == l))
                }
                LabelRequirement::Exists(k) => label(k).is_some(),
                LabelRequirement::NotExists(k) => label(k).is_none(),
            })
    }
}

/// Splits on commas that are not inside parentheses (`a in (x,y),b`).
fn split_top_level(selector: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
}

fn parse_requirement(term: &str) -> Result<LabelRequirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelRequirement::NotExists(key_of(key, term)?));
    }
    if let Some(open) = term.find('(') {
        let close = term
            .rfind(')')
            .filter(|close| *close > open && term[close + 1..].trim().is_empty())
            .ok_or_else(|| format!("unbalanced parentheses in {term:?}"))?;
        let values: Vec<String> = term[open + 1..close]
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        let head = term[..open].trim_end();
        return match head.rsplit_once(char::is_whitespace) {
            Some((key, "in")) => Ok(LabelRequirement::In(key_of(key, term)?, values)),
            Some((key, "notin")) => Ok(LabelRequirement::NotIn(key_of(key, term)?, values)),
            _ => Err(format!("expected `in` or `notin` in {term:?}")),
        };
    }
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(LabelRequirement::NotEquals(
            key_of(key, term)?,
            value.trim().to_owned(),
        ));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(LabelRequirement::Equals(
            key_of(key, term)?,
            value.trim().to_owned(),
        ));
    }
    Ok(LabelRequirement::Exists(key_of(term, term)?))
}

fn key_of(key: &str, term: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!("invalid label key in {term:?}"));
    }
    Ok(key.to_owned())
}

/// A field selector; the empty selector matches everything.
#[derive(Debug, Default)]
pub(super) struct FieldSelector {
    requirements: Vec<(Vec<String>, bool, String)>,
}

impl FieldSelector {
    pub(super) fn parse(selector: &str) -> Result<FieldSelector, String> {
        let mut requirements = Vec::new();
        for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, equal, value) = if let Some((path, value)) = term.split_once("!=") {
                (path, false, value)
            } else if let Some((path, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                (path, true, value)
            } else {
                return Err(format!("invalid field selector term {term:?}"));
            };
            let path: Vec<String> = path.trim().split('.').map(str::to_owned).collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("invalid field path in {term:?}"));
            }
            requirements.push((path, equal, value.trim().to_owned()));
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether the object is selected; a missing field compares as the empty string.
    pub(super) fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(path, equal, value)| {
            let field = path
                .iter()
                .try_fold(object, |v, segment| v.get(segment))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (field == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels},
               "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selector_forms() {
        let object = pod(json!({"app": "web", "tier": "front"}));
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("app in (db, web)", true),
            ("app in (db)", false),
            ("app notin (db)", true),
            ("missing notin (db)", true),
            ("app notin (web,db)", false),
            ("app in (db,web),tier=front", true),
            ("app in (db,web), tier=back", false),
        ];
        for (selector, expected) in cases {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&object), expected, "{selector:?}");
        }
    }

    #[test]
    fn invalid_label_selectors_are_rejected() {
        for selector in ["app in (x", "app foo (x)", "=x", "a b=c"] {
            assert!(LabelSelector::parse(selector).is_err(), "{selector:?}");
        }
    }

    #[test]
    fn field_selector_forms() {
        let object = pod(json!({}));
        let cases = [
            ("metadata.name=p", true),
            ("metadata.name==q", false),
            ("metadata.namespace!=ns", false),
            ("spec.nodeName=n1,status.phase=Running", true),
            ("spec.nodeName=", false),
            ("spec.missing=", true),
            ("spec.missing!=", false),
        ];
        for (selector, expected) in cases {
            let parsed = FieldSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&object), expected, "{selector:?}");
        }
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
