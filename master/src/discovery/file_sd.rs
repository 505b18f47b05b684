//! `file_sd_configs`: JSON or YAML files of `[{targets: [...], labels: {...}}]`.
//!
//! Prometheus watches with inotify and re-reads every `refresh_interval`. We poll file metadata
//! once a second instead: it needs no platform watcher, works on Kubernetes ConfigMap volumes
//! (whose atomic symlink swaps inotify handles badly) and costs a few `stat` calls.
//! As upstream, a file that fails to parse keeps its previous groups, so a half-written file
//! never makes its targets vanish; a deleted file's groups are removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use promshard_model::Labels;
use promshard_model::config::{FileSdConfig, StaticConfig};
use promshard_model::labels::ADDRESS;
use tokio::sync::mpsc;

use super::{TargetGroup, Update};

const POLL: Duration = Duration::from_secs(1);
const META_FILEPATH: &str = "__meta_filepath";

/// A file's modification time and size when it was last read.
type FileStamp = Option<(SystemTime, u64)>;

pub(super) struct FileProvider {
    cfg: FileSdConfig,
    /// Last successfully parsed groups per file, and the metadata they were read at.
    files: BTreeMap<PathBuf, (FileStamp, Vec<TargetGroup>)>,
}

impl FileProvider {
    pub(super) fn new(cfg: FileSdConfig) -> Self {
        FileProvider {
            cfg,
            files: BTreeMap::new(),
        }
    }

    pub(super) async fn run(mut self, job: String, provider: String, tx: mpsc::Sender<Update>) {
        let mut last_full = Instant::now();
        let mut first = true;
        loop {
            let force = last_full.elapsed() >= self.cfg.refresh_interval.0;
            if force {
                last_full = Instant::now();
            }
            if self.refresh(force) || first {
                first = false;
                let groups = self
                    .files
                    .values()
                    .flat_map(|(_, g)| g.iter().cloned())
                    .collect();
                let update = Update {
                    job: job.clone(),
                    provider: provider.clone(),
                    groups,
                };
                if tx.send(update).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn matching_paths(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for pattern in &self.cfg.files {
            match glob::glob(pattern) {
                Ok(paths) => out.extend(paths.flatten()),
                Err(e) => tracing::error!(pattern, error = %e, "invalid file_sd pattern"),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Re-reads changed files; returns whether the group set changed.
    fn refresh(&mut self, force: bool) -> bool {
        let paths = self.matching_paths();
        let mut changed = false;
        let before = self.files.len();
        self.files.retain(|p, _| paths.contains(p));
        changed |= before != self.files.len();
        for path in paths {
            let meta = std::fs::metadata(&path)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            let known = self.files.get(&path).map(|(m, _)| *m);
            if !force && known.is_some() && known == Some(meta) {
                continue;
            }
            match read_file(&path) {
                Ok(groups) => {
                    let old = self.files.insert(path, (meta, groups.clone()));
                    changed |= old.map(|(_, g)| g) != Some(groups);
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "file_sd: keeping previous targets");
                    // Remember the metadata so a broken file is not re-read every second.
                    let entry = self.files.entry(path).or_insert((None, Vec::new()));
                    entry.0 = meta;
                }
            }
        }
        changed
    }
}

/// Parses one file; `.json` as JSON, anything else as YAML.
pub(crate) fn read_file(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    let configs: Vec<StaticConfig> = if is_json {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_norway::from_str(&text).map_err(|e| e.to_string())?
    };
    let file = path.display().to_string();
    let mut groups = Vec::with_capacity(configs.len());
    for (i, sc) in configs.into_iter().enumerate() {
        for t in &sc.targets {
            promshard_model::config::check_target_address(t)?;
        }
        let mut labels =
            Labels::from_pairs(sc.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))).builder();
        labels.set(META_FILEPATH, file.clone());
        groups.push(TargetGroup {
            targets: sc
                .targets
                .iter()
                .map(|t| Labels::from_pairs([(ADDRESS, t.as_str())]))
                .collect(),
            labels: labels.into_labels(),
            source: format!("{file}:{i}"),
        });
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_yaml_and_json_and_keeps_old_groups_on_parse_error() {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("a.yml");
        let j = dir.path().join("b.json");
        std::fs::write(&y, "- targets: ['h1:1', 'h2:2']\n  labels: {env: prod}\n").unwrap();
        std::fs::write(&j, r#"[{"targets": ["h3:3"]}]"#).unwrap();
        let cfg = FileSdConfig {
            files: vec![format!("{}/*", dir.path().display())],
            ..Default::default()
        };
        let mut p = FileProvider::new(FileSdConfig {
            files: cfg.files.clone(),
            ..cfg
        });
        assert!(p.refresh(false));
        let all: Vec<_> = p.files.values().flat_map(|(_, g)| g.clone()).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].targets.len(), 2);
        assert_eq!(all[0].labels.get("env"), Some("prod"));
        assert_eq!(
            all[0].labels.get(META_FILEPATH),
            Some(y.display().to_string().as_str())
        );
        assert_eq!(all[0].source, format!("{}:0", y.display()));
        assert_eq!(all[1].targets[0].get(ADDRESS), Some("h3:3"));

        // Unchanged files: nothing to report.
        assert!(!p.refresh(false));
        // A broken file keeps its previous groups.
        std::fs::write(&y, "- targets: [unterminated\n").unwrap();
        p.refresh(true);
        assert_eq!(p.files[&y].1.len(), 1);
        // A deleted file's groups go away.
        std::fs::remove_file(&j).unwrap();
        assert!(p.refresh(false));
        assert!(!p.files.contains_key(&j));
    }
}
