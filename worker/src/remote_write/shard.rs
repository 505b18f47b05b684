//! A remote-write shard: batches the samples its queue manager hands it
//! (`max_samples_per_send` or `batch_send_deadline`, whichever comes first) and sends one
//! request at a time, with the spec's retries. One request in flight per shard, and a series
//! always in the same shard, is what keeps each series in timestamp order across requests.
//!
//! A request refused for an out-of-order, out-of-bounds or duplicate sample is sent again in
//! parts ([`Shard::send_split`]): Prometheus, Mimir and Thanos receive roll back the whole request
//! for one such sample, and without the split one old sample would cost every series in it a
//! point.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Sample;
use super::client::{EncodeBuffers, Protocol, SendError, encode_v1, encode_v2};
use super::queue::{Chunk, Shared};
use super::series::warm;

pub(super) struct Shard {
    pub(super) sh: Arc<Shared>,
}

impl Shard {
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Chunk>) {
        let q = &self.sh.cfg.queue_config;
        let max = (q.max_samples_per_send as usize).max(1);
        let mut batch = Batch::default();
        let mut deadline = Instant::now() + q.batch_send_deadline.0;
        let mut bufs = EncodeBuffers::default();
        loop {
            let chunk = if batch.is_empty() {
                rx.recv().await
            } else {
                tokio::select! {
                    chunk = rx.recv() => chunk,
                    _ = tokio::time::sleep_until(deadline) => {
                        self.send(&mut batch, usize::MAX, &mut bufs).await;
                        continue;
                    }
                }
            };
            let Some(chunk) = chunk else { break };
            if batch.is_empty() {
                deadline = Instant::now() + q.batch_send_deadline.0;
            }
            batch.push(chunk);
            while batch.len() >= max {
                self.send(&mut batch, max, &mut bufs).await;
            }
        }
        while !batch.is_empty() {
            self.send(&mut batch, max, &mut bufs).await;
        }
    }

    /// Sends the first `max` samples of `batch` until they are delivered or refused for good,
    /// and takes them out of it.
    async fn send(&self, batch: &mut Batch, max: usize, bufs: &mut EncodeBuffers) {
        let sh = &self.sh;
        let take = batch.len().min(max);
        let done = batch.take_records(take as u64);
        let samples = batch.unsent(take);
        let n = take as u64;
        match self.attempt(samples, bufs).await {
            Attempt::Delivered => {}
            Attempt::Refused(message) => {
                sh.m.failed.inc_by(n);
                tracing::error!(url = %sh.cfg.url, error = %message, samples = n, "remote write rejected; dropping batch");
            }
            Attempt::OutOfOrder(message) => {
                // One old sample (another worker's, a replay after a crash) must not cost the
                // rest of the request: find it by halves and deliver everything else.
                sh.m.split_requests.inc();
                let refused = self.send_split(samples, bufs).await;
                tracing::warn!(url = %sh.cfg.url, error = %message, samples = n, refused, "receiver refused a request for out-of-order samples; re-sent it in parts and dropped only those");
            }
        }
        batch.consume(take);
        sh.m.pending.dec_by(n as i64);
        sh.ack(&done);
    }

    /// Sends `samples` as one request, retrying what the spec says to retry.
    async fn attempt(&self, samples: &[Sample], bufs: &mut EncodeBuffers) -> Attempt {
        let sh = &self.sh;
        let q = &sh.cfg.queue_config;
        let n = samples.len() as u64;
        let newest = samples.iter().map(|s| s.timestamp_ms).max().unwrap_or(0);
        let mut backoff = q.min_backoff.0;
        let mut attempt = 0;
        loop {
            let protocol = if sh.v2.load(Ordering::Relaxed) {
                Protocol::V2
            } else {
                Protocol::V1
            };
            let body = match protocol {
                Protocol::V1 => encode_v1(samples, bufs),
                Protocol::V2 => {
                    let metadata = sh.metadata.read().unwrap_or_else(|e| e.into_inner());
                    encode_v2(samples, &metadata, bufs)
                }
            };
            let len = body.len() as u64;
            match sh.client.send(body, protocol, attempt).await {
                Ok(None) if protocol == Protocol::V2 => {
                    // A 1.0-only receiver (Prometheus before 3.0) decodes a 2.0 body as an
                    // empty 1.0 request and answers 2xx having stored nothing; only the
                    // missing written-count header tells. Fall back and send it again.
                    tracing::warn!(url = %sh.cfg.url, "receiver accepted remote write 2.0 without X-Prometheus-Remote-Write-Samples-Written (a 1.0-only receiver); falling back to 1.0 and re-sending");
                    sh.v2.store(false, Ordering::Relaxed);
                    sh.m.fallbacks.inc();
                }
                Ok(_) => {
                    sh.m.sent.inc_by(n);
                    sh.m.bytes_sent.inc_by(len);
                    let secs = newest / 1000;
                    if secs > sh.m.highest_sent.get() {
                        sh.m.highest_sent.set(secs);
                    }
                    return Attempt::Delivered;
                }
                Err(SendError::UnsupportedMediaType(message)) => {
                    // The spec's signal that the receiver only speaks 1.0: fall back for good
                    // (until the config changes) and send this batch again at once.
                    tracing::warn!(url = %sh.cfg.url, error = %message, "receiver refused remote write 2.0; falling back to 1.0");
                    sh.v2.store(false, Ordering::Relaxed);
                    sh.m.fallbacks.inc();
                }
                Err(SendError::Recoverable {
                    message,
                    retry_after,
                }) => {
                    sh.m.retried.inc_by(n);
                    sh.failures.fetch_add(1, Ordering::Relaxed);
                    let wait = retry_after.unwrap_or(backoff);
                    tracing::warn!(url = %sh.cfg.url, error = %message, ?wait, attempt, "remote write failed; retrying");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(q.max_backoff.0);
                    attempt += 1;
                }
                Err(SendError::OutOfOrder(message)) => return Attempt::OutOfOrder(message),
                Err(SendError::Fatal(message)) => return Attempt::Refused(message),
            }
        }
    }

    /// Re-sends a request the receiver refused for out-of-order samples in parts, so that only
    /// the samples it refuses are lost: halves by series (a series' samples stay together and
    /// in order), and a single series sample by sample from its oldest (what a TSDB refuses of
    /// one series is a prefix: samples not newer than what it has). At most [`SPLIT_REQUESTS`]
    /// requests; what is left after that is refused as a whole. Returns the samples refused.
    async fn send_split(&self, samples: &[Sample], bufs: &mut EncodeBuffers) -> u64 {
        let sh = &self.sh;
        let mut refused = 0u64;
        let mut budget = SPLIT_REQUESTS;
        // A stack: the part to send next is on top, so a series' older part goes first.
        let mut parts: Vec<Vec<Sample>> = split_part(samples.to_vec()).into_iter().rev().collect();
        while let Some(part) = parts.pop() {
            let n = part.len() as u64;
            if budget == 0 {
                sh.m.failed.inc_by(n);
                refused += n;
                continue;
            }
            budget -= 1;
            match self.attempt(&part, bufs).await {
                Attempt::Delivered => {}
                Attempt::Refused(message) => {
                    tracing::error!(url = %sh.cfg.url, error = %message, samples = n, "remote write rejected part of a split request; dropping it");
                    sh.m.failed.inc_by(n);
                    refused += n;
                }
                Attempt::OutOfOrder(_) if part.len() == 1 => {
                    sh.m.out_of_order.inc();
                    sh.m.failed.inc();
                    refused += 1;
                }
                Attempt::OutOfOrder(_) => parts.extend(split_part(part).into_iter().rev()),
            }
        }
        refused
    }
}

