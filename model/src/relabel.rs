//! Relabeling (`relabel_configs`, `metric_relabel_configs`, `write_relabel_configs`): the rule
//! type with its YAML form and load-time validation, and the engine that applies rules to a
//! [`LabelsBuilder`]. A port of Prometheus's `model/relabel/relabel.go`; the tests beside it
//! port `relabel_test.go`.
//!
//! # Regular expressions
//!
//! Prometheus compiles every `regex` with Go's `regexp` (RE2 syntax) anchored as `^(?s:…)$`.
//! Patterns are rewritten to Rust `regex` syntax with the same meaning first (`relabel_re2.rs`);
//! notably `\d \s \w \b` stay ASCII as in RE2, so `\d` does not match `٣`.
//!
//! # Label names
//!
//! Names are checked with the rule's [`ValidationScheme`], which loading a config sets to the
//! job's `metric_name_validation_scheme` (UTF-8 unless configured, as Prometheus 3): any
//! non-empty name then, `[a-zA-Z_][a-zA-Z0-9_]*` with `legacy`. A rule built outside a config
//! defaults to the legacy rule.

use std::fmt;
use std::sync::LazyLock;

use crate::config::ValidationScheme;
use crate::labels::{Label, Labels, LabelsBuilder};

/// What a relabel rule does. YAML spelling is Prometheus's, and like Prometheus any letter case
/// is accepted on input (`action: LabelMap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Action {
    /// Sets `target_label` to the expanded `replacement` if `regex` matches the joined value.
    Replace,
    /// Drops the label set unless `regex` matches the joined value.
    Keep,
    /// Drops the label set if `regex` matches the joined value.
    Drop,
    /// Drops the label set unless the joined value equals the value of `target_label`.
    KeepEqual,
    /// Drops the label set if the joined value equals the value of `target_label`.
    DropEqual,
    /// Sets `target_label` to the MD5 of the joined value modulo `modulus`.
    HashMod,
    /// Copies every label whose name matches `regex` to the name `replacement` expands to.
    LabelMap,
    /// Removes every label whose name matches `regex`.
    LabelDrop,
    /// Removes every label whose name does not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the lower-cased joined value.
    Lowercase,
    /// Sets `target_label` to the upper-cased joined value.
    Uppercase,
}

impl Action {
    const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The YAML spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Action {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let lower = s.to_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| format!("unknown relabel action {s:?}"))
    }
}

/// A compiled regex anchored as `^(?s:...)$`, that serializes back to the original text.
#[derive(Clone, Debug)]
pub struct Regex {
    original: String,
    compiled: regex::Regex,
    /// Go's capture group names with their indexes (see `relabel_re2.rs`).
    names: Vec<(String, usize)>,
    /// True only for the instance behind [`RelabelConfig::default`]. Prometheus compares the
    /// default regex by pointer, so an explicit `regex: (.*)` on `keepequal` is rejected and a
    /// default one is omitted when serializing; this flag keeps both behaviours.
    is_default: bool,
}

static DEFAULT_REGEX: LazyLock<Regex> = LazyLock::new(|| Regex {
    is_default: true,
    // Invariant: the default pattern is a constant that compiles.
    ..Regex::new("(.*)").expect("default relabel regex compiles")
});

impl Regex {
    /// Compiles `pattern` with RE2 (Go) syntax, anchored at both ends.
    pub fn new(pattern: &str) -> Result<Regex, regex::Error> {
        // Like Go, anchor first and parse the whole: `\Q` or `\` at the end affects the anchor.
        let re2::Translated {
            pattern: rust,
            names,
        } = re2::translate(&format!("^(?s:{pattern})$"))?;
        Ok(Regex {
            original: pattern.to_string(),
            compiled: regex::Regex::new(&rust)?,
            names,
            is_default: false,
        })
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.compiled.is_match(s)
    }

