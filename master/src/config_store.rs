//! The running configuration as a versioned value: every change goes through [`ConfigStore`],
//! which validates it, checks the caller's version, persists it, applies it and records it in
//! the history.
//!
//! A change comes from the load at startup (source `file`), `PUT /api/v1/config` (`api`), or
//! `POST /-/reload` and SIGHUP (`reload`). Changes are serialized by one mutex held for the
//! whole change, so two PUTs cannot interleave: the second sees the first's version, and with
//! `If-Match` it fails with 412 instead of silently overwriting it. The order of a change is
//! 1. parse and validate the whole text ([`Config::parse`]); on error nothing has changed;
//! 2. compare `If-Match` with the current version;
//! 3. persist (an atomic rename, so a crash leaves the old or the new file, never half of one);
//! 4. apply it to the running master ([`Apply`]: restart discovery, hand the config to the
//!    coordinator, which pushes new snapshots to every worker); if that fails the previous text
//!    is persisted again and the previous config stays running;
//! 5. record the new version. Readers get the current one from a `watch` channel.
//!
//! # Where an API change is persisted, and why
//!
//! The config file (`--config`) is the source of truth an operator already has: a change made
//! through the API is written *to that file*, so a restart, `promshard check config` and
//! anyone reading the file see what runs, and there is no second copy to drift from it.
//!
//! In Kubernetes the chart mounts the config from a ConfigMap, which is read-only. Writing the
//! ConfigMap back through the API was rejected: Helm owns it (the next upgrade overwrites the
//! change), a mounted ConfigMap reaches the pod only after the kubelet's sync delay, and it would
//! give the master write RBAC. There the file cannot be written, and the change goes to
//! `--config.state-dir` instead (a small writable volume) as `config.yml`, with `state.json` recording the version, the history and the digest
//! of the file the change was made over. The precedence at startup follows from that:
//! - the state dir's config wins while the file is still the one it was made over: the API
//!   change survives a restart of the pod;
//! - once the file differs (a `helm upgrade` rolled out a new ConfigMap), the file wins and the
//!   state dir's config is discarded: a new deployment is the newer intent;
//! - `POST /-/reload` and SIGHUP mean "run the file": they also discard the state dir's config.
//!
//! Without a state dir and with a read-only file, a PUT fails with nothing changed rather than
//! running a config that a restart would silently revert.
//!
//! Versions count up from 1. With a state dir they continue across restarts; without one they
//! start again at 1 on every start (the digest tells whether two versions are the same text).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use futures::future::BoxFuture;
use promshard_model::config::{Config, ConfigError};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, watch};

/// Versions kept in the history (and served by `/api/v1/config/history`).
pub const HISTORY_LEN: usize = 20;

/// What `--config.state-dir` holds.
const STATE_FILE: &str = "state.json";
const OVERRIDE_FILE: &str = "config.yml";

/// Where a version came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Read from the config file at startup.
    File,
    /// `PUT /api/v1/config`.
    Api,
    /// `POST /-/reload` or SIGHUP: the config file read again.
    Reload,
}

/// One version of the configuration, as the history shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub version: u64,
    /// Unix milliseconds when it became the running config.
    pub time_ms: u64,
    pub source: Source,
    /// xxh3 of the YAML text, 16 hex digits: equal digests are equal texts.
    pub digest: String,
    /// The file that holds this version's text.
    pub persisted_to: String,
}

/// The running configuration.
#[derive(Clone, Debug)]
pub struct Current {
    pub info: VersionInfo,
    pub config: Arc<Config>,
    /// The text as it was given (comments and all), which is what is persisted.
    pub text: Arc<str>,
}

/// Applies a validated configuration to the running master.
pub trait Apply: Send + 'static {
    /// Makes `config` the running one. On error the previous config must still be running.
    fn apply(&mut self, config: Arc<Config>) -> BoxFuture<'_, Result<(), String>>;
    /// Stops what `apply` started (discovery), at shutdown.
    fn stop(&mut self) {}
}

