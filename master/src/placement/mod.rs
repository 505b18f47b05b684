//! Placement: which worker owns a target, decided on the target's immutable placement key.
//!
//! Two strategies behind one narrow trait, tested together (`tests.rs`) and benchmarked side by
//! side (`benches/placement.rs`):
//! - [`ConsistentHash`], the baseline: the `hashring` crate with virtual nodes; ignores load.
//! - [`BoundedRendezvous`], the default: rendezvous (HRW) hashing with bounded loads. Each
//!   target ranks the workers by `hash(key, worker)`; targets are placed heaviest first on the
//!   first worker of their ranking whose load stays under `(1 + ε) × mean`. Loads are series
//!   counts the workers report.
//!
//! Both are pure functions of (members, targets with weights), so the same inputs always give
//! the same placement — on any master, after any restart. Hysteresis lives in the weights:
//! [`effective_weight`] rounds reported series to buckets a factor 1.25 apart, so ordinary
//! churn in a target's series count does not move it; only a change past a bucket edge can.

mod bounded;
mod hashring_strategy;

pub use bounded::BoundedRendezvous;
pub use hashring_strategy::ConsistentHash;

/// One target to place: its placement key, its weight (effective series) and the member that
/// holds it now, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    pub key: u64,
    pub weight: u64,
    pub current: Option<usize>,
    /// Replicas of one target share this (their target's key): no two on the same worker
    /// while there are enough workers.
    pub group: Option<u64>,
}

impl Item {
    pub fn new(key: u64, weight: u64) -> Self {
        Item {
            key,
            weight,
            current: None,
            group: None,
        }
    }
}

/// A worker that can own targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    /// Series limit (`--max-series`), 0 = none.
    pub capacity: u64,
    /// Holds nothing yet (just joined): targets that rank it first move to it.
    pub fresh: bool,
}

impl Member {
    pub fn new(id: impl Into<String>) -> Self {
        Member {
            id: id.into(),
            capacity: 0,
            fresh: false,
        }
    }
}

/// A placement strategy: maps every item to a member index (or `None` when there are no
/// members). `members` is sorted by id and unique; the result has one entry per item, in order.
pub trait Strategy: Send + Sync {
    fn name(&self) -> &'static str;
    fn place(&self, members: &[Member], items: &[Item]) -> Vec<Option<usize>>;
}

/// Strategy names accepted by `--placement.strategy`.
pub const STRATEGIES: &[&str] = &["bounded-rendezvous", "consistent-hash"];

/// Builds a strategy by name; `epsilon` bounds load to `(1 + epsilon) × mean`.
pub fn by_name(name: &str, epsilon: f64) -> Option<Box<dyn Strategy>> {
    match name {
        "bounded-rendezvous" => Some(Box::new(BoundedRendezvous::new(epsilon))),
        "consistent-hash" => Some(Box::new(ConsistentHash)),
        _ => None,
    }
}

/// Weight of a target whose series count is not known yet (first scrape pending).
pub const DEFAULT_WEIGHT: u64 = 100;

/// Reported series → placement weight, rounded to the nearest power of 1.25. A target moves
/// because of its own growth only when its size changes by more than about 12 %.
pub fn effective_weight(series: Option<u64>) -> u64 {
    match series {
        None => DEFAULT_WEIGHT,
        Some(0) | Some(1) => 1,
        Some(s) => {
            let b = (s as f64).ln() / 1.25f64.ln();
            1.25f64.powf(b.round()).round().max(1.0) as u64
        }
    }
}

#[cfg(test)]
mod tests;