    /// The pattern as written in the configuration, without the anchors.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    fn is_default(&self) -> bool {
        self.is_default
    }

    /// Go's `Regexp.Expand`: `$name` or `${name}` where a name is a run of letters, digits and `_`
    /// (so `$1x` is the group named `1x`), `$$` is `$`, and a malformed reference is kept as text.
    /// A number refers to a group by index; unknown or non-participating groups expand to nothing.
    fn expand(&self, template: &str, caps: &regex::Captures<'_>, out: &mut String) {
        static REFERENCE: LazyLock<regex::Regex> = LazyLock::new(|| {
            // Invariant: a constant pattern. Go's `unicode.IsLetter`/`IsDigit` are \pL / \p{Nd}.
            regex::Regex::new(r"^(?:\{([\pL\p{Nd}_]+)\}|([\pL\p{Nd}_]+))")
                .expect("static regex compiles")
        });
        let mut rest = template;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            rest = &rest[pos + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            let Some(m) = REFERENCE.captures(rest) else {
                out.push('$');
                continue;
            };
            let name = m.get(1).or_else(|| m.get(2)).map_or("", |g| g.as_str());
            rest = &rest[m.get(0).map_or(0, |g| g.end())..];
            let is_index = name.bytes().all(|b| b.is_ascii_digit())
                && (name.len() == 1 || !name.starts_with('0'))
                && name.len() <= 8;
            let group = if is_index {
                name.parse::<usize>().ok().and_then(|i| caps.get(i))
            } else {
                // The first group of that name that took part in the match, as in Go.
                self.names
                    .iter()
                    .filter(|(n, _)| n == name)
                    .find_map(|(_, i)| caps.get(*i))
            };
            out.push_str(group.map_or("", |g| g.as_str()));
        }
        out.push_str(rest);
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.original == other.original
    }
}

impl fmt::Display for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl serde::Serialize for Regex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.original)
    }
}

impl<'de> serde::Deserialize<'de> for Regex {
    /// A string; `regex:` with no value is the empty regex, as in Prometheus (not the default).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = crate::yaml::string(d)?;
        Regex::new(&s).map_err(|e| serde::de::Error::custom(format!("invalid regex {s:?}: {e}")))
    }
}

/// One relabel rule, as in `relabel_configs`. Missing fields take Prometheus's defaults.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator`; a missing label counts as empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[serde(deserialize_with = "crate::yaml::string_vec")]
    pub source_labels: Vec<String>,
    /// Put between the source values. Default `;`.
    #[serde(skip_serializing_if = "is_default_separator")]
    #[serde(deserialize_with = "crate::yaml::string")]
    pub separator: String,
    /// The label written by `replace`, `hashmod`, `lowercase`, `uppercase`, and compared by
    /// `keepequal`/`dropequal`. For `replace` it may reference groups (`${1}`).
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "crate::yaml::string")]
    pub target_label: String,
    /// Matched against the joined value (or label names for `label*` actions). Default `(.*)`.
    #[serde(skip_serializing_if = "Regex::is_default")]
    pub regex: Regex,
    /// Required for `hashmod`.
    #[serde(skip_serializing_if = "is_zero")]
    pub modulus: u64,
    /// Template expanded with the regex groups (`$1`, `${name}`). Default `$1`.
    #[serde(skip_serializing_if = "is_default_replacement")]
    #[serde(deserialize_with = "crate::yaml::string")]
    pub replacement: String,
    /// Default `replace`.
    pub action: Action,
    /// Which label names are valid (Prometheus's `NameValidationScheme`, not in the YAML):
    /// set from the job's `metric_name_validation_scheme` when a config is loaded.
    #[serde(skip)]
    pub name_validation: ValidationScheme,
}

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

fn is_default_separator(s: &str) -> bool {
    s == DEFAULT_SEPARATOR
}

fn is_default_replacement(s: &str) -> bool {
    s == DEFAULT_REPLACEMENT
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            target_label: String::new(),
            regex: DEFAULT_REGEX.clone(),
            modulus: 0,
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
            name_validation: ValidationScheme::default(),
        }
    }
}

