//! Go yaml.v2 leniency: Prometheus decodes any YAML scalar into a string field using its text
//! (`regex: true`, `labels: {port: 8080}`, `replacement: 1`). Real configs rely on it, so the
//! string fields users write such scalars into accept them too.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A scalar of any kind, as its YAML text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    S(String),
    B(bool),
    I(i64),
    U(u64),
    F(f64),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::S(s) => s,
            Scalar::B(b) => b.to_string(),
            Scalar::I(i) => i.to_string(),
            Scalar::U(u) => u.to_string(),
            Scalar::F(f) => f.to_string(),
        }
    }
}

/// A string, or any scalar as its text; null is the empty string.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?
        .map(Scalar::text)
        .unwrap_or_default())
}

pub(crate) fn string_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<Scalar>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(Scalar::text)
        .collect())
}

/// A list whose entries may not be null: Go's config types reject `- ` (an empty entry) in
/// every list of sections, which serde would otherwise turn into a section of defaults.
pub(crate) fn non_null_seq<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<NonNull<T>>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.0)
        .collect())
}

/// An entry of a [`non_null_seq`]; deserialized inside the sequence so an error names its
/// index.
struct NonNull<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NonNull<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d)?
            .map(NonNull)
            .ok_or_else(|| serde::de::Error::custom("empty or null section"))
    }
}

pub(crate) fn default_true() -> bool {
    true
}

pub(crate) fn is_true(b: &bool) -> bool {
    *b
}

pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, Scalar>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.text()))
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn scalars_where_strings_are_expected_are_accepted_as_text() {
        let c = Config::parse(
            "global: {external_labels: {replica: 1}}\n\
             scrape_configs: [{job_name: a, static_configs: [{targets: ['h:1'], labels: {port: 8080, on: true}}],\n\
             relabel_configs: [{source_labels: [a], regex: true, replacement: 1, target_label: b}]}]",
        )
        .unwrap();
        assert_eq!(c.global.external_labels["replica"], "1");
        let sc = &c.scrape_configs[0];
        assert_eq!(sc.static_configs[0].labels["port"], "8080");
        assert_eq!(sc.static_configs[0].labels["on"], "true");
        assert_eq!(sc.relabel_configs[0].regex.as_str(), "true");
        assert_eq!(sc.relabel_configs[0].replacement, "1");
    }
}
