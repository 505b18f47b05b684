//! Tests for `relabel.rs`. `relabel_cases_from_prometheus` ports every case of `TestRelabel`
//! in prometheus/prometheus `model/relabel/relabel_test.go` with identical inputs and outputs
//! (three UTF-8 name cases are adjusted to legacy name validation, see there).

use super::*;

type Pairs = &'static [(&'static str, &'static str)];

fn labels(pairs: Pairs) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn re(s: &str) -> Regex {
    Regex::new(s).unwrap()
}

/// Builder for rules in tests; unset fields keep Prometheus's defaults, as the Go test does.
fn rule(action: Action) -> RelabelConfig {
    RelabelConfig {
        action,
        ..RelabelConfig::default()
    }
}

impl RelabelConfig {
    fn src(mut self, names: &[&str]) -> Self {
        self.source_labels = names.iter().map(|s| s.to_string()).collect();
        self
    }
    fn re(mut self, r: &str) -> Self {
        self.regex = re(r);
        self
    }
    fn target(mut self, t: &str) -> Self {
        self.target_label = t.to_string();
        self
    }
    fn repl(mut self, r: &str) -> Self {
        self.replacement = r.to_string();
        self
    }
    fn modulus(mut self, m: u64) -> Self {
        self.modulus = m;
        self
    }
}

use Action::*;

struct Case {
    input: Pairs,
    rules: Vec<RelabelConfig>,
    /// `None`: the label set is dropped.
    output: Option<Pairs>,
}

fn case(input: Pairs, rules: Vec<RelabelConfig>, output: Option<Pairs>) -> Case {
    Case {
        input,
        rules,
        output,
    }
}

const FOO_BAR_BAZ: Pairs = &[("a", "foo"), ("b", "bar"), ("c", "baz")];
const PORTS: Pairs = &[
    ("__tmp_port", "1234"),
    ("__port1", "1234"),
    ("__port2", "5678"),
];
const LINES: Pairs = &[("a", "line1\nline2"), ("b", "bar"), ("c", "baz")];

