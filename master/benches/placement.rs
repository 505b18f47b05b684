//! Placement benchmark: 100k targets on 100 workers (by default), each strategy side by side.
//!
//!     cargo bench -p promshard-master --bench placement [-- TARGETS WORKERS]
//!
//! Prints, per strategy: full placement time, single-worker join time (re-placing everything
//! with the new member, current owners known), moved fraction on that join and on a leave
//! (ideal 1/(N+1) and 1/N), and max/mean series load on uniform and on skewed target sizes
//! (50 to 50,000 series, log-uniform). Timings are the median of several runs.

use std::time::{Duration, Instant};

use promshard_master::placement::{self, Item, Member, Strategy};

fn key(i: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())
}

fn items(n: u64, skewed: bool) -> Vec<Item> {
    (0..n)
        .map(|i| {
            let w = if skewed {
                let u = (key(i ^ 0xabcdef) % 10_000) as f64 / 10_000.0;
                (50.0 * 1000f64.powf(u)).round() as u64
            } else {
                100
            };
            Item::new(key(i), placement::effective_weight(Some(w)))
        })
        .collect()
}

fn members(n: usize) -> Vec<Member> {
    let mut m: Vec<Member> = (0..n)
        .map(|i| Member::new(format!("worker-{i:03}")))
        .collect();
    m.sort_by(|a, b| a.id.cmp(&b.id));
    m
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn max_over_mean(m: &[Member], items: &[Item], placed: &[Option<usize>]) -> f64 {
    let mut load = vec![0u64; m.len()];
    for (i, o) in placed.iter().enumerate() {
        load[o.unwrap()] += items[i].weight;
    }
    let mean = load.iter().sum::<u64>() as f64 / m.len() as f64;
    *load.iter().max().unwrap() as f64 / mean
}

/// Items with their current owner set from `placed` on `before`, mapped into `after`.
fn with_owners(
    items: &[Item],
    placed: &[Option<usize>],
    before: &[Member],
    after: &[Member],
) -> Vec<Item> {
    items
        .iter()
        .zip(placed)
        .map(|(it, o)| Item {
            current: o.and_then(|o| after.iter().position(|m| m.id == before[o].id)),
            ..*it
        })
        .collect()
}

fn moved(before: &[Member], a: &[Option<usize>], after: &[Member], b: &[Option<usize>]) -> f64 {
    let n = a
        .iter()
        .zip(b)
        .filter(|(x, y)| before[x.unwrap()].id != after[y.unwrap()].id)
        .count();
    n as f64 / a.len() as f64
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n_targets: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let n_workers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let runs = 5;
    println!("placement: {n_targets} targets on {n_workers} workers, median of {runs} runs\n");
    println!(
        "| strategy | full placement | join (+1 worker) | moved on join (ideal {:.4}) | moved on leave (ideal {:.4}) | max/mean uniform | max/mean skewed |",
        1.0 / (n_workers + 1) as f64,
        1.0 / n_workers as f64
    );
    println!("|---|---|---|---|---|---|---|");
    for name in placement::STRATEGIES {
        let s: Box<dyn Strategy> = placement::by_name(name, 0.1).unwrap();
        let m = members(n_workers);
        let uniform = items(n_targets, false);
        let skewed = items(n_targets, true);
        let mut placed = Vec::new();
        let full = time(runs, || placed = s.place(&m, &skewed));

        let mut joined = members(n_workers + 1);
        for j in &mut joined {
            j.fresh = !m.iter().any(|x| x.id == j.id);
        }
        let sticky = with_owners(&skewed, &placed, &m, &joined);
        let mut after_join = Vec::new();
        let join = time(runs, || after_join = s.place(&joined, &sticky));
        let moved_join = moved(&m, &placed, &joined, &after_join);

        let left: Vec<Member> = m
            .iter()
            .filter(|x| x.id != m[n_workers / 2].id)
            .cloned()
            .collect();
        let after_leave = s.place(&left, &with_owners(&skewed, &placed, &m, &left));
        let moved_leave = moved(&m, &placed, &left, &after_leave);

        let u = s.place(&m, &uniform);
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {moved_join:.4} | {moved_leave:.4} | {:.3} | {:.3} |",
            full.as_secs_f64() * 1e3,
            join.as_secs_f64() * 1e3,
            max_over_mean(&m, &uniform, &u),
            max_over_mean(&m, &skewed, &placed),
        );
    }
}