impl RelabelConfig {
    /// Prometheus's load-time checks (`Config.Validate`) under the rule's name validation
    /// scheme, in the same order and with the same messages.
    pub fn validate(&self) -> Result<(), String> {
        use Action::*;
        let a = self.action;
        let target = &self.target_label;
        let scheme = self.name_validation;
        let is_valid_label_name = |n: &str| scheme.is_valid_label_name(n);
        // A name that may hold `$1`/`${name}` references.
        let is_valid_name_template = |n: &str| match scheme {
            ValidationScheme::Utf8 => !n.is_empty(),
            ValidationScheme::Legacy => is_valid_legacy_name_template(n),
        };
        // Prometheus checks these while decoding `source_labels` (`model.LabelName`).
        if let Some(bad) = self.source_labels.iter().find(|n| !is_valid_label_name(n)) {
            return Err(format!("{bad:?} is not a valid label name"));
        }
        if a == HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let writes_target = matches!(a, Replace | HashMod | Lowercase | Uppercase);
        if (writes_target || matches!(a, KeepEqual | DropEqual)) && target.is_empty() {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        let invalid_target = || {
            Err(format!(
                "{target:?} is invalid 'target_label' for {a} action"
            ))
        };
        if a == Replace && !target.contains('$') && !is_valid_label_name(target) {
            return invalid_target();
        }
        if a == Replace && target.contains('$') && !is_valid_name_template(target) {
            return invalid_target();
        }
        let copies_value = matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual);
        if copies_value && !is_valid_label_name(target) {
            return invalid_target();
        }
        if copies_value && self.replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == LabelMap && !is_valid_name_template(&self.replacement) {
            let r = &self.replacement;
            return Err(format!("{r:?} is invalid 'replacement' for {a} action"));
        }
        if a == HashMod && !is_valid_label_name(target) {
            return invalid_target();
        }
        let default_sep_mod_repl = self.modulus == 0
            && self.separator == DEFAULT_SEPARATOR
            && self.replacement == DEFAULT_REPLACEMENT;
        if matches!(a, KeepEqual | DropEqual) && !(self.regex.is_default() && default_sep_mod_repl)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && !(self.source_labels.is_empty() && target.is_empty() && default_sep_mod_repl)
        {
            return Err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}

/// Prometheus's `relabelTargetLegacy`: a label name that may contain `$1`/`${name}` references.
fn is_valid_legacy_name_template(s: &str) -> bool {
    static TEMPLATE: LazyLock<regex::Regex> = LazyLock::new(|| {
        // Invariant: a constant pattern (RE2's ASCII `\w` spelled out).
        regex::Regex::new(
            r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$",
        )
        .expect("static regex compiles")
    });
    TEMPLATE.is_match(s)
}

/// What one rule did, for an "explain" view of target or metric relabeling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleTrace {
    /// Position of the rule in the list.
    pub index: usize,
    pub action: Action,
    /// False if this rule dropped the label set (it is then the last entry).
    pub kept: bool,
    pub labels_after: Labels,
}

/// Applies configs in order; returns false if the label set was dropped (by keep, drop,
/// keepequal or dropequal).
pub fn process(configs: &[RelabelConfig], lb: &mut LabelsBuilder) -> bool {
    configs.iter().all(|cfg| relabel(cfg, lb))
}

/// Same as [`process`], also returning one entry per rule applied: which rule dropped the label
/// set (if any), and the labels after each rule.
pub fn process_traced(configs: &[RelabelConfig], lb: &mut LabelsBuilder) -> (bool, Vec<RuleTrace>) {
    let mut trace = Vec::with_capacity(configs.len());
    for (index, cfg) in configs.iter().enumerate() {
        let kept = relabel(cfg, lb);
        trace.push(RuleTrace {
            index,
            action: cfg.action,
            kept,
            labels_after: lb.labels(),
        });
        if !kept {
            return (false, trace);
        }
    }
    (true, trace)
}

/// One rule (Prometheus's `relabel`). Returns false if the label set is dropped.
fn relabel(cfg: &RelabelConfig, lb: &mut LabelsBuilder) -> bool {
    let val = cfg
        .source_labels
        .iter()
        .map(|n| lb.get(n).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(&cfg.separator);
    let target = || cfg.target_label.clone();
    match cfg.action {
        Action::Drop => return !cfg.regex.is_match(&val),
        Action::Keep => return cfg.regex.is_match(&val),
        Action::DropEqual => return lb.get(&cfg.target_label).unwrap_or("") != val,
        Action::KeepEqual => return lb.get(&cfg.target_label).unwrap_or("") == val,
        Action::Replace => {
            // Prometheus has a fast path here for an empty value and the default regex; it
            // gives the same result as this general path for any valid config.
            let Some(caps) = cfg.regex.compiled.captures(&val) else {
                return true;
            };
            let mut name = String::new();
            cfg.regex.expand(&cfg.target_label, &caps, &mut name);
            if !cfg.name_validation.is_valid_label_name(&name) {
                return true;
            }
            let mut value = String::new();
            cfg.regex.expand(&cfg.replacement, &caps, &mut value);
            // An empty value deletes the label.
            lb.set(name, value);
        }
        Action::Lowercase => lb.set(target(), go_to_lower(&val)),
        Action::Uppercase => lb.set(target(), go_to_upper(&val)),
        Action::HashMod => {
            use md5::Digest;
            let sum = md5::Md5::digest(val.as_bytes());
            let mut tail = [0u8; 8];
            // Only the last 8 bytes, to give the same result as earlier Prometheus versions.
            tail.copy_from_slice(&sum[8..]);
            // A zero modulus fails validation; unvalidated, it leaves the labels alone rather
            // than panic as Prometheus would.
            if let Some(m) = u64::from_be_bytes(tail).checked_rem(cfg.modulus) {
                lb.set(target(), m.to_string());
            }
        }
        Action::LabelMap => {
            // Like Go's `Builder.Range`, iterate over a snapshot: labels written here are not
            // visited again, and values are the ones from before the rule. Order is by name;
            // Prometheus visits labels added earlier in the same builder last.
            let snapshot: Vec<Label> = lb.iter().cloned().collect();
            for l in snapshot {
                if cfg.regex.is_match(&l.name) {
                    // Go's `ReplaceAllString`: one expansion of the whole name, unless the pattern
                    // escapes its anchors (`a)|(b`).
                    let name = cfg
                        .regex
                        .compiled
                        .replace_all(&l.name, |caps: &regex::Captures| {
                            let mut out = String::new();
                            cfg.regex.expand(&cfg.replacement, caps, &mut out);
                            out
                        });
                    // As in Prometheus, the name is not checked here; the scrape rejects it.
                    lb.set(name.into_owned(), l.value);
                }
            }
        }
        Action::LabelDrop => lb.retain(|l| !cfg.regex.is_match(&l.name)),
        Action::LabelKeep => lb.retain(|l| cfg.regex.is_match(&l.name)),
    }
    true
}

/// Go's `strings.ToLower`: per-character simple case mapping, no context (`Σ` → `σ` even at
/// the end of a word, as opposed to Rust's `str::to_lowercase`).
fn go_to_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut full = c.to_lowercase();
            match (full.next(), full.next()) {
                (Some(l), None) => l,
                // U+0130 is the only character whose full mapping has two characters.
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: simple case mapping, so `ß` stays `ß` (Rust gives `SS`).
fn go_to_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut full = c.to_uppercase();
            match (full.next(), full.next()) {
                (Some(u), None) => u,
                // Where the full mapping has several characters, the simple one is the
                // character itself except for Greek letters with ypogegrammeni.
                _ => match c as u32 {
                    0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => {
                        char::from_u32(c as u32 + 8)
                    }
                    0x1FB3 | 0x1FC3 | 0x1FF3 => char::from_u32(c as u32 + 9),
                    _ => None,
                }
                .unwrap_or(c),
            }
        })
        .collect()
}

#[path = "relabel_re2.rs"]
mod re2;

#[cfg(test)]
#[path = "relabel_tests.rs"]
mod tests;
