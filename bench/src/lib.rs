//! `promshard-bench`: promshard (master + one worker) against vmagent and Prometheus in agent
//! mode, on the same target farm, interval and remote-write receiver, one after the other,
//! measured from `/proc`. See docs/BENCHMARKS.md for figures and how to run it.

pub mod fixture;
pub mod peers;
pub mod procstat;
pub mod report;
pub mod run;
pub mod sink;