fn prometheus_cases() -> Vec<Case> {
    vec![
        case(
            FOO_BAR_BAZ,
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re("f(.*)")
                    .target("d")
                    .repl("ch${1}-ch${1}"),
            ],
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
        ),
        case(
            FOO_BAR_BAZ,
            vec![
                rule(Replace)
                    .src(&["a", "b"])
                    .re("f(.*);(.*)r")
                    .target("a")
                    .repl("b${1}${2}m"),
                rule(Replace)
                    .src(&["c", "a"])
                    .re("(b).*b(.*)ba(.*)")
                    .target("d")
                    .repl("$1$2$2$3"),
            ],
            Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
        ),
        case(
            &[("a", "foo")],
            vec![
                rule(Drop).src(&["a"]).re(".*o.*"),
                rule(Replace)
                    .src(&["a"])
                    .re("f(.*)")
                    .target("d")
                    .repl("ch$1-ch$1"),
            ],
            None,
        ),
        case(
            &[("a", "foo"), ("b", "bar")],
            vec![rule(Drop).src(&["a"]).re(".*o.*")],
            None,
        ),
        case(
            &[("a", "abc")],
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re(".*(b).*")
                    .target("d")
                    .repl("$1"),
            ],
            Some(&[("a", "abc"), ("d", "b")]),
        ),
        case(
            &[("a", "foo")],
            vec![rule(Drop).src(&["a"]).re("no-match")],
            Some(&[("a", "foo")]),
        ),
        case(
            &[("a", "foo")],
            vec![rule(Drop).src(&["a"]).re("f|o")],
            Some(&[("a", "foo")]),
        ),
        case(
            &[("a", "foo")],
            vec![rule(Keep).src(&["a"]).re("no-match")],
            None,
        ),
        case(
            &[("a", "foo")],
            vec![rule(Keep).src(&["a"]).re("f.*")],
            Some(&[("a", "foo")]),
        ),
        // No replacement must be applied if there is no match.
        case(
            &[("a", "boo")],
            vec![rule(Replace).src(&["a"]).re("f").target("b").repl("bar")],
            Some(&[("a", "boo")]),
        ),
        // Blank replacement should delete the label.
        case(
            &[("a", "foo"), ("f", "baz")],
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re("(f).*")
                    .target("$1")
                    .repl("$2"),
            ],
            Some(&[("a", "foo")]),
        ),
        case(
            FOO_BAR_BAZ,
            vec![rule(HashMod).src(&["c"]).target("d").modulus(1000)],
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
        ),
        case(
            &[("a", "foo\nbar")],
            vec![rule(HashMod).src(&["a"]).target("b").modulus(1000)],
            Some(&[("a", "foo\nbar"), ("b", "734")]),
        ),
        case(
            &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            vec![rule(LabelMap).re("(b.*)").repl("bar_${1}")],
            Some(&[
                ("a", "foo"),
                ("b1", "bar"),
                ("b2", "baz"),
                ("bar_b1", "bar"),
                ("bar_b2", "baz"),
            ]),
        ),
        case(
            &[
                ("a", "foo"),
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc"),
            ],
            vec![rule(LabelMap).re("__meta_(my.*)").repl("${1}")],
            Some(&[
                ("a", "foo"),
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc"),
                ("my_bar", "aaa"),
                ("my_baz", "bbb"),
            ]),
        ),
        // Valid case.
        case(
            &[("a", "some-name-value")],
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re("some-([^-]+)-([^,]+)")
                    .repl("${2}")
                    .target("${1}"),
            ],
            Some(&[("a", "some-name-value"), ("name", "value")]),
        ),
        // Invalid replacement "".
        case(
            &[("a", "some-name-value")],
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re("some-([^-]+)-([^,]+)")
                    .repl("${3}")
                    .target("${1}"),
            ],
            Some(&[("a", "some-name-value")]),
        ),
        // Invalid target_labels.
        case(
            &[("a", "some-name-0")],
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re("some-([^-]+)-([^,]+)")
                    .repl("${1}")
                    .target("${3}"),
                rule(Replace)
                    .src(&["a"])
                    .re("some-([^-]+)-([^,]+)")
                    .repl("${1}")
                    .target("${3}"),
                rule(Replace)
                    .src(&["a"])
                    .re("some-([^-]+)(-[^,]+)")
                    .repl("${1}")
                    .target("${3}"),
            ],
            Some(&[("a", "some-name-0")]),
        ),
        // More complex real-life like usecase.
        case(
            &[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")],
            vec![
                rule(Replace)
                    .src(&["__meta_sd_tags"])
                    .re("(?:.+,|^)path:(/[^,]+).*")
                    .repl("${1}")
                    .target("__metrics_path__"),
                rule(Replace)
                    .src(&["__meta_sd_tags"])
                    .re("(?:.+,|^)job:([^,]+).*")
                    .repl("${1}")
                    .target("job"),
                rule(Replace)
                    .src(&["__meta_sd_tags"])
                    .re("(?:.+,|^)label:([^=]+)=([^,]+).*")
                    .repl("${2}")
                    .target("${1}"),
            ],
            Some(&[
                ("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"),
                ("__metrics_path__", "/secret"),
                ("job", "some-job"),
                ("foo", "bar"),
            ]),
        ),
        // From https://github.com/prometheus/prometheus/issues/12283
        case(
            &[
                ("__meta_kubernetes_pod_container_port_name", "foo"),
                ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
            ],
            vec![
                rule(LabelDrop).re("^__meta_kubernetes_pod_container_port_name$"),
                rule(Replace)
                    .src(&["__meta_kubernetes_pod_annotation_XXX_metrics_port"])
                    .re("(.+)")
                    .repl("metrics")
                    .target("__meta_kubernetes_pod_container_port_name"),
                rule(Keep)
                    .src(&["__meta_kubernetes_pod_container_port_name"])
                    .re("^metrics$"),
            ],
            Some(&[
                ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
                ("__meta_kubernetes_pod_container_port_name", "metrics"),
            ]),
        ),
        case(
            &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            vec![rule(LabelKeep).re("(b.*)")],
            Some(&[("b1", "bar"), ("b2", "baz")]),
        ),
        case(
            &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            vec![rule(LabelDrop).re("(b.*)")],
            Some(&[("a", "foo")]),
        ),
        case(
            &[("foo", "bAr123Foo")],
            vec![
                rule(Uppercase).src(&["foo"]).target("foo_uppercase"),
                rule(Lowercase).src(&["foo"]).target("foo_lowercase"),
            ],
            Some(&[
                ("foo", "bAr123Foo"),
                ("foo_lowercase", "bar123foo"),
                ("foo_uppercase", "BAR123FOO"),
            ]),
        ),
        case(
            PORTS,
            vec![rule(KeepEqual).src(&["__tmp_port"]).target("__port1")],
            Some(PORTS),
        ),
        case(
            PORTS,
            vec![rule(DropEqual).src(&["__tmp_port"]).target("__port1")],
            None,
        ),
        case(
            PORTS,
            vec![rule(DropEqual).src(&["__tmp_port"]).target("__port2")],
            Some(PORTS),
        ),
        case(
            PORTS,
            vec![rule(KeepEqual).src(&["__tmp_port"]).target("__port2")],
            None,
        ),
        case(
            LINES,
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re("line1.*line2")
                    .target("d")
                    .repl("match${1}"),
            ],
            Some(&[
                ("a", "line1\nline2"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "match"),
            ]),
        ),
        // Replace on source label with UTF-8 characters. (Legacy validation rejects the source
        // label name at load time; processing is the same.)
        case(
            &[("utf-8.label", "line1\nline2"), ("b", "bar"), ("c", "baz")],
            vec![
                rule(Replace)
                    .src(&["utf-8.label"])
                    .re("line1.*line2")
                    .target("d")
                    .repl("match${1}"),
            ],
            Some(&[
                ("utf-8.label", "line1\nline2"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "match"),
            ]),
        ),
        // Replace targetLabel with UTF-8 characters. Upstream (UTF-8 validation) adds
        // `utf-8.label="match"`; with legacy names the target is invalid and nothing changes.
        case(
            LINES,
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re("line1.*line2")
                    .target("utf-8.label")
                    .repl("match${1}"),
            ],
            Some(LINES),
        ),
        // Replace targetLabel with UTF-8 characters and $variable. Same adjustment as above.
        case(
            LINES,
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re("line1.*line2")
                    .target("utf-8.label${1}")
                    .repl("match${1}"),
            ],
            Some(LINES),
        ),
        // Replace targetLabel with UTF-8 characters and various $var styles.
        case(
            LINES,
            vec![
                rule(Replace)
                    .src(&["a"])
                    .re("(line1).*(?<second>line2)")
                    .target("label1_${1}")
                    .repl("val_${second}"),
                rule(Replace)
                    .src(&["a"])
                    .re("(line1).*(?<second>line2)")
                    .target("label2_$1")
                    .repl("val_$second"),
            ],
            Some(&[
                ("a", "line1\nline2"),
                ("b", "bar"),
                ("c", "baz"),
                ("label1_line1", "val_line2"),
                ("label2_line1", "val_line2"),
            ]),
        ),
        case(
            &[("__name__", "http_requests_total")],
            vec![
                rule(Replace)
                    .src(&["__name__"])
                    .re(".*_total$")
                    .target("__type__")
                    .repl("counter"),
            ],
            Some(&[("__name__", "http_requests_total"), ("__type__", "counter")]),
        ),
        case(
            &[("__name__", "disk_usage_bytes")],
            vec![
                rule(Replace)
                    .src(&["__name__"])
                    .re(".*_bytes$")
                    .target("__unit__")
                    .repl("bytes"),
            ],
            Some(&[("__name__", "disk_usage_bytes"), ("__unit__", "bytes")]),
        ),
    ]
}

