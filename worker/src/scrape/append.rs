//! From a scraped body to samples: target labels attached (`honor_labels` or `exported_`
//! renaming), `metric_relabel_configs`, limits, and the set of series tracked for staleness.
//!
//! A series cache keyed by the raw series text (`name{labels}` as exposed) holds the final
//! label set, so a steady-state scrape skips label building and relabeling entirely; entries
//! not seen in a successful scrape are evicted.

use std::collections::{HashMap, HashSet};

use promshard_model::config::ScrapeConfig;
use promshard_model::labels::METRIC_NAME;
use promshard_model::relabel::{self, RelabelConfig};
use promshard_model::{Labels, LabelsBuilder};

use super::parser::{Entry, Format, MetricType, Parser};
use crate::remote_write::{MetricMetadata, Sample};

const EXPORTED_PREFIX: &str = "exported_";

/// The label sets of one scrape. foldhash, not SipHash: these sets hash every sample's whole
/// label set every scrape, which took 70 % of the worker's CPU with SipHash
/// (docs/BENCHMARKS.md); scraped label values cannot choose the per-process seed.
pub(crate) type SeriesSet = HashSet<Labels, foldhash::fast::RandomState>;

/// Result of a successful scrape.
pub(crate) struct Processed {
    pub(crate) samples: Vec<Sample>,
    /// Metadata the body declared, for remote write 2.0.
    pub(crate) metadata: Vec<MetricMetadata>,
    /// Samples in the body (`scrape_samples_scraped`).
    pub(crate) scraped: usize,
    /// Samples kept after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub(crate) post_relabel: usize,
    /// Series that get stale markers when they disappear.
    pub(crate) tracked: SeriesSet,
    /// Samples whose series text was not in the cache (`scrape_series_added`): as in
    /// Prometheus this counts series with explicit timestamps too, unlike `tracked`.
    pub(crate) series_added: usize,
}

/// A failed scrape: the error, and the counts Prometheus still reports for it (samples read
/// before a parse or label error; every sample when `sample_limit` is exceeded, because
/// Prometheus keeps parsing to report the true total).
#[derive(Debug, Default)]
pub(crate) struct Failed {
    pub(crate) error: String,
    pub(crate) scraped: usize,
    pub(crate) post_relabel: usize,
    pub(crate) series_added: usize,
}

impl From<String> for Failed {
    fn from(error: String) -> Self {
        Failed {
            error,
            ..Failed::default()
        }
    }
}

struct CacheEntry {
    /// `None`: dropped by metric relabeling.
    labels: Option<Labels>,
    /// Labels depend on the series text *and* the family type (`le`/`quantile`
    /// normalization), so an entry only counts as a hit under the same type.
    metric_type: MetricType,
    seen: u64,
}

pub(crate) struct SampleProcessor {
    target: Labels,
    honor_labels: bool,
    honor_timestamps: bool,
    track_timestamps_staleness: bool,
    metric_relabel: Vec<RelabelConfig>,
    sample_limit: usize,
    label_limit: usize,
    label_name_length_limit: usize,
    label_value_length_limit: usize,
    cache: HashMap<Box<[u8]>, CacheEntry, foldhash::fast::RandomState>,
    iteration: u64,
    /// `# TYPE`/`# HELP`/`# UNIT` of the current scrape, for remote write 2.0.
    metadata: HashMap<String, MetricMetadata>,
}

impl SampleProcessor {
    /// `target` is the target's public label set (no `__` labels).
    pub(crate) fn new(cfg: &ScrapeConfig, target: Labels) -> Self {
        SampleProcessor {
            target,
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps,
            track_timestamps_staleness: cfg.track_timestamps_staleness,
            metric_relabel: cfg.metric_relabel_configs.clone(),
            sample_limit: cfg.sample_limit as usize,
            label_limit: cfg.label_limit as usize,
            label_name_length_limit: cfg.label_name_length_limit as usize,
            label_value_length_limit: cfg.label_value_length_limit as usize,
            cache: HashMap::default(),
            iteration: 0,
            metadata: HashMap::new(),
        }
    }

    fn family(&mut self, name: &str) -> &mut MetricMetadata {
        self.metadata
            .entry(name.to_owned())
            .or_insert_with(|| MetricMetadata {
                family: name.to_owned(),
                kind: "unknown".to_owned(),
                ..MetricMetadata::default()
            })
    }

    /// Processes a whole body. Any error fails the whole scrape: nothing from it is kept.
    pub(crate) fn process(
        &mut self,
        body: &[u8],
        format: Format,
        ts: i64,
    ) -> Result<Processed, Failed> {
        let mut c = Failed::default();
        match self.process_counting(body, format, ts, &mut c) {
            Ok((samples, tracked)) => {
                let iteration = self.iteration;
                self.cache.retain(|_, e| e.seen == iteration);
                Ok(Processed {
                    samples,
                    metadata: self.metadata.drain().map(|(_, m)| m).collect(),
                    scraped: c.scraped,
                    post_relabel: c.post_relabel,
                    tracked,
                    series_added: c.series_added,
                })
            }
            Err(error) => Err(Failed { error, ..c }),
        }
    }

