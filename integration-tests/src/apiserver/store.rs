//! The double's etcd and watch cache in one: the objects of every kind, one resourceVersion
//! counter shared by all kinds, and a bounded history of events per kind that watches replay.
//!
//! Everything here is synchronous and runs under one mutex; callers copy out `Arc`s and do the
//! serialization and the network I/O after releasing it, so thousands of objects and a busy
//! watch do not hold the lock for long.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::resources::{RESOURCES, ResourceType};

/// `(namespace, name)`; the namespace is empty for cluster-scoped kinds. Ordered like etcd keys,
/// which is the order a real LIST returns.
pub(super) type Key = (String, String);

/// How many paginated lists may be in progress at once; older continue tokens expire (410).
const MAX_SNAPSHOTS: usize = 16;

pub(super) struct Store {
    /// The last resourceVersion handed out. Never 0, so `resourceVersion=0` always means "any".
    rv: u64,
    /// Watches and continue tokens from before this resourceVersion get 410 Gone.
    compacted: u64,
    history_limit: usize,
    kinds: HashMap<&'static str, KindStore>,
    /// Lists being paged through: the exact items of the first page's resourceVersion, as
    /// etcd serves later pages from the same revision.
    snapshots: VecDeque<Snapshot>,
    next_snapshot: u64,
    next_uid: u64,
    /// Server-side apply's field ownership, per object (kind, key): the JSON pointer of each
    /// field a PATCH with a `fieldManager` set, and that manager. One owner per field (the last
    /// writer); enough for apply's conflict check, which is what makes a Lease safe to take.
    owners: HashMap<(&'static str, Key), BTreeMap<String, String>>,
}

/// Who writes a PATCH (`?fieldManager=`), and whether an apply may take fields over (`?force=`).
#[derive(Clone, Debug, Default)]
pub(super) struct Manager {
    pub(super) name: Option<String>,
    pub(super) force: bool,
}

struct KindStore {
    objects: BTreeMap<Key, Arc<Value>>,
    history: VecDeque<Event>,
    /// The resourceVersion of the newest event dropped from `history` (0: none dropped).
    trimmed: u64,
    /// Carries this kind's latest resourceVersion; watches wait on it.
    changed: watch::Sender<u64>,
}

struct Snapshot {
    id: u64,
    resource: &'static str,
    rv: u64,
    items: Vec<Arc<Value>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change to one object. `previous` is the object before a modification, so a watch with a
/// selector can turn "started matching" into ADDED and "stopped matching" into DELETED.
#[derive(Clone, Debug)]
pub(super) struct Event {
    pub(super) rv: u64,
    pub(super) kind: EventType,
    pub(super) object: Arc<Value>,
    pub(super) previous: Option<Arc<Value>>,
}

/// A failed request, answered with a `Status` object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ApiError {
    pub(super) code: u16,
    pub(super) reason: &'static str,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub(super) fn not_found(res: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(res)),
        )
    }

    fn conflict(res: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                qualified(res)
            ),
        )
    }

    fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    /// The `Status` object a real API server answers with.
    pub(super) fn status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// `pods` or `leases.coordination.k8s.io`, as in the API server's messages.
fn qualified(res: &ResourceType) -> String {
    if res.group.is_empty() {
        res.plural.to_owned()
    } else {
        format!("{}.{}", res.plural, res.group)
    }
}

/// What a write requires of the object's current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteMode {
    /// POST: the object must not exist.
    Create,
    /// PUT: the object must exist, and a `metadata.resourceVersion` in the body must match.
    Update,
    /// The test API's `apply`: create or replace, whatever the body's resourceVersion.
    Upsert,
}

/// One page of a LIST.
pub(super) struct ListPage {
    pub(super) rv: u64,
    pub(super) items: Vec<Arc<Value>>,
    pub(super) continue_token: Option<String>,
    pub(super) remaining: Option<usize>,
}

/// How a PATCH body is applied. All three merge like RFC 7386 JSON merge patch; strategic
/// merge's list semantics are not modelled. Server-side apply checks field ownership: an apply
/// that would change a field another manager set is a 409 Conflict unless forced (fields an
/// apply omits are not removed, unlike a real server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PatchType {
    Merge,
    Strategic,
    /// Server-side apply: creates the object when it does not exist.
    Apply,
}