/// Why a change was refused. Nothing changed in every case.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The text is not a valid configuration; names the job and field.
    #[error("{0}")]
    Invalid(ConfigError),
    /// `If-Match` named another version than the current one.
    #[error("config version is {current}, not {expected}")]
    VersionMismatch { expected: String, current: u64 },
    /// The config file could not be read (reload).
    #[error("{0}")]
    Read(String),
    /// Neither the config file nor the state dir could be written.
    #[error("cannot persist the config: {0}")]
    Persist(String),
    /// The master could not start running it (e.g. discovery could not start).
    #[error("cannot apply the config: {0}")]
    Apply(String),
}

/// The outcome of an accepted change.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changed {
    #[serde(flatten)]
    pub info: VersionInfo,
    /// The text equals the running one: no new version, nothing was applied.
    pub unchanged: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateFile {
    /// Last version number handed out.
    version: u64,
    /// Set while the state dir's `config.yml` is the running config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    override_config: Option<Override>,
    #[serde(default)]
    history: Vec<VersionInfo>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Override {
    version: u64,
    /// Digest of `config.yml`.
    digest: String,
    /// Digest of the config file when the override was written: it applies only over that file.
    base_digest: String,
}

/// The configuration to start with, before anything runs.
pub struct Boot {
    pub current: Current,
    config_file: PathBuf,
    state_dir: Option<PathBuf>,
    state: StateFile,
    texts: VecDeque<(u64, Arc<str>)>,
}

impl Boot {
    /// Reads the config file (and the state dir, see the module docs for the precedence).
    /// Fails naming the file, the job and the field if the config to run is invalid.
    pub fn load(config_file: &Path, state_dir: Option<&Path>) -> anyhow::Result<Boot> {
        let file_text = std::fs::read_to_string(config_file)
            .with_context(|| format!("reading config file {}", config_file.display()))?;
        let file_digest = digest(&file_text);
        let mut state = match state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating state dir {}", dir.display()))?;
                read_state(dir)
            }
            None => StateFile::default(),
        };
        let mut boot = Boot {
            current: Current {
                info: VersionInfo {
                    version: 0,
                    time_ms: 0,
                    source: Source::File,
                    digest: String::new(),
                    persisted_to: String::new(),
                },
                config: Arc::new(Config::default()),
                text: Arc::from(""),
            },
            config_file: config_file.to_path_buf(),
            state_dir: state_dir.map(Path::to_path_buf),
            state: StateFile::default(),
            texts: VecDeque::new(),
        };
        if let (Some(dir), Some(ov)) = (state_dir, state.override_config.clone()) {
            match restore_override(dir, &ov, &file_digest) {
                Ok((config, text)) => {
                    tracing::info!(
                        version = ov.version,
                        path = %dir.join(OVERRIDE_FILE).display(),
                        "running the config set through the API: the config file is unchanged since"
                    );
                    let info = state
                        .history
                        .iter()
                        .find(|h| h.version == ov.version)
                        .cloned()
                        .unwrap_or_else(|| VersionInfo {
                            version: ov.version,
                            time_ms: now_ms(),
                            source: Source::Api,
                            digest: ov.digest.clone(),
                            persisted_to: dir.join(OVERRIDE_FILE).display().to_string(),
                        });
                    boot.texts.push_back((info.version, text.clone()));
                    boot.current = Current {
                        info,
                        config: Arc::new(config),
                        text,
                    };
                    boot.state = state;
                    return Ok(boot);
                }
                Err(why) => {
                    tracing::warn!(%why, "not using the config in the state dir; running the config file");
                    state.override_config = None;
                    let _ = std::fs::remove_file(dir.join(OVERRIDE_FILE));
                }
            }
        }
        let config = parse(&file_text)
            .with_context(|| format!("invalid config file {}", config_file.display()))?;
        warn_ignored(&config);
        let text: Arc<str> = Arc::from(file_text);
        let info = match state.history.last() {
            // Same text as the last recorded version (a plain restart): same version.
            Some(last) if last.digest == file_digest => last.clone(),
            _ => {
                state.version += 1;
                let info = VersionInfo {
                    version: state.version,
                    time_ms: now_ms(),
                    source: Source::File,
                    digest: file_digest,
                    persisted_to: config_file.display().to_string(),
                };
                push_history(&mut state.history, info.clone());
                info
            }
        };
        boot.texts.push_back((info.version, text.clone()));
        boot.current = Current {
            info,
            config: Arc::new(config),
            text,
        };
        boot.state = state;
        if let Some(dir) = state_dir {
            write_state(dir, &boot.state);
        }
        Ok(boot)
    }
}