#[test]
fn relabel_cases_from_prometheus() {
    let cases = prometheus_cases();
    assert_eq!(cases.len(), 34, "every TestRelabel case is ported");
    // Cases whose names are only valid under Prometheus's UTF-8 validation.
    let utf8_only = [28, 29, 30];
    for (i, c) in cases.iter().enumerate() {
        for (j, r) in c.rules.iter().enumerate() {
            let valid = r.validate();
            assert_eq!(
                valid.is_ok(),
                !utf8_only.contains(&i),
                "case {i} rule {j}: {valid:?}"
            );
        }
        let mut lb = labels(c.input).builder();
        let kept = process(&c.rules, &mut lb);
        assert_eq!(kept, c.output.is_some(), "case {i}");
        if let Some(out) = c.output {
            assert_eq!(lb.labels(), labels(out), "case {i}");
        }
        // The traced variant agrees, and has one entry per rule applied.
        let mut lb2 = labels(c.input).builder();
        let (kept2, trace) = process_traced(&c.rules, &mut lb2);
        assert_eq!((kept2, lb2.labels()), (kept, lb.labels()), "case {i}");
        let kept_flags: Vec<bool> = trace.iter().map(|t| t.kept).collect();
        let mut want = vec![true; trace.len()];
        if !kept {
            *want.last_mut().unwrap() = false;
        } else {
            assert_eq!(trace.len(), c.rules.len(), "case {i}");
        }
        assert_eq!(kept_flags, want, "case {i}");
        assert_eq!(
            trace.last().map(|t| &t.labels_after),
            Some(&lb2.labels()),
            "case {i}"
        );
    }
}

