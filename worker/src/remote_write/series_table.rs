//! The series a WAL holds in memory, by id: what its reader resolves every sample's id
//! against, so it is laid out for walking a record's ids in order (see [`SeriesTable`]).

use std::collections::VecDeque;
use std::sync::Arc;

use super::series::Series;

pub(super) type IdMap<V> = std::collections::HashMap<u64, V, foldhash::fast::RandomState>;

/// The series a WAL knows, by id. Ids are handed out consecutively in a process, so most
/// live in a dense array indexed by `id - base`: a target's series sit side by side and the
/// reader resolves a record's ids walking memory in order, where a hash map was a random
/// probe (a cache miss) per sample. Ids outside the dense range (an earlier process's, read
/// back from the `series` file) go to a map.
#[derive(Default)]
pub(super) struct SeriesTable {
    dense: VecDeque<Option<Arc<Series>>>,
    base: u64,
    sparse: IdMap<Arc<Series>>,
    len: usize,
    /// How many of `dense` are `Some`: kept as it changes, since counting it on every
    /// insert made starting 825k series quadratic.
    dense_held: usize,
}

/// Largest gap of unused ids the dense array spans (8 bytes each).
const DENSE_GAP: u64 = 1 << 20;

impl SeriesTable {
    fn offset(&self, id: u64) -> Option<usize> {
        id.checked_sub(self.base)
            .filter(|&o| o < self.dense.len() as u64)
            .map(|o| o as usize)
    }

    /// An id is in exactly one place; the map is asked too when the dense slot is empty,
    /// since the dense range can come to cover an id stored in the map.
    pub(super) fn get(&self, id: u64) -> Option<&Arc<Series>> {
        match self.offset(id).and_then(|o| self.dense[o].as_ref()) {
            Some(s) => Some(s),
            None => self.sparse.get(&id),
        }
    }

    pub(super) fn contains_key(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn insert(&mut self, s: Arc<Series>) {
        let id = s.id();
        if self.dense.is_empty() {
            self.base = id;
        }
        let end = self.base + self.dense.len() as u64;
        let slot = if id >= self.base && id < end {
            &mut self.dense[(id - self.base) as usize]
        } else if id >= end && id - end < DENSE_GAP {
            self.dense.resize(((id - self.base) + 1) as usize, None);
            &mut self.dense[(id - self.base) as usize]
        } else {
            if self.sparse.insert(id, s).is_none() {
                self.len += 1;
            }
            return;
        };
        if slot.replace(s).is_none() {
            self.len += 1;
            self.dense_held += 1;
        }
        self.rebase_if_sparse();
    }

    /// A long-lived series near the front pins `base` while the ids after it churn: once the
    /// dense array is mostly holes, the oldest ids move to the map so that the rest span at
    /// most twice their number.
    fn rebase_if_sparse(&mut self) {
        if self.dense.len() <= 4 * self.dense_held + 4096 {
            return;
        }
        let all: Vec<Arc<Series>> = self.dense.drain(..).flatten().collect();
        let n = all.len();
        let last = all.last().map_or(0, |s| s.id());
        let mut k = 0;
        while k < n && (last - all[k].id()) as usize + 1 > 2 * (n - k) + 1024 {
            k += 1;
        }
        self.base = all.get(k).map_or(0, |s| s.id());
        for (i, s) in all.into_iter().enumerate() {
            if i < k {
                self.sparse.insert(s.id(), s);
            } else {
                let o = (s.id() - self.base) as usize;
                if o >= self.dense.len() {
                    self.dense.resize(o + 1, None);
                }
                self.dense[o] = Some(s);
            }
        }
        self.dense_held = n - k;
    }

    /// A series of an earlier process (read back from the `series` file).
    pub(super) fn insert_sparse(&mut self, s: Arc<Series>) {
        if self.sparse.insert(s.id(), s).is_none() {
            self.len += 1;
        }
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<Arc<Series>> {
        let removed = match self.offset(id).and_then(|o| self.dense[o].take()) {
            Some(s) => {
                self.dense_held -= 1;
                Some(s)
            }
            None => self.sparse.remove(&id),
        };
        if removed.is_some() {
            self.len -= 1;
        }
        // Series retire roughly in the order they came: drop the unused front.
        while self.dense.front().is_some_and(Option::is_none) {
            self.dense.pop_front();
            self.base += 1;
        }
        removed
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<Series>> {
        self.dense.iter().flatten().chain(self.sparse.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_table_is_dense_for_this_process_and_sparse_for_others() {
        let mut t = SeriesTable::default();
        let mk = |id| Arc::new(Series::with_id(id, &promshard_model::Labels::empty()));
        t.insert_sparse(mk(5));
        for id in [1_000, 1_001, 1_003] {
            t.insert(mk(id));
        }
        t.insert(mk(1_000 + DENSE_GAP * 2));
        assert_eq!(t.len(), 5);
        assert_eq!(t.dense.len(), 4, "a small gap is spanned");
        assert!(t.get(5).is_some() && t.get(1_003).is_some() && t.get(1_002).is_none());
        assert!(
            t.get(1_000 + DENSE_GAP * 2).is_some(),
            "a far id goes to the map"
        );
        // The dense range coming to cover an id kept in the map still finds it.
        t.insert_sparse(mk(1_002));
        assert!(t.get(1_002).is_some());
        assert!(t.remove(1_002).is_some() && t.get(1_002).is_none());
        assert!(t.remove(1_000).is_some());
        assert_eq!(
            (t.base, t.dense.len()),
            (1_001, 3),
            "the unused front is dropped"
        );
        assert!(t.remove(1_001).is_some() && t.remove(1_003).is_some());
        assert!(t.dense.is_empty());
        t.insert(mk(9_000_000));
        assert_eq!((t.base, t.len()), (9_000_000, 3));
        assert_eq!(t.values().count(), 3);
        assert_eq!(t.dense_held, t.dense.iter().flatten().count());
    }

    #[test]
    fn a_pinned_old_series_does_not_let_the_dense_array_grow_with_churn() {
        let mut t = SeriesTable::default();
        let mk = |id| Arc::new(Series::with_id(id, &promshard_model::Labels::empty()));
        t.insert(mk(1));
        // Churn: 100 live series at a time, a million ids handed out.
        for id in 2..1_000_000u64 {
            t.insert(mk(id));
            if id > 101 {
                t.remove(id - 100);
            }
        }
        assert_eq!(t.len(), 101);
        assert!(t.dense.len() < 4 * 101 + 4096 + 2, "{}", t.dense.len());
        assert_eq!(t.dense_held, t.dense.iter().flatten().count());
        assert!(t.get(1).is_some() && t.get(999_999).is_some() && t.get(500).is_none());
    }
}
