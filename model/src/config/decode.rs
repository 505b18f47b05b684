//! Decoding the YAML value into the config types with the path of every error, in the form
//! `scrape_configs[3] (job "svc").kubernetes_sd_configs[0].tls_config.max_version: ...`.
//!
//! `serde_path_to_error` tracks the path while serde decodes; this module renders it, adds
//! the job name after `scrape_configs[i]`, and rewrites serde's "unknown field" errors: a field
//! Prometheus has but promshard does not implement is reported as such (see `known.rs`), and
//! only a name Prometheus does not know either gets "unknown field, expected one of ...".

use serde::de::DeserializeOwned;
use serde_norway::Value;
use serde_path_to_error::Segment;

use super::{At, ConfigError, known};

/// Decodes `root` (the whole document) into `T`.
pub(super) fn decode<T: DeserializeOwned>(root: Value) -> Result<T, ConfigError> {
    let jobs = job_names(&root);
    serde_path_to_error::deserialize(root).map_err(|e| {
        let segments: Vec<Segment> = e.path().iter().cloned().collect();
        let message = e.into_inner().to_string();
        error_at(&segments, &jobs, message)
    })
}

/// Each scrape config's `job_name` (empty when missing), to name jobs in paths.
fn job_names(root: &Value) -> Vec<String> {
    root.get("scrape_configs")
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .map(|sc| {
                    sc.get("job_name")
                        .map(|j| match j {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            _ => String::new(),
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn render(segments: &[Segment], jobs: &[String]) -> At {
    let mut at = At::root();
    for (i, seg) in segments.iter().enumerate() {
        at = match seg {
            Segment::Seq { index } => {
                let in_jobs = i == 1
                    && matches!(&segments[0], Segment::Map { key } if key == "scrape_configs");
                match jobs.get(*index) {
                    Some(name) if in_jobs => At::job(*index, name),
                    _ => at.index(*index),
                }
            }
            Segment::Map { key } => at.key(key),
            Segment::Enum { variant } => at.key(variant),
            Segment::Unknown => at.key("?"),
        };
    }
    at
}

/// The field name of a section, skipping list indexes: what `known.rs` is keyed by.
fn section_of(segments: &[Segment]) -> &str {
    segments
        .iter()
        .rev()
        .find_map(|s| match s {
            Segment::Map { key } => Some(key.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

fn error_at(segments: &[Segment], jobs: &[String], message: String) -> ConfigError {
    // serde: "unknown field `x`, expected one of `a`, `b`" (or "expected `a`", or "there are
    // no fields"); the path then ends with the unknown field itself.
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, tail)) = rest.split_once('`')
        && let Some((Segment::Map { key }, parent)) = segments.split_last()
        && key == field
    {
        let at = render(segments, jobs);
        let section = section_of(parent);
        if let Some(why) = known::not_implemented(section, field) {
            return at.err(format!("not implemented by promshard{why}"));
        }
        let expected = tail.trim_start_matches(", ");
        return at.err(format!("unknown field, {expected}"));
    }
    render(segments, jobs).err(message)
}

/// The line of the first `!!binary` tag, if any. serde's YAML value drops the tag and keeps
/// the base64 text, which would silently turn a binary label into its encoding; Prometheus
/// decodes it, and refuses it when it is not UTF-8 (its `labelvalue.bad.yml`).
pub(super) fn binary_tag_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let code = line.split(" #").next().unwrap_or(line);
            code.match_indices("!!binary").any(|(i, _)| {
                i == 0
                    || matches!(
                        code.as_bytes()[i - 1],
                        b' ' | b'\t' | b':' | b'-' | b'[' | b',' | b'{' | b'?'
                    )
            })
        })
        .map(|i| i + 1)
}