    fn process_counting(
        &mut self,
        body: &[u8],
        format: Format,
        ts: i64,
        c: &mut Failed,
    ) -> Result<(Vec<Sample>, SeriesSet), String> {
        self.iteration += 1;
        self.metadata.clear();
        let mut parser = Parser::new(body, format);
        // Sized for the previous scrape (the cache holds its series): growing from empty
        // rehashed every label set about 14 times per scrape.
        let expected = self.cache.len();
        let mut samples = Vec::with_capacity(expected);
        let mut tracked = SeriesSet::with_capacity_and_hasher(expected, Default::default());
        let mut seen_series = SeriesSet::with_capacity_and_hasher(expected, Default::default());
        let mut limit_exceeded = false;
        let mut label_buf = Vec::new();
        while let Some(entry) = parser.next_entry().map_err(|e| e.to_string())? {
            let s = match entry {
                Entry::Sample(s) => s,
                Entry::Help { name, help } => {
                    self.family(&name).help = help.into_owned();
                    continue;
                }
                Entry::Type { name, kind } => {
                    self.family(&name).kind = kind.as_str().to_owned();
                    continue;
                }
                Entry::Unit { name, unit } => {
                    self.family(&name).unit = unit.to_owned();
                    continue;
                }
            };
            c.scraped += 1;
            let mut cache_miss = false;
            let labels = match self.cache.get_mut(s.series) {
                Some(e) if e.metric_type == s.metric_type => {
                    e.seen = self.iteration;
                    e.labels.clone()
                }
                _ => {
                    s.labels_into(&mut label_buf).map_err(|e| e.to_string())?;
                    let mut lb = LabelsBuilder::new();
                    for (n, v) in &label_buf {
                        if lb.get(n).is_some() {
                            return Err(format!("label name {n:?} is not unique: invalid sample"));
                        }
                        lb.set(n.to_string(), v.to_string());
                    }
                    lb.set(METRIC_NAME, s.name.to_string());
                    let labels = self.mutate(lb)?;
                    cache_miss = true;
                    self.cache.insert(
                        s.series.into(),
                        CacheEntry {
                            labels: labels.clone(),
                            metric_type: s.metric_type,
                            seen: self.iteration,
                        },
                    );
                    labels
                }
            };
            let Some(labels) = labels else { continue };
            // Counted before de-duplication and towards the limit, as Prometheus's appender
            // counts every append.
            c.post_relabel += 1;
            if self.sample_limit > 0 && c.post_relabel > self.sample_limit {
                // Prometheus keeps parsing to report the real totals, then fails the scrape.
                limit_exceeded = true;
                continue;
            }
            if !seen_series.insert(labels.clone()) {
                // Prometheus drops a repeated series in one scrape ("duplicate sample for
                // timestamp") without failing the scrape.
                continue;
            }
            let explicit_ts = s.timestamp_ms.filter(|_| self.honor_timestamps);
            if explicit_ts.is_none() || self.track_timestamps_staleness {
                tracked.insert(labels.clone());
            }
            c.series_added += usize::from(cache_miss);
            samples.push(Sample {
                labels,
                timestamp_ms: explicit_ts.unwrap_or(ts),
                value: s.value,
            });
        }
        if limit_exceeded {
            return Err(format!(
                "sample limit exceeded (limit {})",
                self.sample_limit
            ));
        }
        Ok((samples, tracked))
    }

    /// Prometheus's `mutateSampleLabels`, then limits. `Ok(None)`: dropped by relabeling.
    fn mutate(&self, mut lb: LabelsBuilder) -> Result<Option<Labels>, String> {
        if self.honor_labels {
            for l in &self.target {
                if lb.get(&l.name).is_none() {
                    lb.set(l.name.clone(), l.value.clone());
                }
            }
        } else {
            let mut conflicts: Vec<(String, String)> = Vec::new();
            for l in &self.target {
                if let Some(v) = lb.get(&l.name) {
                    conflicts.push((l.name.clone(), v.to_string()));
                }
                lb.set(l.name.clone(), l.value.clone());
            }
            // Shorter names first, so `exported_a` is claimed before `a` would need it.
            conflicts.sort_by_key(|(n, _)| n.len());
            for (name, value) in conflicts {
                let mut new = name;
                loop {
                    new = format!("{EXPORTED_PREFIX}{new}");
                    if lb.get(&new).is_none() {
                        lb.set(new, value);
                        break;
                    }
                }
            }
        }
        if !relabel::process(&self.metric_relabel, &mut lb) {
            return Ok(None);
        }
        let labels = lb.into_labels();
        if labels.is_empty() {
            return Ok(None);
        }
        let Some(name) = labels.get(METRIC_NAME) else {
            return Err("__name__ label is missing after relabeling".into());
        };
        if name.is_empty() {
            return Err("__name__ label is missing after relabeling".into());
        }
        if self.label_limit > 0 && labels.len() > self.label_limit {
            return Err(format!(
                "label_limit exceeded (metric: {name}, number of labels: {}, limit: {})",
                labels.len(),
                self.label_limit
            ));
        }
        for l in &labels {
            // Prometheus 3 accepts any non-empty UTF-8 label name (UTF-8 is guaranteed here).
            if l.name.is_empty() {
                return Err(format!("empty label name in series of {name}"));
            }
            if self.label_name_length_limit > 0 && l.name.len() > self.label_name_length_limit {
                return Err(format!(
                    "label_name_length_limit exceeded (metric: {name}, label name: {}, limit: {})",
                    l.name, self.label_name_length_limit
                ));
            }
            if self.label_value_length_limit > 0 && l.value.len() > self.label_value_length_limit {
                return Err(format!(
                    "label_value_length_limit exceeded (metric: {name}, label name: {}, value: {:?}, limit: {})",
                    l.name, l.value, self.label_value_length_limit
                ));
            }
        }
        Ok(Some(labels))
    }
}

#[cfg(test)]
#[path = "append_tests.rs"]
mod tests;
