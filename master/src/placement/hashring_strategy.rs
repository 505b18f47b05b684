//! The baseline: consistent hashing on a ring of virtual nodes (the `hashring` crate).

use std::hash::{Hash, Hasher};

use hashring::HashRing;

use super::{Item, Member, Strategy};

/// Virtual nodes per worker: enough for max/mean ≈ 1.2 at 100 workers (see CRATES.md).
const VNODES: u32 = 128;

/// A virtual node. It hashes by worker *id* and replica only, so a worker's points on the ring
/// do not depend on who else is a member: a join or leave moves only that worker's arcs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct VNode {
    worker: usize,
    id: String,
    replica: u32,
}

impl Hash for VNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.replica.hash(state);
    }
}

/// Ignores weights: every target goes to the owner of its arc.
pub struct ConsistentHash;

impl Strategy for ConsistentHash {
    fn name(&self) -> &'static str {
        "consistent-hash"
    }

    /// Ignores capacities and current owners: a ring moves only the arcs of a worker that joins
    /// or leaves, by construction.
    fn place(&self, members: &[Member], items: &[Item]) -> Vec<Option<usize>> {
        let mut ring = HashRing::new();
        for (worker, m) in members.iter().enumerate() {
            for replica in 0..VNODES {
                ring.add(VNode {
                    worker,
                    id: m.id.clone(),
                    replica,
                });
            }
        }
        // Replicas of one target: the next distinct workers clockwise, as Cassandra or Dynamo
        // place replicas on a ring (hashring's `get_with_replicas`).
        let mut used: std::collections::HashMap<u64, Vec<usize>> = Default::default();
        items
            .iter()
            .map(|i| {
                let Some(g) = i.group else {
                    return ring.get(&i.key).map(|v| v.worker);
                };
                let taken = used.entry(g).or_default();
                let mut choice = ring.get(&i.key).map(|v| v.worker);
                if choice.is_some_and(|c| taken.contains(&c)) && taken.len() < members.len() {
                    choice = ring
                        .get_with_replicas(&i.key, members.len() * VNODES as usize)
                        .and_then(|vs| {
                            vs.into_iter()
                                .map(|v| v.worker)
                                .find(|w| !taken.contains(w))
                        });
                }
                if let Some(c) = choice {
                    taken.push(c);
                }
                choice
            })
            .collect()
    }
}
