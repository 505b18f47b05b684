//! Label sets: sorted by name, unique names, cheap to clone (one `Arc`).
//!
//! `Labels` is immutable; `LabelsBuilder` is the mutable form used by relabeling and by the
//! scrape path, mirroring Prometheus's `labels.Labels` / `labels.Builder`.

use std::fmt;
use std::sync::Arc;

/// Prometheus's reserved label names.
pub const METRIC_NAME: &str = "__name__";
pub const ADDRESS: &str = "__address__";
pub const SCHEME: &str = "__scheme__";
pub const METRICS_PATH: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT: &str = "__scrape_timeout__";
pub const PARAM_PREFIX: &str = "__param_";
pub const META_PREFIX: &str = "__meta_";
pub const RESERVED_PREFIX: &str = "__";
pub const JOB: &str = "job";
/// promshard's: set by the master on a target that must not be scraped, with the error to
/// report instead (a job over its `target_limit`, as Prometheus's forced scrape error).
pub const FORCED_ERROR: &str = "__promshard_forced_error__";
pub const INSTANCE: &str = "instance";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A sorted set of labels with unique names.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Arc<[Label]>);

impl Labels {
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Builds a label set from pairs; later duplicates win, empty values are dropped.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n.into(), v.into());
        }
        b.labels()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.0.to_vec(),
        }
    }

    /// The labels without any `__`-prefixed name: what a target exposes as series labels.
    pub fn without_reserved(&self) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| !l.name.starts_with(RESERVED_PREFIX))
                .cloned()
                .collect(),
        )
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Mutable label set kept sorted by name. Setting an empty value deletes the label, as in
/// Prometheus (`labels.Builder.Set`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        LabelsBuilder::default()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.labels.binary_search_by(|l| l.name.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).ok().map(|i| self.labels[i].value.as_str())
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.find(&name) {
            Ok(i) if value.is_empty() => {
                self.labels.remove(i);
            }
            Ok(i) => self.labels[i].value = value,
            Err(_) if value.is_empty() => {}
            Err(i) => self.labels.insert(i, Label { name, value }),
        }
    }

    pub fn del(&mut self, name: &str) {
        if let Ok(i) = self.find(name) {
            self.labels.remove(i);
        }
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) {
        self.labels.retain(|l| keep(l));
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn labels(&self) -> Labels {
        Labels(self.labels.clone().into())
    }

    pub fn into_labels(self) -> Labels {
        Labels(self.labels.into())
    }
}

impl From<Labels> for LabelsBuilder {
    fn from(l: Labels) -> Self {
        l.builder()
    }
}

/// True for names matching `[a-zA-Z_][a-zA-Z0-9_]*` (Prometheus's legacy label name rule).
pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// True for names matching `[a-zA-Z_:][a-zA-Z0-9_:]*` (Prometheus's legacy metric name rule).
pub fn is_valid_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_keeps_sorted_and_empty_deletes() {
        let mut b = LabelsBuilder::new();
        b.set("b", "2");
        b.set("a", "1");
        b.set("c", "3");
        b.set("b", "");
        let l = b.labels();
        let names: Vec<_> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(l.get("c"), Some("3"));
        assert_eq!(l.get("b"), None);
    }

    #[test]
    fn without_reserved_drops_double_underscore() {
        let l = Labels::from_pairs([("__address__", "x:1"), ("job", "j"), ("__meta_a", "b")]);
        assert_eq!(l.without_reserved(), Labels::from_pairs([("job", "j")]));
    }

    #[test]
    fn name_validity() {
        assert!(is_valid_label_name("_a1"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name("a:b"));
        assert!(is_valid_metric_name("a:b_c"));
        assert!(!is_valid_metric_name(""));
    }
}