/// Requests a refused request may be split into (about 2·log2(n) per refused series).
const SPLIT_REQUESTS: u32 = 256;

/// What became of one request.
enum Attempt {
    Delivered,
    /// Refused for good (a 4xx other than out-of-order).
    Refused(String),
    /// Refused for an out-of-order, out-of-bounds or duplicate sample somewhere in it.
    OutOfOrder(String),
}

/// Two parts of a refused request: halves by series when it has several, else its oldest
/// sample and the rest. Each series' samples keep their order.
fn split_part(samples: Vec<Sample>) -> Vec<Vec<Sample>> {
    let mut ids: Vec<u64> = samples.iter().map(|s| s.series.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() <= 1 {
        let mut rest = samples;
        let first: Vec<Sample> = rest.drain(..1.min(rest.len())).collect();
        return [first, rest]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
    }
    let pivot = ids[ids.len() / 2];
    let (low, high): (Vec<Sample>, Vec<Sample>) =
        samples.into_iter().partition(|s| s.series.id() < pivot);
    vec![low, high]
}

/// A shard's samples waiting to be sent, and which WAL records they came from.
#[derive(Default)]
struct Batch {
    /// `samples[sent..]` wait. The sent ones are dropped when all are sent, or when they are
    /// the larger part: taking each request's samples off the front would move the rest
    /// every time (a shard gets a target's whole scrape, thousands of samples, at once).
    samples: Vec<Sample>,
    sent: usize,
    /// (record, samples of it still waiting), in order.
    records: VecDeque<(u64, u64)>,
}

impl Batch {
    fn push(&mut self, chunk: Chunk) {
        let n = chunk.samples.len() as u64;
        match self.records.back_mut() {
            Some((r, c)) if *r == chunk.record => *c += n,
            _ => self.records.push_back((chunk.record, n)),
        }
        if self.is_empty() {
            self.samples = chunk.samples;
            self.sent = 0;
        } else {
            if self.sent > self.samples.len() / 2 {
                warm(self.samples[..self.sent].iter().map(|s| &*s.series));
                self.samples.drain(..self.sent);
                self.sent = 0;
            }
            self.samples.extend(chunk.samples);
        }
    }

    fn len(&self) -> usize {
        self.samples.len() - self.sent
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` waiting samples.
    fn unsent(&self, n: usize) -> &[Sample] {
        &self.samples[self.sent..self.sent + n]
    }

    /// The first `n` waiting samples were sent (or given up on).
    fn consume(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.samples.len() {
            warm(self.samples.iter().map(|s| &*s.series));
            self.samples.clear();
            self.sent = 0;
        }
    }

    /// The records the first `n` samples belong to, counted, taken out of `records`.
    fn take_records(&mut self, mut n: u64) -> Vec<(u64, u64)> {
        let mut done = Vec::new();
        while n > 0 {
            let Some((r, c)) = self.records.front_mut() else {
                break;
            };
            let k = (*c).min(n);
            done.push((*r, k));
            *c -= k;
            n -= k;
            if *c == 0 {
                self.records.pop_front();
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_counts_what_it_sends_against_the_records_it_came_from() {
        let sample = |ts| {
            Sample::new(
                &promshard_model::Labels::from_pairs([("__name__", "m")]),
                ts,
                1.0,
            )
        };
        let mut b = Batch::default();
        b.push(Chunk {
            samples: vec![sample(1), sample(2)],
            record: 7,
        });
        b.push(Chunk {
            samples: vec![sample(3)],
            record: 7,
        });
        b.push(Chunk {
            samples: vec![sample(4), sample(5)],
            record: 8,
        });
        let ts = |b: &Batch, n| {
            b.unsent(n)
                .iter()
                .map(|s| s.timestamp_ms)
                .collect::<Vec<_>>()
        };
        assert_eq!(b.take_records(2), [(7, 2)]);
        assert_eq!(ts(&b, 2), [1, 2]);
        b.consume(2);
        assert_eq!(b.take_records(2), [(7, 1), (8, 1)]);
        assert_eq!(ts(&b, 2), [3, 4]);
        b.consume(2);
        // More arrives while one sample waits: the sent ones make room, order is kept.
        b.push(Chunk {
            samples: vec![sample(6)],
            record: 9,
        });
        assert_eq!((b.len(), ts(&b, 2)), (2, vec![5, 6]));
        assert_eq!(b.take_records(5), [(8, 1), (9, 1)]);
        b.consume(2);
        assert!(b.records.is_empty() && b.is_empty() && b.samples.is_empty());
    }
}
