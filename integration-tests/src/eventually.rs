//! Waiting for a condition with a deadline: the only way tests here wait for anything.
//!
//! Multi-process tests cannot know when a remote effect has happened, so they poll. A fixed
//! sleep is either too short (flaky on a loaded machine) or too long (slow); polling a check
//! that explains itself gives both speed and a useful failure message: when the deadline passes,
//! the panic says what was awaited and why the last attempt was not good enough.

use std::future::Future;
use std::time::Duration;

/// How long to wait between attempts: short enough not to slow tests down, long enough not to
/// load a 2-core machine with polling.
pub const POLL_INTERVAL: Duration = Duration::from_millis(75);

/// Calls `f` until it returns `Ok`, every [`POLL_INTERVAL`], and returns the value.
///
/// Panics once `deadline` has passed, with `what` and the last error, e.g.
/// `timed out after 10s (41 attempts) waiting for the worker to scrape target 3: last attempt: 0 scrapes`.
/// An attempt that itself hangs is cut off at the deadline, so this always returns in time.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = tokio::time::Instant::now();
    let end = start + deadline;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match tokio::time::timeout_at(end, f()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(error)) => error,
            Err(_) => "the attempt was still running at the deadline".to_owned(),
        };
        let now = tokio::time::Instant::now();
        if now >= end {
            panic!(
                "timed out after {deadline:?} ({attempts} attempts) waiting for {what}: \
                 last attempt: {last}"
            );
        }
        tokio::time::sleep_until((now + POLL_INTERVAL).min(end)).await;
    }
}

/// [`eventually`] for synchronous checks, outside an async runtime. Blocks the thread between
/// attempts; an attempt that hangs is not cut off.
pub fn eventually_blocking<T, F>(deadline: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Result<T, String>,
{
    let start = std::time::Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match f() {
            Ok(value) => return value,
            Err(error) => error,
        };
        let elapsed = start.elapsed();
        if elapsed >= deadline {
            panic!(
                "timed out after {deadline:?} ({attempts} attempts) waiting for {what}: \
                 last attempt: {last}"
            );
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - elapsed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_first_ok_value() {
        let calls = AtomicU32::new(0);
        let value = eventually(Duration::from_secs(5), "the third call", || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n >= 3 {
                    Ok(n * 10)
                } else {
                    Err(format!("call {n}"))
                }
            }
        })
        .await;
        assert_eq!(value, 30);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn panics_with_what_and_the_last_error() {
        let handle = tokio::spawn(eventually(Duration::from_secs(2), "the moon", || async {
            Err::<(), _>("still cheese".to_owned())
        }));
        let panic = handle.await.unwrap_err().into_panic();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.starts_with("timed out after 2s ("), "{message}");
        assert!(
            message.ends_with("waiting for the moon: last attempt: still cheese"),
            "{message}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cuts_off_an_attempt_that_hangs() {
        let handle = tokio::spawn(eventually(Duration::from_secs(1), "a hang", || async {
            std::future::pending::<Result<(), String>>().await
        }));
        let panic = handle.await.unwrap_err().into_panic();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.ends_with("last attempt: the attempt was still running at the deadline"),
            "{message}"
        );
    }

    #[test]
    fn blocking_variant_polls_until_ok() {
        let mut n = 0;
        let value = eventually_blocking(Duration::from_secs(5), "n to reach 2", || {
            n += 1;
            if n == 2 {
                Ok("done")
            } else {
                Err(format!("n={n}"))
            }
        });
        assert_eq!((value, n), ("done", 2));
    }

    #[test]
    #[should_panic(expected = "waiting for never: last attempt: nope")]
    fn blocking_variant_panics_at_deadline() {
        eventually_blocking(Duration::from_millis(200), "never", || {
            Err::<(), _>("nope".to_owned())
        });
    }
}
