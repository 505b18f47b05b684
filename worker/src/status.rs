//! Per-target scrape status (health, last error, series), written by scrape loops and shipped
//! to the master in load reports. Only entries that changed since the last report are sent.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use promshard_proto::control::TargetLoad;

#[derive(Default)]
pub struct StatusBoard {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, TargetLoad>,
    dirty: HashSet<String>,
}

impl StatusBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn update(&self, load: TargetLoad) {
        let mut g = self.lock();
        g.dirty.insert(load.target_id.clone());
        g.entries.insert(load.target_id.clone(), load);
    }

    pub fn remove(&self, id: &str) {
        let mut g = self.lock();
        g.entries.remove(id);
        g.dirty.remove(id);
    }

    /// Entries changed since the last call.
    pub fn take_dirty(&self) -> Vec<TargetLoad> {
        let mut g = self.lock();
        let dirty = std::mem::take(&mut g.dirty);
        dirty
            .iter()
            .filter_map(|id| g.entries.get(id).cloned())
            .collect()
    }

    /// Marks everything as changed, so a new master session gets the full picture.
    pub fn mark_all_dirty(&self) {
        let mut g = self.lock();
        let ids: Vec<String> = g.entries.keys().cloned().collect();
        g.dirty.extend(ids);
    }

    pub fn get(&self, id: &str) -> Option<TargetLoad> {
        self.lock().entries.get(id).cloned()
    }
}