#[test]
fn validation_errors_from_prometheus() {
    // TestRelabelValidate, with Prometheus's legacy validation scheme. (The empty-action case
    // cannot be represented: `Action` has no empty value and YAML defaults it to replace.)
    let cases: Vec<(RelabelConfig, &str)> = vec![
        (
            rule(Replace),
            "relabel configuration for replace action requires 'target_label' value",
        ),
        (
            rule(Lowercase),
            "relabel configuration for lowercase action requires 'target_label' value",
        ),
        (
            rule(Lowercase).target("${3}"),
            r#""${3}" is invalid 'target_label' for lowercase action"#,
        ),
        (
            rule(Replace)
                .src(&["a"])
                .re("some-([^-]+)-([^,]+)")
                .repl("${1}")
                .target("${3}"),
            "",
        ),
        (
            rule(Replace)
                .src(&["a"])
                .re("some-([^-]+)-([^,]+)")
                .repl("${1}")
                .target("0${3}"),
            r#""0${3}" is invalid 'target_label' for replace action"#,
        ),
        (
            rule(Replace)
                .src(&["a"])
                .re("some-([^-]+)-([^,]+)")
                .repl("${1}")
                .target("-${3}"),
            r#""-${3}" is invalid 'target_label' for replace action"#,
        ),
        (
            rule(LabelMap)
                .re("__meta_kubernetes_pod_label_(strimzi_io_.+)")
                .repl("$1"),
            "",
        ),
        (rule(LabelMap).re("__meta_(.+)").repl("${1}"), ""),
        // The remaining rules of Config.Validate.
        (
            rule(HashMod).target("x"),
            "relabel configuration for hashmod requires non-zero modulus",
        ),
        (
            rule(HashMod).modulus(3),
            "relabel configuration for hashmod action requires 'target_label' value",
        ),
        (
            rule(HashMod).modulus(3).target("a-b"),
            r#""a-b" is invalid 'target_label' for hashmod action"#,
        ),
        (
            rule(Replace).target("a-b"),
            r#""a-b" is invalid 'target_label' for replace action"#,
        ),
        (
            rule(Uppercase).target("u").repl("x"),
            "'replacement' can not be set for uppercase action",
        ),
        (
            rule(KeepEqual),
            "relabel configuration for keepequal action requires 'target_label' value",
        ),
        (
            rule(DropEqual).target("1a"),
            r#""1a" is invalid 'target_label' for dropequal action"#,
        ),
        (
            rule(LabelMap).repl("a-$1"),
            r#""a-$1" is invalid 'replacement' for labelmap action"#,
        ),
        (
            rule(LabelMap).repl("${"),
            r#""${" is invalid 'replacement' for labelmap action"#,
        ),
        (
            rule(KeepEqual).target("t").re("(.*)"),
            "keepequal action requires only 'source_labels' and `target_label`, \
             and no other fields",
        ),
        (
            rule(DropEqual).target("t").modulus(2),
            "dropequal action requires only 'source_labels' and `target_label`, \
             and no other fields",
        ),
        (
            RelabelConfig {
                separator: ",".into(),
                ..rule(KeepEqual).target("t")
            },
            "keepequal action requires only 'source_labels' and `target_label`, \
             and no other fields",
        ),
        (rule(KeepEqual).src(&["a", "b"]).target("t"), ""),
        (
            rule(LabelDrop).src(&["a"]),
            "labeldrop action requires only 'regex', and no other fields",
        ),
        (
            rule(LabelKeep).target("a"),
            "labelkeep action requires only 'regex', and no other fields",
        ),
        (
            rule(LabelKeep).repl("x"),
            "labelkeep action requires only 'regex', and no other fields",
        ),
        (rule(LabelDrop).re("tmp_.*"), ""),
        (
            rule(Keep).src(&["a-b"]),
            r#""a-b" is not a valid label name"#,
        ),
        (rule(Drop).src(&["a"]).re("x"), ""),
        (rule(Lowercase).src(&["a"]).target("b"), ""),
        (rule(HashMod).src(&["a"]).target("b").modulus(8), ""),
    ];
    for (i, (cfg, want)) in cases.iter().enumerate() {
        let got = cfg.validate();
        if want.is_empty() {
            assert_eq!(got, Ok(()), "case {i}");
        } else {
            assert_eq!(got, Err(want.to_string()), "case {i}");
        }
    }
}

#[test]
fn target_label_legacy_validity_from_prometheus() {
    for (s, valid) in [
        ("-label", false),
        ("label", true),
        ("label${1}", true),
        ("${1}label", true),
        ("${1}", true),
        ("${1}label", true),
        ("${", false),
        ("$", false),
        ("${}", false),
        ("foo${", false),
        ("$1", true),
        ("asd$2asd", true),
        ("-foo${1}bar-", false),
        ("bar.foo${1}bar", false),
        ("_${1}_", true),
        ("foo${bar}foo", true),
    ] {
        assert_eq!(is_valid_legacy_name_template(s), valid, "{s:?}");
    }
}

fn expanded(regex: &str, input: &str, template: &str) -> String {
    let r = re(regex);
    let caps = r.compiled.captures(input).expect("regex matches");
    let mut out = String::new();
    r.expand(template, &caps, &mut out);
    out
}

