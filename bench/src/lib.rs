//! `promshard-bench`: promshard (master + one worker) against Prometheus in agent mode, on the
//! same target farm, interval and null remote-write sink, one after the other, measured from
//! `/proc`. See docs/BENCHMARKS.md for figures and how to run it.

pub mod fixture;
pub mod procstat;
pub mod report;
pub mod run;
pub mod sink;
