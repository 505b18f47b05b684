//! Scrape body buffers, shared by every scrape loop of the worker.
//!
//! A loop used to keep its own buffer between scrapes: 2.6 MiB per cAdvisor target, 260 MiB
//! at 100 targets, about a third of the worker's memory per series, although only the few
//! scrapes running at one moment need one. Loops now take a buffer for the length of a scrape
//! and give it back; the pool keeps a few (their capacity already grown to body size) and
//! frees the rest.

use std::sync::Mutex;

/// Buffers kept for reuse.
const KEEP: usize = 8;
/// A buffer grown beyond this (a huge body) is freed instead of kept.
const KEEP_MAX_BYTES: usize = 64 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer, with capacity from an earlier scrape when one is free.
pub(super) fn take() -> Vec<u8> {
    POOL.lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
        .unwrap_or_default()
}

pub(super) fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > KEEP_MAX_BYTES {
        return;
    }
    buf.clear();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < KEEP {
        pool.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_with_their_capacity_and_the_pool_is_bounded() {
        let mut b = take();
        b.extend_from_slice(&[1; 4096]);
        let ptr = b.as_ptr();
        give_back(b);
        // Other tests may use the pool concurrently: find ours among what is there.
        let mut taken: Vec<Vec<u8>> = (0..KEEP).map(|_| take()).collect();
        let ours = taken.iter().find(|b| b.as_ptr() == ptr).expect("reused");
        assert!(ours.is_empty() && ours.capacity() >= 4096);
        for _ in 0..KEEP * 2 {
            taken.push(vec![0; 16]);
        }
        for b in taken {
            give_back(b);
        }
        assert!(POOL.lock().unwrap().len() <= KEEP);
    }
}