/// Parses a user's config as Prometheus loads a file: `external_labels` values expanded from
/// the master's environment, so every worker sends the same labels (workers parse the
/// expanded text the master sends them without expanding again).
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse_with_env(text, |name| std::env::var(name).ok())
}

/// One warning naming every server-only setting of the config, which promshard ignores; at
/// startup and on every change or reload.
pub fn warn_ignored(config: &Config) {
    if let Some(list) = ignored_summary(config) {
        tracing::warn!(ignored = %list, "the config has settings only a Prometheus server uses; promshard ignores them");
    }
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
}

/// `alerting (promshard sends no alerts), rule_files (...)`, or `None` if nothing is ignored.
pub fn ignored_summary(config: &Config) -> Option<String> {
    if config.ignored.is_empty() {
        return None;
    }
    let parts: Vec<String> = config
        .ignored
        .iter()
        .map(|i| format!("{} ({})", i.path, i.why))
        .collect();
    Some(parts.join(", "))
}

fn restore_override(
    dir: &Path,
    ov: &Override,
    file_digest: &str,
) -> Result<(Config, Arc<str>), String> {
    if ov.base_digest != file_digest {
        return Err("the config file changed since the config was set through the API".into());
    }
    let path = dir.join(OVERRIDE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if digest(&text) != ov.digest {
        return Err(format!("{} does not match state.json", path.display()));
    }
    let config = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    warn_ignored(&config);
    Ok((config, Arc::from(text)))
}

struct Inner {
    applier: Box<dyn Apply>,
    state: StateFile,
    /// Texts of the versions in the history that this process has seen, newest last.
    texts: VecDeque<(u64, Arc<str>)>,
}

/// The versioned configuration of a running master. Cheap to share (`Arc`).
pub struct ConfigStore {
    config_file: PathBuf,
    state_dir: Option<PathBuf>,
    inner: Mutex<Inner>,
    current: watch::Sender<Arc<Current>>,
}

impl ConfigStore {
    /// `boot.current` must already be running (discovery and coordinator started with it).
    pub fn new(boot: Boot, applier: Box<dyn Apply>) -> ConfigStore {
        let (current, _) = watch::channel(Arc::new(boot.current));
        ConfigStore {
            config_file: boot.config_file,
            state_dir: boot.state_dir,
            inner: Mutex::new(Inner {
                applier,
                state: boot.state,
                texts: boot.texts,
            }),
            current,
        }
    }

    pub fn current(&self) -> Arc<Current> {
        self.current.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Current>> {
        self.current.subscribe()
    }

    /// The last versions, newest first.
    pub async fn history(&self) -> Vec<VersionInfo> {
        let inner = self.inner.lock().await;
        inner.state.history.iter().rev().cloned().collect()
    }

    /// The text of a version, if this process still has it.
    pub async fn text_of(&self, version: u64) -> Option<Arc<str>> {
        let inner = self.inner.lock().await;
        inner
            .texts
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, t)| t.clone())
    }

    /// `PUT /api/v1/config`: `if_match` is the `If-Match` header, if any.
    pub async fn put(&self, text: String, if_match: Option<&str>) -> Result<Changed, ChangeError> {
        self.change(text, Source::Api, if_match).await
    }

    /// `POST /-/reload` and SIGHUP: runs the config file as it is now.
    pub async fn reload(&self) -> Result<Changed, ChangeError> {
        let text = std::fs::read_to_string(&self.config_file).map_err(|e| {
            ChangeError::Read(format!(
                "reading config file {}: {e}",
                self.config_file.display()
            ))
        })?;
        self.change(text, Source::Reload, None).await
    }

    /// Stops what the applier runs (discovery), at shutdown.
    pub async fn stop(&self) {
        self.inner.lock().await.applier.stop();
    }

    async fn change(
        &self,
        text: String,
        source: Source,
        if_match: Option<&str>,
    ) -> Result<Changed, ChangeError> {
        // Held for the whole change: changes are strictly one after the other.
        let mut inner = self.inner.lock().await;
        let config = parse(&text).map_err(ChangeError::Invalid)?;
        check_placeholders(&text).map_err(ChangeError::Invalid)?;
        warn_ignored(&config);
        let current = self.current();
        if let Some(expected) = if_match
            && !version_matches(expected, current.info.version)
        {
            return Err(ChangeError::VersionMismatch {
                expected: expected.to_string(),
                current: current.info.version,
            });
        }
        let new_digest = digest(&text);
        let overridden = inner.state.override_config.is_some();
        // A reload while the state dir's config runs is a change even if the texts are equal:
        // it hands the authority back to the file.
        if new_digest == current.info.digest && !(source == Source::Reload && overridden) {
            return Ok(Changed {
                info: current.info.clone(),
                unchanged: true,
            });
        }

        let previous_override = inner.state.override_config.clone();
        let persisted = match source {
            Source::Api => self.persist(&text, &new_digest)?,
            Source::File | Source::Reload => Persisted::File,
        };
        let config = Arc::new(config);
        if let Err(e) = inner.applier.apply(config.clone()).await {
            // Put the previous text back where this change wrote; the old config still runs.
            if source == Source::Api {
                let restored = match (&persisted, previous_override) {
                    (Persisted::File, _) => write_atomic(&self.config_file, &current.text),
                    (Persisted::StateDir(_), Some(_)) => self.write_override(&current.text),
                    (Persisted::StateDir(p), None) => std::fs::remove_file(p),
                };
                if let Err(re) = restored {
                    tracing::error!(error = %re, "cannot restore the previous config text after a failed apply");
                }
            }
            return Err(ChangeError::Apply(e));
        }

        let state = &mut inner.state;
        state.version += 1;
        let persisted_to = match &persisted {
            Persisted::File => self.config_file.display().to_string(),
            Persisted::StateDir(p) => p.display().to_string(),
        };
        let info = VersionInfo {
            version: state.version,
            time_ms: now_ms(),
            source,
            digest: new_digest.clone(),
            persisted_to,
        };
        state.override_config = match &persisted {
            Persisted::StateDir(_) => Some(Override {
                version: info.version,
                digest: new_digest,
                base_digest: self.file_digest(),
            }),
            Persisted::File => {
                if let Some(dir) = &self.state_dir {
                    let _ = std::fs::remove_file(dir.join(OVERRIDE_FILE));
                }
                None
            }
        };
        push_history(&mut state.history, info.clone());
        if let Some(dir) = &self.state_dir {
            write_state(dir, state);
        }
        let text: Arc<str> = Arc::from(text);
        inner.texts.push_back((info.version, text.clone()));
        while inner.texts.len() > HISTORY_LEN {
            inner.texts.pop_front();
        }
        tracing::info!(version = info.version, source = ?info.source, persisted_to = %info.persisted_to, "configuration changed");
        self.current.send_replace(Arc::new(Current {
            info: info.clone(),
            config,
            text,
        }));
        Ok(Changed {
            info,
            unchanged: false,
        })
    }

    /// Writes an API change: to the config file, or, if that cannot be written (a read-only
    /// ConfigMap mount), to the state dir.
    fn persist(&self, text: &str, _digest: &str) -> Result<Persisted, ChangeError> {
        let file_err = match write_atomic(&self.config_file, text) {
            Ok(()) => return Ok(Persisted::File),
            Err(e) => e,
        };
        let Some(dir) = &self.state_dir else {
            return Err(ChangeError::Persist(format!(
                "writing {}: {file_err}; set --config.state-dir to a writable directory",
                self.config_file.display()
            )));
        };
        tracing::info!(file = %self.config_file.display(), error = %file_err, dir = %dir.display(), "config file not writable; persisting to the state dir");
        self.write_override(text).map_err(|e| {
            ChangeError::Persist(format!(
                "writing {}: {file_err}; writing {}: {e}",
                self.config_file.display(),
                dir.join(OVERRIDE_FILE).display()
            ))
        })?;
        Ok(Persisted::StateDir(dir.join(OVERRIDE_FILE)))
    }

    fn write_override(&self, text: &str) -> std::io::Result<()> {
        match &self.state_dir {
            Some(dir) => write_atomic(&dir.join(OVERRIDE_FILE), text),
            None => Err(std::io::Error::other("no state dir")),
        }
    }

    fn file_digest(&self) -> String {
        std::fs::read_to_string(&self.config_file)
            .map(|t| digest(&t))
            .unwrap_or_default()
    }
}