impl Store {
    pub(super) fn new(history_limit: usize) -> Store {
        let kinds = RESOURCES
            .iter()
            .map(|r| {
                let kind = KindStore {
                    objects: BTreeMap::new(),
                    history: VecDeque::new(),
                    trimmed: 0,
                    changed: watch::Sender::new(1),
                };
                (r.plural, kind)
            })
            .collect();
        Store {
            rv: 1,
            compacted: 0,
            history_limit: history_limit.max(1),
            kinds,
            snapshots: VecDeque::new(),
            next_snapshot: 1,
            next_uid: 1,
            owners: HashMap::new(),
        }
    }

    pub(super) fn resource_version(&self) -> u64 {
        self.rv
    }

    fn kind(&self, res: &ResourceType) -> &KindStore {
        // Every kind of RESOURCES gets a KindStore in `new`, and `ResourceType`s only come from
        // that table.
        &self.kinds[res.plural]
    }

    fn kind_mut(&mut self, res: &ResourceType) -> &mut KindStore {
        self.kinds
            .get_mut(res.plural)
            .unwrap_or_else(|| unreachable!("{} is in RESOURCES", res.plural))
    }

    /// A receiver that changes whenever an event of this kind is recorded.
    pub(super) fn subscribe(&self, res: &ResourceType) -> watch::Receiver<u64> {
        self.kind(res).changed.subscribe()
    }

    pub(super) fn get(
        &self,
        res: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        let key = (namespace_key(res, namespace), name.to_owned());
        self.kind(res).objects.get(&key).cloned()
    }

    /// Objects of a kind in key order, all namespaces or one.
    pub(super) fn objects(&self, res: &ResourceType, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let objects = &self.kind(res).objects;
        match namespace {
            None => objects.values().cloned().collect(),
            Some(namespace) => objects
                .range((namespace.to_owned(), String::new())..)
                .take_while(|((ns, _), _)| ns == namespace)
                .map(|(_, object)| object.clone())
                .collect(),
        }
    }