#[test]
fn expand_follows_go_regexp_expand() {
    let r = "(a)(b)(?P<name>c)(?P<x_1>d)";
    for (template, want) in [
        ("$1", "a"),
        ("${1}", "a"),
        ("$1x", ""), // the group named `1x`
        ("${1}x", "ax"),
        ("$0", "abcd"),
        ("$00", ""), // leading zero: a name, not an index
        ("$2$1", "ba"),
        ("$name", "c"),
        ("${name}", "c"),
        ("$name-", "c-"),
        ("$x_1", "d"),
        ("$9", ""),
        ("$999999999999", ""),
        ("$nope", ""),
        ("$$1", "$1"),
        ("$$$1", "$a"),
        ("$", "$"),
        ("a$", "a$"),
        ("${", "${"),
        ("${1", "${1"),
        ("${}", "${}"),
        ("${na-me}", "${na-me}"),
        ("$-", "$-"),
        ("$é1", ""), // letters are Unicode letters, as in Go
        ("$1é", ""),
        ("$١", ""), // a Unicode digit is part of a name, never an index
        ("x${2}y", "xby"),
    ] {
        assert_eq!(expanded(r, "abcd", template), want, "template {template:?}");
    }
    // A group that did not participate expands to nothing.
    assert_eq!(expanded("(a)|(b)", "b", "[$1][$2]"), "[][b]");
}

fn matches(regex: &str, s: &str) -> bool {
    re(regex).is_match(s)
}

#[test]
fn regex_is_anchored_and_dot_matches_newline() {
    assert!(!matches("b", "abc"));
    assert!(matches("a.c", "a\nc"));
    assert!(matches("", ""));
    assert!(!matches("", "x"));
    // As in Prometheus, the pattern is pasted into `^(?s:…)$`, so this is unanchored.
    assert!(matches("a)|(b", "xxb"));
    assert_eq!(re("f(.*)").as_str(), "f(.*)");
}

#[test]
fn perl_classes_are_ascii_as_in_re2() {
    assert!(matches(r"\d", "7"));
    assert!(!matches(r"\d", "٣")); // ARABIC-INDIC DIGIT THREE
    assert!(matches(r"\D", "٣"));
    assert!(!matches(r"[\d]", "٣"));
    assert!(matches(r"[^\d]", "٣"));
    assert!(matches(r"[\D]", "٣"));
    assert!(!matches(r"[^\D]", "٣"));
    assert!(matches(r"[^\D]", "3"));
    assert!(matches(r"[x\W]", "é"));
    assert!(!matches(r"\w", "é"));
    assert!(matches(r"\W", "é"));
    assert!(matches(r"\w+", "a_Z9"));
    assert!(!matches(r"\s", "\u{a0}"));
    assert!(!matches(r"\s", "\u{b}")); // RE2's \s has no vertical tab
    assert!(matches(r"\s", "\u{c}"));
    assert!(matches(r"x\bé", "xé")); // é is not a word character for RE2
    assert!(!matches(r"x\Bé", "xé"));
    assert!(matches(r"(?i)\w", "\u{212A}")); // KELVIN SIGN folds to k, as in Go
    // Unicode stays on for everything else.
    assert!(matches(".", "é"));
    assert!(matches(r"\pL", "é"));
    assert!(matches(r"\p{Greek}+", "αβ"));
    assert!(matches(r"\p{^Greek}", "a"));
    assert!(!matches(r"\P{^Greek}", "a"));
    assert!(matches("(?i)é", "É"));
    assert!(matches("[[:alpha:]]", "a"));
    assert!(!matches("[[:alpha:]]", "é"));
    assert!(matches("[[:^alpha:]]", "1"));
}