enum Persisted {
    File,
    StateDir(PathBuf),
}

fn push_history(history: &mut Vec<VersionInfo>, info: VersionInfo) {
    history.push(info);
    if history.len() > HISTORY_LEN {
        let extra = history.len() - HISTORY_LEN;
        history.drain(..extra);
    }
}

/// `If-Match: "3"`, `3`, `W/"3"`, a list of those, or `*`.
fn version_matches(header: &str, version: u64) -> bool {
    let want = version.to_string();
    header.split(',').map(str::trim).any(|tag| {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*" || tag.trim_matches('"') == want
    })
}

/// The ETag of a version: `"<version>"`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

pub fn digest(text: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn read_state(dir: &Path) -> StateFile {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable state file");
            StateFile::default()
        }),
        Err(_) => StateFile::default(),
    }
}

fn write_state(dir: &Path, state: &StateFile) {
    let path = dir.join(STATE_FILE);
    let result = serde_json::to_string_pretty(state)
        .map_err(std::io::Error::other)
        .and_then(|json| write_atomic(&path, &json));
    if let Err(e) = result {
        tracing::error!(path = %path.display(), error = %e, "cannot write the config state file");
    }
}

/// Writes `text` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory. A symlink is followed, so the file it points to is replaced.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(&path) {
            // Keep the file's mode (a config may be readable by its owner only).
            let _ = std::fs::set_permissions(&tmp, meta.permissions());
        }
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The keys whose values Prometheus shows as `<secret>` (its `config.Secret` fields); `key`
/// only inside `tls_config`.
const SECRET_KEYS: &[&str] = &[
    "password",
    "credentials",
    "bearer_token",
    "client_secret",
    "secret_key",
    "access_key_secret",
    // consul_sd_configs
    "token",
    // http_headers.<name>.secrets: a list, each masked
    "secrets",
];
pub const SECRET_PLACEHOLDER: &str = "<secret>";

