//! The Helm chart (`charts/promshard`) rendered by the real `helm`, for multi-process tests that
//! run promshard exactly as the chart configures it: the rendered command lines, the generated
//! Secrets and the ConfigMap written out the way the kubelet mounts them, the rendered
//! prometheus.yml.
//!
//! The chart's own tests (`tests/helm/test_chart.py`) check what it renders; tests built on this
//! module check that what it renders works: that a worker without the chart's credential is
//! kept out, that the default kubelet jobs scrape. `helm` is `$HELM`, else the one
//! `scripts/install-helm.sh` puts in `.tools/bin/` (`scripts/test.sh` runs it before the cargo
//! tests).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::Value;
use tokio::process::Command;

/// The release name and namespace every render uses: objects are `ps-promshard-*` in
/// `monitoring`, as in the chart's own tests.
pub const RELEASE: &str = "ps";
pub const NAMESPACE: &str = "monitoring";
/// `<release>-promshard`, the chart's fullname for [`RELEASE`].
pub const FULLNAME: &str = "ps-promshard";

/// How long one `helm template` may take.
const HELM_DEADLINE: Duration = Duration::from_secs(60);

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The `helm` binary: `$HELM`, else `.tools/bin/helm`. Panics, saying how to get it, when
/// neither exists.
pub fn helm_bin() -> PathBuf {
    let path = std::env::var_os("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/bin/helm"));
    assert!(
        path.is_file(),
        "helm is missing at {}: run ./scripts/install-helm.sh (./scripts/test.sh does), or set HELM",
        path.display()
    );
    path
}

/// The objects of one render.
#[derive(Clone, Debug)]
pub struct Chart {
    objects: Vec<Value>,
}

impl Chart {
    /// `helm template ps charts/promshard --namespace monitoring ARGS...` (e.g. `--set k=v`,
    /// `--dry-run=server --kubeconfig FILE` for `lookup` against an API server). Panics with
    /// helm's error if the render fails.
    pub async fn template(args: &[&str]) -> Chart {
        let chart = repo_root().join("charts/promshard");
        let mut command = Command::new(helm_bin());
        command
            .args(["template", RELEASE])
            .arg(&chart)
            .args(["--namespace", NAMESPACE])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = match tokio::time::timeout(HELM_DEADLINE, command.output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => panic!("cannot run helm: {e}"),
            Err(_) => panic!("helm template ran longer than {HELM_DEADLINE:?}"),
        };
        assert!(
            output.status.success(),
            "helm template {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let mut objects = Vec::new();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("helm rendered YAML that does not parse: {e}"));
            if !value.is_null() {
                objects.push(value);
            }
        }
        Chart { objects }
    }

    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    /// Every object of a kind.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    /// The one object of this kind and name; panics if there is none.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("the chart rendered no {kind} {name}"))
    }

    /// A Secret's data, decoded.
    pub fn secret_data(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        let data = self.get("Secret", name)["data"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        data.into_iter()
            .map(|(key, value)| {
                let encoded = value.as_str().unwrap_or_default();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_else(|e| panic!("Secret {name} key {key}: not base64: {e}"));
                (key, decoded)
            })
            .collect()
    }

    /// The rendered prometheus.yml (the master's ConfigMap).
    pub fn prometheus_yml(&self) -> String {
        let config = self.get("ConfigMap", &format!("{FULLNAME}-config"));
        config["data"]["prometheus.yml"]
            .as_str()
            .unwrap_or_else(|| panic!("the config ConfigMap has no prometheus.yml"))
            .to_owned()
    }

    /// The (only) container of a Deployment or StatefulSet.
    pub fn container(&self, kind: &str, name: &str) -> &Value {
        &self.get(kind, name)["spec"]["template"]["spec"]["containers"][0]
    }

    /// The container's command line, as rendered.
    pub fn args(&self, kind: &str, name: &str) -> Vec<String> {
        strings(&self.container(kind, name)["args"])
    }

    /// Writes what the container of workload `kind`/`name` sees of its Secret and ConfigMap
    /// volumes under `root`, laid out as the kubelet mounts them (`root` + mountPath + the item's
    /// path, only the listed items when a volume lists some), and returns the container's
    /// arguments with every `--flag=PATH` under one of those mounts moved under `root`.
    ///
    /// Panics if a mounted Secret or ConfigMap is not part of the render (an existing Secret the
    /// chart only names): a test cannot invent its content.
    pub fn materialize(&self, kind: &str, name: &str, root: &Path) -> Vec<String> {
        let pod = &self.get(kind, name)["spec"]["template"]["spec"];
        let container = self.container(kind, name);
        let mut mounts = Vec::new();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let mount_path = mount["mountPath"].as_str().unwrap_or_default();
            let volume = pod["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == mount["name"]);
            let Some(volume) = volume else { continue };
            let (data, items) = if let Some(secret) = volume.get("secret") {
                let name = secret["secretName"].as_str().unwrap_or_default();
                (self.secret_data(name), &secret["items"])
            } else if let Some(config_map) = volume.get("configMap") {
                let name = config_map["name"].as_str().unwrap_or_default();
                let data = self.get("ConfigMap", name)["data"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().as_bytes().to_vec()))
                    .collect();
                (data, &config_map["items"])
            } else {
                continue;
            };
            let files: Vec<(String, String)> = match items.as_array() {
                Some(items) => items
                    .iter()
                    .map(|i| (string(&i["key"]), string(&i["path"])))
                    .collect(),
                None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            let dir = under(root, mount_path);
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            for (key, path) in files {
                let content = data.get(&key).unwrap_or_else(|| {
                    panic!(
                        "volume {} mounts key {key}, which is not in it",
                        mount["name"]
                    )
                });
                let file = dir.join(&path);
                std::fs::write(&file, content)
                    .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
            }
            mounts.push(mount_path.trim_end_matches('/').to_owned());
        }
        self.args(kind, name)
            .into_iter()
            .map(|arg| {
                let Some((flag, value)) = arg.split_once('=') else {
                    return arg;
                };
                let moved = mounts.iter().any(|m| {
                    value == m
                        || value
                            .strip_prefix(m.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                });
                if moved {
                    format!("{flag}={}", under(root, value).display())
                } else {
                    arg
                }
            })
            .collect()
    }
}

/// `root` joined with an absolute path.
fn under(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}

fn string(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().map(string).collect()
}

/// Replaces the value of `--flag=VALUE` in `args`; panics if the flag is not there, so a test
/// that adapts the chart's command line notices when the chart changes it.
pub fn set_flag(args: &mut [String], flag: &str, value: &str) {
    let prefix = format!("{flag}=");
    let arg = args
        .iter_mut()
        .find(|a| a.starts_with(&prefix))
        .unwrap_or_else(|| panic!("the chart's command line has no {flag}"));
    *arg = format!("{prefix}{value}");
}

/// The value of `--flag=VALUE` in `args`; panics if absent.
pub fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let prefix = format!("{flag}=");
    args.iter()
        .find_map(|a| a.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the chart's command line has no {flag}"))
}

/// `args` without `--flag=...`; panics if it was not there.
pub fn remove_flag(args: &[String], flag: &str) -> Vec<String> {
    let prefix = format!("{flag}=");
    assert!(
        args.iter().any(|a| a.starts_with(&prefix)),
        "the chart's command line has no {flag}"
    );
    args.iter()
        .filter(|a| !a.starts_with(&prefix))
        .cloned()
        .collect()
}