#[test]
fn re2_only_syntax_is_translated() {
    assert!(matches(r"\Q.*+\E", ".*+"));
    assert!(!matches(r"\Q.*+\E", "x"));
    // Go parses the anchored `^(?s:…)$` whole: without `\E` the literal swallows `)$`, and a
    // trailing backslash escapes the closing parenthesis.
    assert!(Regex::new(r"a\Q(b").is_err());
    assert!(Regex::new(r"a\").is_err());
    assert!(matches(r"x)\", "x)"));
    assert!(matches(r"\101", "A"));
    assert!(matches(r"\0", "\0"));
    assert!(matches(r"\12", "\n"));
    assert!(matches(r"\1234", "S4"));
    assert!(matches(r"[\101-\103]", "B"));
    assert!(matches(r"\x41\x{42}", "AB"));
    assert!(matches(r"\<a\>", "<a>"));
    assert!(matches(r"\_\%\ ", "_% "));
    assert!(matches("a{", "a{"));
    assert!(matches("a{x}", "a{x}"));
    assert!(matches("a{,2}", "a{,2}"));
    assert!(matches("a{01}", "a{01}"));
    assert!(matches("a}", "a}"));
    assert!(matches("a]", "a]"));
    assert!(matches("a{2}", "aa"));
    assert!(matches("a{2,}", "aaa"));
    assert!(matches("a{1,2}?b", "ab"));
    assert!(matches("[[]", "["));
    assert!(matches("[]a]+", "]a"));
    assert!(matches("[^]a]", "b"));
    assert!(matches("[a&&b]+", "a&b"));
    assert!(matches("[a~~b]", "~"));
    assert!(matches("[--a]", "Z") && matches("[a-]", "-") && matches("[-a]", "-"));
    assert!(matches("[&-(]", "'"));
    assert!(matches("(?)a", "a"));
    assert!(matches("(?i:A)(?-i)b", "ab"));
    assert!(matches("(?U)a+", "aaa"));
    assert!(matches("(?P<n>a)(?<m>b)", "ab"));
}

#[test]
fn what_re2_rejects_is_rejected() {
    for (pattern, message) in [
        ("a**", "invalid nested repetition operator: `**`"),
        ("a*?+", "invalid nested repetition operator: `*?+`"),
        ("a{2}*", "invalid nested repetition operator: `{2}*`"),
        ("a{1001}", "invalid repeat count: `{1001}`"),
        ("a{2,1}", "invalid repeat count: `{2,1}`"),
        ("a{1,123456789}", "invalid repeat count: `{1,123456789}`"),
        ("(?x)a", "invalid or unsupported Perl syntax: `(?x`"),
        ("(?=a)", "invalid or unsupported Perl syntax: `(?=`"),
        ("(?<=a)", "invalid named capture: `(?<=a)"),
        ("(?P<a-b>x)", "invalid named capture: `(?P<a-b>`"),
        (r"\C", r"invalid escape sequence: `\C`"),
        (r"\e", r"invalid escape sequence: `\e`"),
        (r"\u{41}", r"invalid escape sequence: `\u`"),
        (r"\1", r"invalid escape sequence: `\1`"),
        (r"\8", r"invalid escape sequence: `\8`"),
        (r"\18", r"invalid escape sequence: `\1`"),
        (r"\xZ1", r"invalid escape sequence: `\xZ1`"),
        (r"\x{}", r"invalid escape sequence: `\x{}`"),
        (r"[\b]", r"invalid escape sequence: `\b`"),
        ("[[:foo:]]", "invalid character class range: `[:foo:]`"),
        ("[z-a]", "invalid character class range: `z-a`"),
        ("[a--]", "invalid character class range: `a--`"),
        (r"\p{Nope", r"invalid character class range: `\p{Nope"),
        ("[abc", "missing closing ]: `[abc)$`"),
    ] {
        match Regex::new(pattern) {
            Err(regex::Error::Syntax(m)) => assert!(m.contains(message), "{pattern:?}: {m}"),
            other => panic!("{pattern:?}: expected a syntax error, got {other:?}"),
        }
    }
    assert!(Regex::new(r"\p{Nope}").is_err());
    assert!(Regex::new("(a").is_err());
}

#[test]
fn go_quirks_found_by_differential_testing() {
    // Expectations checked against Go's regexp, which Prometheus uses, like the rest of this
    // file's regex cases. A repetition after a bare flag group repeats the atom before it.
    assert!(matches("x(?i){2}", "xx") && !matches("x(?i){2}", "XX"));
    assert!(matches("x(?i)(?m)*", "") && matches("x(?i)(?m)*", "xx"));
    assert!(matches("x*(?i)*", "xx"));
    assert!(Regex::new("(?i)*").is_err());
    // Duplicate and digit-leading group names are fine in Go; `$n` is the first one that took
    // part in the match.
    assert_eq!(expanded("(?P<n>a)|(?P<n>b)", "b", "[$n]"), "[b]");
    assert_eq!(
        expanded("(?P<1x>a)(b)", "ab", "[$1x][${1x}][$1][$2]"),
        "[a][a][a][b]"
    );
    // Go's Unicode class names are capitalized; Rust alone would accept these.
    assert!(Regex::new(r"\pz").is_err() && Regex::new(r"\p{greek}").is_err());
    assert!(matches(r"\pZ", " "));
}

#[test]
fn translation_keeps_group_numbers() {
    let r = re(r"(\d+)(?:\s)(?P<w>\w+)\b(x)?");
    assert_eq!(r.compiled.captures_len(), 4);
    assert_eq!(
        expanded(r"(\d+)(?:\s)(?P<w>\w+)\b(x)?", "12 ab", "$1|$w|$3"),
        "12|ab|"
    );
}

#[test]
fn case_mapping_is_gos_simple_mapping() {
    assert_eq!(go_to_upper("straße"), "STRAßE");
    assert_eq!(go_to_lower("İSTANBUL"), "istanbul");
    assert_eq!(go_to_lower("ΟΔΟΣ"), "οδοσ"); // no final-sigma rule
    assert_eq!(go_to_upper("ᾳ ᾀ ᾈ ŉ ﬁ"), "ᾼ ᾈ ᾈ ŉ ﬁ");
    assert_eq!(go_to_upper("ǆ ǅ"), "Ǆ Ǆ");
    let mut lb = labels(&[("a", "Straße")]).builder();
    assert!(process(&[rule(Uppercase).src(&["a"]).target("b")], &mut lb));
    assert_eq!(lb.get("b"), Some("STRAßE"));
}

#[test]
fn hashmod_matches_prometheus() {
    let hash = |v: &'static str, m: u64| {
        let mut lb = Labels::from_pairs([("a", v)]).builder();
        process(&[rule(HashMod).src(&["a"]).target("h").modulus(m)], &mut lb);
        lb.get("h").map(str::to_string)
    };
    assert_eq!(hash("baz", 1000).as_deref(), Some("976"));
    assert_eq!(hash("foo\nbar", 1000).as_deref(), Some("734"));
    assert_eq!(hash("baz", 1).as_deref(), Some("0"));
    // An unvalidated zero modulus leaves the labels alone instead of panicking.
    assert_eq!(hash("baz", 0), None);
}

#[test]
fn missing_source_labels_join_as_empty() {
    let mut lb = labels(&[("b", "2")]).builder();
    let rules = [rule(Replace)
        .src(&["a", "b", "c"])
        .re("(.*)")
        .target("j")
        .repl("<$1>")];
    assert!(process(&rules, &mut lb));
    assert_eq!(lb.get("j"), Some("<;2;>"));
}

#[test]
fn replace_with_empty_value_deletes_and_default_rule_copies() {
    // The common `source_labels: [x] / target_label: y` rule, and its empty-value fast path.
    let copy = [rule(Replace).src(&["x"]).target("y")];
    let mut lb = labels(&[("x", "1"), ("y", "old")]).builder();
    assert!(process(&copy, &mut lb));
    assert_eq!(lb.labels(), labels(&[("x", "1"), ("y", "1")]));
    let mut lb = labels(&[("y", "old")]).builder();
    assert!(process(&copy, &mut lb));
    assert_eq!(lb.labels(), Labels::empty());
    // A static label: no source labels, the default regex matches the empty value.
    let mut lb = LabelsBuilder::new();
    assert!(process(
        &[rule(Replace).target("env").repl("prod")],
        &mut lb
    ));
    assert_eq!(lb.labels(), labels(&[("env", "prod")]));
}

#[test]
fn labelmap_reads_a_snapshot_and_does_not_validate_names() {
    // Values come from before the rule, and labels written by it are not revisited.
    let mut lb = labels(&[("a", "1"), ("b", "2")]).builder();
    assert!(process(
        &[rule(LabelMap).re("(.)").repl("${1}${1}")],
        &mut lb
    ));
    assert_eq!(
        lb.labels(),
        labels(&[("a", "1"), ("aa", "1"), ("b", "2"), ("bb", "2")])
    );
    let mut lb = labels(&[("a", "1"), ("b", "2")]).builder();
    assert!(process(&[rule(LabelMap).re(".*").repl("b")], &mut lb));
    assert_eq!(lb.labels(), labels(&[("a", "1"), ("b", "2")]));
    let mut lb = labels(&[("a", "1"), ("b", "2")]).builder();
    assert!(process(&[rule(LabelMap).re("b").repl("a")], &mut lb));
    assert_eq!(lb.labels(), labels(&[("a", "2"), ("b", "2")]));
    // Prometheus sets whatever name the expansion gives; the scrape rejects invalid ones.
    let mut lb = labels(&[("x_y", "1")]).builder();
    assert!(process(
        &[rule(LabelMap).re("x_(.*)").repl("x-$1")],
        &mut lb
    ));
    assert_eq!(lb.get("x-y"), Some("1"));
}

#[test]
fn keepequal_and_dropequal_treat_missing_as_empty() {
    let mut lb = labels(&[("a", "1")]).builder();
    assert!(process(
        &[rule(KeepEqual).src(&["nope"]).target("also_nope")],
        &mut lb
    ));
    assert!(!process(
        &[rule(DropEqual).src(&["nope"]).target("also_nope")],
        &mut lb
    ));
}

#[test]
fn traced_reports_each_rule_and_the_dropping_one() {
    let rules = [
        rule(Replace).target("env").repl("prod"),
        rule(LabelDrop).re("tmp"),
        rule(Drop).src(&["env"]).re("prod"),
        rule(Replace).target("never").repl("x"),
    ];
    let mut lb = labels(&[("tmp", "1"), ("a", "2")]).builder();
    let (kept, trace) = process_traced(&rules, &mut lb);
    assert!(!kept);
    let summary: Vec<_> = trace.iter().map(|t| (t.index, t.action, t.kept)).collect();
    assert_eq!(
        summary,
        [(0, Replace, true), (1, LabelDrop, true), (2, Drop, false)]
    );
    assert_eq!(
        trace[0].labels_after,
        labels(&[("a", "2"), ("env", "prod"), ("tmp", "1")])
    );
    assert_eq!(
        trace[1].labels_after,
        labels(&[("a", "2"), ("env", "prod")])
    );
    assert_eq!(trace[2].labels_after, trace[1].labels_after);
    let (kept, trace) = process_traced(&[], &mut LabelsBuilder::new());
    assert!(kept && trace.is_empty());
}

fn yaml(s: &str) -> Result<RelabelConfig, String> {
    serde_norway::from_str(s).map_err(|e| e.to_string())
}

#[test]
fn yaml_defaults_and_round_trip() {
    // TestConfig_UnmarshalThenMarshal's inputs: they load, validate, and survive a round trip.
    for input in [
        "source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_port]\nseparator: ;\n\
         regex: \\\\d+\ntarget_label: __meta_kubernetes_pod_container_port_number\n\
         replacement: $1\naction: replace\n",
        "source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_port]\nseparator: ;\n\
         target_label: __meta_kubernetes_pod_container_port_number\nreplacement: $1\n\
         action: keepequal\n",
        "source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_port]\nseparator: ;\n\
         regex: (.*)\ntarget_label: __meta_kubernetes_pod_container_port_number\n\
         replacement: $1\naction: replace\n",
    ] {
        let cfg = yaml(input).unwrap();
        assert_eq!(cfg.validate(), Ok(()), "{input}");
        let out = serde_norway::to_string(&cfg).unwrap();
        let again = yaml(&out).unwrap();
        assert_eq!(again, cfg, "{out}");
        assert_eq!(again.validate(), Ok(()), "{out}");
    }
    let cfg = yaml("target_label: x").unwrap();
    assert_eq!(
        cfg,
        RelabelConfig {
            target_label: "x".into(),
            ..RelabelConfig::default()
        }
    );
    assert_eq!(
        serde_norway::to_string(&cfg).unwrap(),
        "target_label: x\naction: replace\n"
    );
    let cfg = yaml("source_labels: [a, b]\nregex: '\\d+'\nmodulus: 8\nseparator: ''").unwrap();
    assert_eq!(cfg.source_labels, ["a", "b"]);
    assert_eq!(cfg.regex.as_str(), r"\d+");
    assert_eq!((cfg.modulus, cfg.separator.as_str()), (8, ""));
    let out = serde_norway::to_string(&cfg).unwrap();
    assert_eq!(yaml(&out).unwrap(), cfg, "{out}");
}

#[test]
fn yaml_regex_forms() {
    // `regex:` with no value is the empty regex, as in Prometheus, not the default.
    for input in ["regex:", "regex: ~", "regex: ''"] {
        let cfg = yaml(input).unwrap();
        assert_eq!(cfg.regex.as_str(), "", "{input}");
        assert!(
            cfg.regex.is_match("") && !cfg.regex.is_match("x"),
            "{input}"
        );
    }
    assert!(yaml("regex: 200").unwrap().regex.is_match("200"));
    // An explicit `(.*)` is not the default instance, so keepequal rejects it like Prometheus.
    let cfg = yaml("action: keepequal\ntarget_label: t\nregex: (.*)").unwrap();
    assert!(
        cfg.validate()
            .unwrap_err()
            .contains("requires only 'source_labels'")
    );
}

#[test]
fn yaml_errors() {
    let err = yaml("regex: 'a(b'").unwrap_err();
    assert!(err.contains(r#"invalid regex "a(b""#), "{err}");
    let err = yaml("regex: 'a**'").unwrap_err();
    assert!(
        err.contains(r#"invalid regex "a**""#) && err.contains("nested repetition"),
        "{err}"
    );
    let err = yaml("action: explode").unwrap_err();
    assert!(err.contains(r#"unknown relabel action "explode""#), "{err}");
    let err = yaml("target_label: x\nreplace: y").unwrap_err();
    assert!(err.contains("unknown field `replace`"), "{err}");
    assert!(yaml("modulus: -1").is_err());
    assert!(yaml("source_labels: a").is_err());
}

#[test]
fn yaml_action_is_case_insensitive() {
    for (input, want) in [
        ("replace", Replace),
        ("KeepEqual", KeepEqual),
        ("DROPEQUAL", DropEqual),
        ("HashMod", HashMod),
        ("labelmap", LabelMap),
        ("LabelDrop", LabelDrop),
        ("labelKeep", LabelKeep),
        ("Lowercase", Lowercase),
        ("UPPERCASE", Uppercase),
        ("Keep", Keep),
        ("drop", Drop),
    ] {
        assert_eq!(
            yaml(&format!("action: {input}")).unwrap().action,
            want,
            "{input}"
        );
        assert_eq!(
            serde_norway::to_string(&want).unwrap().trim(),
            want.as_str()
        );
    }
}