fn is_secret_key(key: &str, parent: Option<&str>) -> bool {
    SECRET_KEYS.contains(&key)
        || (key == "key" && parent == Some("tls_config"))
        // proxy_connect_header.<name>: a list of secrets
        || parent == Some("proxy_connect_header")
}

/// The configuration as YAML with every secret replaced by `<secret>`, as Prometheus shows it.
/// Works on the YAML tree, so a secret field added to the model later is masked as long as it
/// has one of Prometheus's names.
pub fn masked_yaml(config: &Config) -> String {
    let mut value = match serde_norway::to_value(config) {
        Ok(v) => v,
        Err(_) => return String::new(),
    };
    mask(&mut value, None);
    serde_norway::to_string(&value).unwrap_or_default()
}

fn mask(v: &mut serde_norway::Value, parent: Option<&str>) {
    use serde_norway::Value;
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let key = k.as_str().unwrap_or("");
                let non_empty =
                    !matches!(val, Value::Null) && val.as_str().is_none_or(|s| !s.is_empty());
                if is_secret_key(key, parent) && non_empty {
                    match val {
                        // A list of secrets keeps its shape.
                        Value::Sequence(items) => items
                            .iter_mut()
                            .for_each(|x| *x = Value::String(SECRET_PLACEHOLDER.into())),
                        _ => *val = Value::String(SECRET_PLACEHOLDER.into()),
                    }
                } else {
                    mask(val, Some(key));
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(|x| mask(x, parent)),
        Value::Tagged(t) => mask(&mut t.value, parent),
        _ => {}
    }
}

