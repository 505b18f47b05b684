//! Rendezvous (highest-random-weight) hashing with bounded loads.
//!
//! Why rendezvous rather than a ring: with N workers a ring needs hundreds of virtual nodes per
//! worker to get max/mean near 1.2, while HRW is balanced in expectation with none, moves
//! exactly the joiner's share on a join, and gives every target a full preference order for
//! free, which is what bounded loads need (CRATES.md measured 1.02 vs 1.17–1.23 at 100 workers).
//!
//! Bounded loads (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads"):
//! capacity per worker is `(1 + ε) × total / N`; targets go heaviest first (then by key, for
//! determinism) to the first worker in their ranking with room. Heaviest-first is the classic
//! LPT order: it keeps the big targets from being the ones that overflow at the end.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::{Item, Member, Strategy};

pub struct BoundedRendezvous {
    epsilon: f64,
}

impl BoundedRendezvous {
    pub fn new(epsilon: f64) -> Self {
        BoundedRendezvous {
            epsilon: epsilon.max(0.0),
        }
    }
}

/// The rendezvous score of a worker for a key. Seeds are per worker id so a worker's scores do
/// not depend on its index (membership changes must not reshuffle everyone).
#[inline]
fn score(key: u64, seed: u64) -> u64 {
    xxh3_64_with_seed(&key.to_le_bytes(), seed)
}

impl Strategy for BoundedRendezvous {
    fn name(&self) -> &'static str {
        "bounded-rendezvous"
    }

    fn place(&self, members: &[Member], items: &[Item]) -> Vec<Option<usize>> {
        let n = members.len();
        if n == 0 {
            return vec![None; items.len()];
        }
        let seeds: Vec<u64> = members
            .iter()
            .map(|m| xxhash_rust::xxh3::xxh3_64(m.id.as_bytes()))
            .collect();
        let total: u128 = items.iter().map(|i| i.weight as u128).sum();
        let bound = ((1.0 + self.epsilon) * total as f64 / n as f64).ceil() as u128;
        // A worker's own limit (`--max-series`) tightens its bound; what does not fit spills
        // over to the next worker in the target's ranking.
        // Series the capped workers cannot take raise the others' bound, so the share above
        // a worker's limit lands on the others rather than overflowing.
        let limited: Vec<u128> = members
            .iter()
            .filter(|m| m.capacity > 0 && (m.capacity as u128) < bound)
            .map(|m| m.capacity as u128)
            .collect();
        let free = n - limited.len();
        let bound = if limited.is_empty() || free == 0 {
            bound
        } else {
            let rest = total.saturating_sub(limited.iter().sum::<u128>());
            bound.max(((1.0 + self.epsilon) * rest as f64 / free as f64).ceil() as u128)
        };
        let caps: Vec<u128> = members
            .iter()
            .map(|m| match m.capacity {
                0 => bound,
                c => bound.min(c as u128),
            })
            .collect();
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            items[b]
                .weight
                .cmp(&items[a].weight)
                .then(items[a].key.cmp(&items[b].key))
        });
        let mut load = vec![0u128; n];
        let mut out = vec![None; items.len()];
        let top = |key: u64| {
            seeds
                .iter()
                .enumerate()
                .map(|(i, s)| (i, score(key, *s)))
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map_or(0, |(i, _)| i)
        };
        // Stickiness: a target stays with the worker that holds it while that worker has room,
        // unless it ranks a just-joined worker first (that is how a new worker gets its share,
        // and only its share). So a leave moves only the leaver's targets, a weight change
        // moves a target only when its worker overflows, and a restarted master that learns
        // current owners from worker hellos moves nothing. Without current owners this is
        // plain bounded rendezvous, deterministic in (members, weights).
        // Replicas of one target (same group) go to distinct workers while there are enough.
        let mut used: std::collections::HashMap<u64, Vec<usize>> = Default::default();
        let allowed =
            |used: &std::collections::HashMap<u64, Vec<usize>>, g: Option<u64>, i: usize| {
                g.and_then(|g| used.get(&g))
                    .is_none_or(|u| !u.contains(&i) || u.len() >= n)
            };
        let mut rest = Vec::with_capacity(items.len());
        for idx in order {
            let it = items[idx];
            let w = it.weight as u128;
            match it.current.filter(|c| *c < n) {
                Some(c)
                    if load[c] + w <= caps[c] && allowed(&used, it.group, c) && {
                        let best = top(it.key);
                        best == c || !members[best].fresh
                    } =>
                {
                    load[c] += w;
                    out[idx] = Some(c);
                    if let Some(g) = it.group {
                        used.entry(g).or_default().push(c);
                    }
                }
                _ => rest.push(idx),
            }
        }
        let mut ranked: Vec<(u64, usize)> = Vec::with_capacity(n);
        for idx in rest {
            let Item {
                key, weight, group, ..
            } = items[idx];
            let w = weight as u128;
            // Fast path: the top choice, found in one pass without sorting.
            let best = top(key);
            let chosen = if load[best] + w <= caps[best] && allowed(&used, group, best) {
                best
            } else {
                ranked.clear();
                ranked.extend(
                    seeds
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| allowed(&used, group, *i))
                        .map(|(i, s)| (score(key, *s), i)),
                );
                ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                match ranked.iter().find(|(_, i)| load[*i] + w <= caps[*i]) {
                    Some((_, i)) => *i,
                    // Nothing has room (one target bigger than a worker's share, or every
                    // worker at its --max-series): the worker with the most room left, ties
                    // broken by preference. Scraping over a limit beats not scraping.
                    None => ranked
                        .iter()
                        .max_by(|(_, a), (_, b)| {
                            let room = |i: usize| caps[i] as i128 - load[i] as i128;
                            room(*a).cmp(&room(*b)).then(b.cmp(a))
                        })
                        .map_or(best, |(_, i)| *i),
                }
            };
            load[chosen] += w;
            out[idx] = Some(chosen);
            if let Some(g) = group {
                used.entry(g).or_default().push(chosen);
            }
        }
        out
    }
}