    /// Creates or replaces an object. `path_namespace` and `path_name` come from the URL and
    /// must agree with the body where both are given. Returns the stored object and whether it
    /// was created.
    pub(super) fn write(
        &mut self,
        res: &'static ResourceType,
        path_namespace: Option<&str>,
        path_name: Option<&str>,
        object: Value,
        mode: WriteMode,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let mut object = match object {
            Value::Object(map) => map,
            _ => return Err(ApiError::bad_request("the body is not a JSON object")),
        };
        let api_version = res.api_version();
        for (field, expected) in [("apiVersion", api_version.as_str()), ("kind", res.kind)] {
            match object.get(field) {
                None => {}
                Some(Value::String(s)) if s == expected => {}
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "{field} {other} does not match the request path, which is for {expected}"
                    )));
                }
            }
        }
        // Keep apiVersion and kind first, as the API server's output has them.
        let mut normalized = Map::new();
        normalized.insert("apiVersion".to_owned(), json!(api_version));
        normalized.insert("kind".to_owned(), json!(res.kind));
        object.remove("apiVersion");
        object.remove("kind");
        normalized.append(&mut object);
        let mut object = Value::Object(normalized);

        let metadata = object
            .as_object_mut()
            .and_then(|o| {
                o.entry("metadata")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
            })
            .ok_or_else(|| ApiError::bad_request("metadata is not an object"))?;
        let namespace = if res.namespaced {
            let body = metadata
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let namespace = match (path_namespace, body) {
                (Some(path), Some(body)) if path != body => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent \
                         on the request",
                    ));
                }
                (Some(ns), _) | (None, Some(ns)) => ns.to_owned(),
                (None, None) => "default".to_owned(),
            };
            metadata.insert("namespace".to_owned(), json!(namespace));
            namespace
        } else {
            metadata.remove("namespace");
            String::new()
        };
        let body_name = metadata
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let name = match (path_name, body_name) {
            (Some(path), Some(body)) if path != body => {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            (Some(name), _) | (None, Some(name)) => name.to_owned(),
            (None, None) => match metadata.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let name = format!("{prefix}{}", name_suffix(self.next_uid));
                    self.next_uid += 1;
                    name
                }
                _ => {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        format!("{} is invalid: metadata.name: Required value", res.kind),
                    ));
                }
            },
        };
        metadata.insert("name".to_owned(), json!(name));
        let body_rv = metadata
            .get("resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);

        let key = (namespace, name);
        let previous = self.kind(res).objects.get(&key).cloned();
        match (mode, &previous) {
            (WriteMode::Create, Some(_)) => {
                return Err(ApiError::new(
                    409,
                    "AlreadyExists",
                    format!("{} \"{}\" already exists", qualified(res), key.1),
                ));
            }
            (WriteMode::Update, None) => return Err(ApiError::not_found(res, &key.1)),
            (WriteMode::Update, Some(previous))
                if body_rv.is_some_and(|rv| Some(rv.as_str()) != resource_version(previous)) =>
            {
                return Err(ApiError::conflict(res, &key.1));
            }
            _ => {}
        }
        let created = previous.is_none();
        Ok((self.commit(res, key, object, previous), created))
    }

    /// Stamps the object with a new resourceVersion (and uid and creationTimestamp, kept from
    /// the previous version if any), stores it and records the event.
    fn commit(
        &mut self,
        res: &ResourceType,
        key: Key,
        mut object: Value,
        previous: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        let uid = previous
            .as_deref()
            .and_then(|p| p.pointer("/metadata/uid"))
            .or_else(|| object.pointer("/metadata/uid"))
            .cloned()
            .unwrap_or_else(|| {
                self.next_uid += 1;
                json!(format!("00000000-0000-4000-8000-{:012x}", self.next_uid))
            });
        let created = previous
            .as_deref()
            .and_then(|p| p.pointer("/metadata/creationTimestamp"))
            .or_else(|| object.pointer("/metadata/creationTimestamp"))
            .cloned()
            .unwrap_or_else(|| json!(now_rfc3339()));
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("resourceVersion".to_owned(), json!(rv.to_string()));
            metadata.insert("uid".to_owned(), uid);
            metadata.insert("creationTimestamp".to_owned(), created);
        }
        let object = Arc::new(object);
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.kind_mut(res).objects.insert(key, object.clone());
        self.record(
            res,
            Event {
                rv,
                kind,
                object: object.clone(),
                previous,
            },
        );
        object
    }

    fn record(&mut self, res: &ResourceType, event: Event) {
        let limit = self.history_limit;
        let rv = event.rv;
        let kind = self.kind_mut(res);
        kind.history.push_back(event);
        while kind.history.len() > limit {
            if let Some(dropped) = kind.history.pop_front() {
                kind.trimmed = dropped.rv;
            }
        }
        kind.changed.send_replace(rv);
    }

    /// Deletes an object. `expected_rv` is a DELETE precondition. Returns the object as it was
    /// deleted (with the deletion's resourceVersion, as in the DELETED event).
    pub(super) fn delete(
        &mut self,
        res: &'static ResourceType,
        namespace: &str,
        name: &str,
        expected_rv: Option<&str>,
    ) -> Result<Arc<Value>, ApiError> {
        let key = (namespace_key(res, namespace), name.to_owned());
        let previous = self
            .kind(res)
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        if expected_rv.is_some_and(|rv| Some(rv) != resource_version(&previous)) {
            return Err(ApiError::conflict(res, name));
        }
        self.kind_mut(res).objects.remove(&key);
        self.owners.remove(&(res.plural, key.clone()));
        self.rv += 1;
        let rv = self.rv;
        let mut object = (*previous).clone();
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("resourceVersion".to_owned(), json!(rv.to_string()));
        }
        let object = Arc::new(object);
        self.record(
            res,
            Event {
                rv,
                kind: EventType::Deleted,
                object: object.clone(),
                previous: Some(previous),
            },
        );
        Ok(object)
    }

    /// Applies a PATCH body to an object (see [`PatchType`]). A `metadata.resourceVersion` in
    /// the patch is a precondition, as on a real server.
    pub(super) fn patch(
        &mut self,
        res: &'static ResourceType,
        namespace: &str,
        name: &str,
        patch: Value,
        patch_type: PatchType,
        manager: &Manager,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        if !patch.is_object() {
            return Err(ApiError::bad_request("the patch is not a JSON object"));
        }
        let path_namespace = res.namespaced.then_some(namespace);
        let owner_key = (res.plural, (namespace_key(res, namespace), name.to_owned()));
        let mut fields = Vec::new();
        leaf_fields(&patch, String::new(), &mut fields);
        let Some(current) = self.get(res, namespace, name) else {
            if patch_type == PatchType::Apply {
                let mut object = patch.clone();
                strip_nulls(&mut object);
                let written =
                    self.write(res, path_namespace, Some(name), object, WriteMode::Create)?;
                self.take_ownership(owner_key, &fields, manager);
                return Ok(written);
            }
            return Err(ApiError::not_found(res, name));
        };
        if patch_type == PatchType::Apply && !manager.force {
            let owners = self.owners.get(&owner_key);
            let conflicts: Vec<String> = fields
                .iter()
                .filter(|(path, value)| {
                    let owner = owners.and_then(|o| o.get(path));
                    !value.is_null()
                        && current.pointer(path) != Some(*value)
                        && owner.is_some_and(|o| Some(o) != manager.name.as_ref())
                })
                .map(|(path, _)| {
                    let owner = &owners.expect("filtered on an owner")[path];
                    format!("conflict with {owner:?}: .{}", path[1..].replace('/', "."))
                })
                .collect();
            if !conflicts.is_empty() {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Apply failed with {} conflict(s): {}",
                        conflicts.len(),
                        conflicts.join(", ")
                    ),
                ));
            }
        }
        let expected = patch
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        if expected.is_some_and(|rv| Some(rv) != resource_version(&current)) {
            return Err(ApiError::conflict(res, name));
        }
        let mut object = (*current).clone();
        merge_patch(&mut object, &patch);
        // The precondition has been checked against the current version; the write must not
        // see the patch's (or the old) resourceVersion as a conflict.
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("resourceVersion");
        }
        let written = self.write(res, path_namespace, Some(name), object, WriteMode::Update)?;
        self.take_ownership(owner_key, &fields, manager);
        Ok(written)
    }

    /// After a successful patch: the writer owns every field it set; a field it removed (null)
    /// has no owner any more.
    fn take_ownership(
        &mut self,
        key: (&'static str, Key),
        fields: &[(String, &Value)],
        manager: &Manager,
    ) {
        let owners = self.owners.entry(key).or_default();
        for (path, value) in fields {
            if value.is_null() {
                let prefix = format!("{path}/");
                owners.retain(|p, _| p != path && !p.starts_with(&prefix));
            } else if let Some(name) = &manager.name {
                owners.insert(path.clone(), name.clone());
            } else {
                owners.remove(path);
            }
        }
    }

    /// One page of a LIST. Without `limit` (or `limit=0`) everything comes at once; with it,
    /// the first page takes a snapshot that the continue tokens page through, so a paginated
    /// list is consistent at its resourceVersion as on a real server.
    pub(super) fn list(
        &mut self,
        res: &'static ResourceType,
        namespace: Option<&str>,
        filter: impl Fn(&Value) -> bool,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListPage, ApiError> {
        let limit = limit.filter(|l| *l > 0);
        let (id, offset) = match continue_token {
            None => {
                let items: Vec<Arc<Value>> = self
                    .objects(res, namespace)
                    .into_iter()
                    .filter(|o| filter(o))
                    .collect();
                let rv = self.rv;
                match limit {
                    Some(limit) if items.len() > limit => {
                        let id = self.next_snapshot;
                        self.next_snapshot += 1;
                        self.snapshots.push_back(Snapshot {
                            id,
                            resource: res.plural,
                            rv,
                            items,
                        });
                        while self.snapshots.len() > MAX_SNAPSHOTS {
                            self.snapshots.pop_front();
                        }
                        (id, 0)
                    }
                    _ => {
                        return Ok(ListPage {
                            rv,
                            items,
                            continue_token: None,
                            remaining: None,
                        });
                    }
                }
            }
            Some(token) => parse_continue(token)?,
        };
        let compacted = self.compacted;
        let position = self
            .snapshots
            .iter()
            .position(|s| s.id == id && s.resource == res.plural && s.rv >= compacted)
            .ok_or_else(|| {
                ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list \
                     result. You can start a new list without the continue parameter.",
                )
            })?;
        let snapshot = &self.snapshots[position];
        let end = limit.map_or(snapshot.items.len(), |l| {
            (offset + l).min(snapshot.items.len())
        });
        let items = snapshot.items.get(offset..end).unwrap_or_default().to_vec();
        let rv = snapshot.rv;
        let remaining = snapshot.items.len() - end;
        if remaining == 0 {
            self.snapshots.remove(position);
            return Ok(ListPage {
                rv,
                items,
                continue_token: None,
                remaining: None,
            });
        }
        Ok(ListPage {
            rv,
            items,
            continue_token: Some(format!("{id}-{end}")),
            remaining: Some(remaining),
        })
    }

    /// Up to `max` events of a kind after resourceVersion `after`, or 410 Gone when some of
    /// them are no longer kept (compacted, or trimmed from the bounded history).
    pub(super) fn events_after(
        &self,
        res: &ResourceType,
        after: u64,
        max: usize,
    ) -> Result<Vec<Event>, ApiError> {
        let kind = self.kind(res);
        let oldest = self.compacted.max(kind.trimmed);
        if after < oldest {
            return Err(ApiError::expired(format!(
                "too old resource version: {after} ({oldest})"
            )));
        }
        let start = kind.history.partition_point(|e| e.rv <= after);
        Ok(kind.history.range(start..).take(max).cloned().collect())
    }

    /// Forgets all event history, as an etcd compaction does: a watch (or continue token) from
    /// any resourceVersion handed out so far gets 410 Gone. The counter moves on by one, as it
    /// would on a real cluster where other writes happen all the time, so even a client that
    /// is fully up to date has to re-list.
    pub(super) fn compact(&mut self) {
        self.rv += 1;
        self.compacted = self.rv;
        for kind in self.kinds.values_mut() {
            kind.history.clear();
        }
    }
}