/// Refuses a text that carries `<secret>` as a secret's value: it is what `GET` shows, and
/// PUTting it back would replace a real password with the placeholder.
fn check_placeholders(text: &str) -> Result<(), ConfigError> {
    let Ok(value) = serde_norway::from_str::<serde_norway::Value>(text) else {
        return Ok(());
    };
    let mut found = None;
    find_placeholder(&value, None, "", &mut found);
    match found {
        Some(path) => Err(ConfigError {
            path,
            message: format!(
                "{SECRET_PLACEHOLDER} is the masked value the API shows, not a secret: send the real value"
            ),
        }),
        None => Ok(()),
    }
}

fn find_placeholder(
    v: &serde_norway::Value,
    parent: Option<&str>,
    path: &str,
    found: &mut Option<String>,
) {
    use serde_norway::Value;
    if found.is_some() {
        return;
    }
    match v {
        Value::Mapping(m) => {
            let job = m.get("job_name").and_then(Value::as_str);
            for (k, val) in m {
                let key = k.as_str().unwrap_or("");
                let here = match job {
                    Some(j) if path.ends_with(']') => format!("{path} (job {j:?}).{key}"),
                    _ if path.is_empty() => key.to_string(),
                    _ => format!("{path}.{key}"),
                };
                let placeholder = |v: &Value| v.as_str() == Some(SECRET_PLACEHOLDER);
                let is_placeholder = placeholder(val)
                    || val.as_sequence().is_some_and(|s| s.iter().any(placeholder));
                if is_secret_key(key, parent) && is_placeholder {
                    *found = Some(here);
                    return;
                }
                find_placeholder(val, Some(key), &here, found);
            }
        }
        Value::Sequence(s) => {
            for (i, x) in s.iter().enumerate() {
                find_placeholder(x, parent, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const A: &str = "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['h:1']}]\n";
    const B: &str = "scrape_configs:\n  - job_name: b\n    static_configs: [{targets: ['h:2']}]\n";

    #[derive(Clone, Default)]
    struct Recorder {
        applied: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
        fail: Arc<AtomicUsize>,
    }

    impl Apply for Recorder {
        fn apply(&mut self, config: Arc<Config>) -> BoxFuture<'_, Result<(), String>> {
            Box::pin(async move {
                if self.fail.load(Ordering::SeqCst) > 0 {
                    self.fail.fetch_sub(1, Ordering::SeqCst);
                    return Err("discovery: no client".into());
                }
                let jobs = config
                    .scrape_configs
                    .iter()
                    .map(|s| s.job_name.clone())
                    .collect();
                self.applied.lock().unwrap().push(jobs);
                Ok(())
            })
        }
    }

    fn store(file: &Path, state_dir: Option<&Path>) -> (ConfigStore, Recorder) {
        let rec = Recorder::default();
        let boot = Boot::load(file, state_dir).unwrap();
        (ConfigStore::new(boot, Box::new(rec.clone())), rec)
    }

    #[tokio::test]
    async fn put_validates_versions_persists_and_applies() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, A).unwrap();
        let (s, rec) = store(&file, None);
        assert_eq!(s.current().info.version, 1);
        assert_eq!(s.current().info.source, Source::File);

        let bad = "scrape_configs:\n  - job_name: x\n    scrape_interval: 0s\n";
        let err = s.put(bad.into(), None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "scrape_configs[0] (job \"x\").scrape_interval: scrape_interval must be greater than 0"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), A);
        assert!(rec.applied.lock().unwrap().is_empty());

        let err = s.put(B.into(), Some("\"7\"")).await.unwrap_err();
        assert!(matches!(
            err,
            ChangeError::VersionMismatch { current: 1, .. }
        ));
        let ok = s.put(B.into(), Some("\"1\"")).await.unwrap();
        assert_eq!((ok.info.version, ok.unchanged), (2, false));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), B);
        assert_eq!(*rec.applied.lock().unwrap(), vec![vec!["b".to_string()]]);
        // The same text again is no new version.
        let same = s.put(B.into(), None).await.unwrap();
        assert_eq!((same.info.version, same.unchanged), (2, true));

        let h = s.history().await;
        let got: Vec<(u64, Source)> = h.iter().map(|v| (v.version, v.source)).collect();
        assert_eq!(got, vec![(2, Source::Api), (1, Source::File)]);
        assert_eq!(s.text_of(1).await.as_deref(), Some(A));
    }

    #[tokio::test]
    async fn failed_apply_restores_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, A).unwrap();
        let (s, rec) = store(&file, None);
        rec.fail.store(1, Ordering::SeqCst);
        let err = s.put(B.into(), None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot apply the config: discovery: no client"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), A);
        assert_eq!(s.current().info.version, 1);
    }

    #[tokio::test]
    async fn unwritable_file_goes_to_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, A).unwrap();
        let state = dir.path().join("state");
        let (s, _) = store(&file, Some(&state));
        // A file that cannot be replaced, as on a read-only ConfigMap mount. (Tests may run as
        // root, where permissions stop nothing: use a path whose parent is a plain file.)
        std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
        let blocked = ConfigStore {
            config_file: dir.path().join("not-a-dir").join("prometheus.yml"),
            ..s
        };
        let ok = blocked.put(B.into(), None).await.unwrap();
        let override_path = state.join(OVERRIDE_FILE);
        assert_eq!(ok.info.persisted_to, override_path.display().to_string());
        assert_eq!(std::fs::read_to_string(&override_path).unwrap(), B);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), A);
        drop(blocked);

        // That override was made over another file than the one a restart reads, which is
        // how a ConfigMap rollout looks: the file wins and the override is discarded.
        let (s2, _) = store(&file, Some(&state));
        assert_eq!(&*s2.current().text, A);
        assert_eq!(
            s2.current().info.version,
            3,
            "versions continue across restarts"
        );
        assert!(!override_path.exists());
    }

    #[tokio::test]
    async fn state_dir_config_wins_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, A).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        // As a PUT over a read-only file leaves it.
        std::fs::write(state.join(OVERRIDE_FILE), B).unwrap();
        let st = StateFile {
            version: 2,
            override_config: Some(Override {
                version: 2,
                digest: digest(B),
                base_digest: digest(A),
            }),
            history: vec![],
        };
        write_state(&state, &st);
        let (s, _) = store(&file, Some(&state));
        assert_eq!(&*s.current().text, B);
        assert_eq!(s.current().info.version, 2);

        // A reload hands authority back to the file.
        let r = s.reload().await.unwrap();
        assert_eq!((r.info.version, r.info.source), (3, Source::Reload));
        assert_eq!(&*s.current().text, A);
        assert!(!state.join(OVERRIDE_FILE).exists());
        drop(s);
        let (s, _) = store(&file, Some(&state));
        assert_eq!((s.current().info.version, &*s.current().text), (3, A));
    }

    /// The `prometheus_cr` block is shown, and the credentials of a job generated from a
    /// resource (read from a Secret) are masked like the file's.
    #[test]
    fn prometheus_cr_block_shown_and_generated_credentials_masked() {
        let file = Config::parse(
            "prometheus_cr:\n  enabled: true\n  service_monitor_selector: {matchLabels: {release: kps}}\n",
        )
        .unwrap();
        let job = file
            .generated_job(
                serde_norway::from_str(
                    "job_name: serviceMonitor/ns/a/0\nbasic_auth: {username: u, password: from-secret}\nstatic_configs: [{targets: ['h:1']}]\n",
                )
                .unwrap(),
            )
            .unwrap();
        let (running, clashes) = file.with_generated_jobs(&[job]);
        assert!(clashes.is_empty());
        let shown = masked_yaml(&running);
        assert!(!shown.contains("from-secret"), "{shown}");
        assert!(shown.contains("password: <secret>"), "{shown}");
        assert!(shown.contains("prometheus_cr:"), "{shown}");
        assert!(shown.contains("release: kps"), "{shown}");
    }

    #[test]
    fn secrets_of_parsed_scrape_and_remote_write_configs_are_masked() {
        let text = r#"
scrape_configs:
  - job_name: a
    basic_auth: {username: alice, password: hunter2}
    tls_config: {cert: CERTPEM, key: KEYPEM}
    static_configs: [{targets: ['h:1']}]
  - job_name: b
    authorization: {credentials: tok-b}
    static_configs: [{targets: ['h:2']}]
  - job_name: c
    bearer_token: tok-c
    static_configs: [{targets: ['h:3']}]
  - job_name: d
    oauth2: {client_id: cid, client_secret: oauth-secret, token_url: 'http://idp/token'}
    http_headers: {X-Key: {values: [plain], secrets: [hdr-1, hdr-2]}}
    proxy_url: http://proxy:3128
    proxy_connect_header: {Proxy-Authorization: [proxy-cred]}
    consul_sd_configs: [{server: 'c:8500', token: consul-tok}]
remote_write:
  - url: http://rw/api/v1/write
    basic_auth: {username: bob, password: rw-pass}
"#;
        let cfg = Config::parse(text).unwrap();
        let yaml = masked_yaml(&cfg);
        let secrets = [
            "hunter2",
            "KEYPEM",
            "tok-b",
            "tok-c",
            "rw-pass",
            "oauth-secret",
            "hdr-1",
            "hdr-2",
            "proxy-cred",
            "consul-tok",
        ];
        for secret in secrets {
            assert!(!yaml.contains(secret), "{secret} shown:\n{yaml}");
        }
        assert_eq!(
            yaml.matches(SECRET_PLACEHOLDER).count(),
            secrets.len(),
            "{yaml}"
        );
        // What GET shows cannot be PUT back.
        assert!(check_placeholders(&yaml).is_err());
        for shown in ["alice", "bob", "CERTPEM", "cid", "plain"] {
            assert!(yaml.contains(shown), "{shown} hidden:\n{yaml}");
        }
        // The workers still get the real values.
        assert!(cfg.for_workers().to_yaml().contains("hunter2"));
    }

    #[test]
    fn if_match_forms() {
        assert!(version_matches("\"3\"", 3));
        assert!(version_matches("3", 3));
        assert!(version_matches("W/\"3\"", 3));
        assert!(version_matches("\"1\", \"3\"", 3));
        assert!(version_matches("*", 3));
        assert!(!version_matches("\"2\"", 3));
    }

    #[test]
    fn secrets_are_masked_and_placeholders_refused() {
        let cfg = Config::parse(A).unwrap();
        let mut v = serde_norway::to_value(&cfg).unwrap();
        // Whatever fields the model has, masking works on the YAML tree.
        let extra: serde_norway::Value = serde_norway::from_str(
            "basic_auth: {username: u, password: p}\nauthorization: {credentials: c}\nbearer_token: t\ntls_config: {key: k, cert: c, ca_file: /ca}\nheaders: {key: v}\n",
        )
        .unwrap();
        let sc = &mut v["scrape_configs"][0];
        for (k, val) in extra.as_mapping().unwrap() {
            sc.as_mapping_mut().unwrap().insert(k.clone(), val.clone());
        }
        mask(&mut v, None);
        let sc = &v["scrape_configs"][0];
        assert_eq!(sc["basic_auth"]["username"], "u");
        assert_eq!(sc["basic_auth"]["password"], "<secret>");
        assert_eq!(sc["authorization"]["credentials"], "<secret>");
        assert_eq!(sc["bearer_token"], "<secret>");
        assert_eq!(sc["tls_config"]["key"], "<secret>");
        assert_eq!(sc["tls_config"]["cert"], "c");
        assert_eq!(sc["tls_config"]["ca_file"], "/ca");
        assert_eq!(sc["headers"]["key"], "v");

        let err = check_placeholders(
            "scrape_configs:\n  - job_name: n\n    basic_auth: {username: u, password: <secret>}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.path,
            "scrape_configs[0] (job \"n\").basic_auth.password"
        );
    }
}
