//! `static_configs`: each entry is one target group, sourced by its index as in Prometheus.

use promshard_model::Labels;
use promshard_model::config::StaticConfig;
use promshard_model::labels::ADDRESS;

use super::TargetGroup;

pub(super) fn groups(configs: &[StaticConfig]) -> Vec<TargetGroup> {
    configs
        .iter()
        .enumerate()
        .map(|(i, sc)| TargetGroup {
            targets: sc
                .targets
                .iter()
                .map(|t| Labels::from_pairs([(ADDRESS, t.as_str())]))
                .collect(),
            labels: Labels::from_pairs(sc.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            source: i.to_string(),
        })
        .collect()
}