fn resource_version(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

fn namespace_key(res: &ResourceType, namespace: &str) -> String {
    if res.namespaced {
        namespace.to_owned()
    } else {
        String::new()
    }
}

fn parse_continue(token: &str) -> Result<(u64, usize), ApiError> {
    token
        .split_once('-')
        .and_then(|(id, offset)| Some((id.parse().ok()?, offset.parse().ok()?)))
        .ok_or_else(|| ApiError::bad_request(format!("invalid continue token {token:?}")))
}

/// The JSON pointers of a patch's leaves (non-object values, nulls included), apart from the
/// object's identity (`apiVersion`, `kind`, `metadata`), which nobody owns.
fn leaf_fields<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let escaped = key.replace('~', "~0").replace('/', "~1");
                leaf_fields(child, format!("{path}/{escaped}"), out);
            }
        }
        _ => out.push((path, value)),
    }
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` removes, anything else replaces.
pub(super) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Removes `null` members, as creating an object from an apply patch does.
fn strip_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}

/// A `generateName` suffix from the API server's alphabet (no vowels, no look-alikes).
fn name_suffix(mut n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut suffix = String::with_capacity(5);
    for _ in 0..5 {
        suffix.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
        n /= ALPHABET.len() as u64;
    }
    suffix
}

/// The current time as `2006-01-02T15:04:05Z`, the API server's timestamp format.
pub(super) fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date; Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::by_name;

    fn pod(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"}})
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_453), (2025, 12, 31));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn writes_stamp_metadata_and_record_events() {
        let pods = by_name("pods").unwrap();
        let mut store = Store::new(10);
        let (first, created) = store
            .write(pods, None, None, pod("a"), WriteMode::Upsert)
            .unwrap();
        assert!(created);
        assert_eq!(resource_version(&first), Some("2"));
        let (second, created) = store
            .write(pods, None, None, pod("a"), WriteMode::Upsert)
            .unwrap();
        assert!(!created);
        assert_eq!(resource_version(&second), Some("3"));
        assert_eq!(first["metadata"]["uid"], second["metadata"]["uid"]);
        let events = store.events_after(pods, 1, 100).unwrap();
        let kinds: Vec<_> = events.iter().map(|e| (e.rv, e.kind)).collect();
        assert_eq!(kinds, [(2, EventType::Added), (3, EventType::Modified)]);
        assert_eq!(store.events_after(pods, 2, 100).unwrap().len(), 1);
    }

    #[test]
    fn update_checks_the_resource_version() {
        let leases = by_name("Lease").unwrap();
        let mut store = Store::new(10);
        let lease = json!({"metadata": {"name": "l", "namespace": "ns"}});
        let (stored, _) = store
            .write(leases, Some("ns"), None, lease.clone(), WriteMode::Create)
            .unwrap();
        let conflict = store.write(leases, Some("ns"), None, lease, WriteMode::Create);
        assert_eq!(conflict.unwrap_err().code, 409);
        let stale = json!({"metadata": {"name": "l", "resourceVersion": "1"}});
        let err = store
            .write(leases, Some("ns"), Some("l"), stale, WriteMode::Update)
            .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        let fresh = (*stored).clone();
        store
            .write(leases, Some("ns"), Some("l"), fresh, WriteMode::Update)
            .unwrap();
    }

    #[test]
    fn history_is_bounded() {
        let pods = by_name("pods").unwrap();
        let mut store = Store::new(3);
        for i in 0..5 {
            store
                .write(pods, None, None, pod(&format!("p{i}")), WriteMode::Upsert)
                .unwrap();
        }
        // Events 2..=6 happened; 2 and 3 were dropped.
        assert_eq!(store.events_after(pods, 2, 10).unwrap_err().code, 410);
        assert_eq!(store.events_after(pods, 3, 10).unwrap().len(), 3);
    }

    #[test]
    fn apply_conflicts_with_another_managers_field_until_it_is_released() {
        let leases = by_name("Lease").unwrap();
        let mut store = Store::new(10);
        let manager = |name: &str, force| Manager {
            name: Some(name.to_owned()),
            force,
        };
        let lease = |holder: &str| {
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "spec": {"holderIdentity": holder, "leaseDurationSeconds": 2}})
        };
        let apply = |store: &mut Store, holder: &str, m: &Manager| {
            store.patch(leases, "ns", "l", lease(holder), PatchType::Apply, m)
        };
        // Creating by apply makes a the owner; b's apply of another holder conflicts, naming
        // the field and its owner, and changes nothing.
        apply(&mut store, "a", &manager("a", false)).unwrap();
        let err = apply(&mut store, "b", &manager("b", false)).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        assert!(
            err.message
                .contains(r#"conflict with "a": .spec.holderIdentity"#),
            "{}",
            err.message
        );
        assert_eq!(
            store.get(leases, "ns", "l").unwrap()["spec"]["holderIdentity"],
            "a"
        );
        // Applying the same values is shared ownership, not a conflict; a renewal is fine.
        apply(&mut store, "a", &manager("b", false)).unwrap();
        apply(&mut store, "a", &manager("a", false)).unwrap();
        // Released by a strategic patch of nulls (as a lease is), anyone may apply it.
        let release = json!({"spec": {"holderIdentity": null, "leaseDurationSeconds": null}});
        store
            .patch(
                leases,
                "ns",
                "l",
                release,
                PatchType::Strategic,
                &manager("c", false),
            )
            .unwrap();
        apply(&mut store, "b", &manager("b", false)).unwrap();
        // force takes a field over.
        apply(&mut store, "c", &manager("c", true)).unwrap();
        assert_eq!(
            store.get(leases, "ns", "l").unwrap()["spec"]["holderIdentity"],
            "c"
        );
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
    }
}
