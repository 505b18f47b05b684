//! CPU time and memory of a process, read from `/proc/<pid>/stat` and `/proc/<pid>/status`, the
//! same counters `top` and `ps` use, so the figures mean the same for promshard and Prometheus.

use std::time::Duration;

use anyhow::Context;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    /// utime + stime.
    pub cpu: Duration,
    /// Resident set size now (`VmRSS`), bytes.
    pub rss: u64,
    /// Peak resident set size since start (`VmHWM`), bytes.
    pub hwm: u64,
}

/// Reads a process's CPU time and memory.
pub fn read(pid: u32, ticks_per_second: u64) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let ticks = cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))?;
    Ok(ProcSample {
        cpu: Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64),
        rss: status_kb(&status, "VmRSS:").unwrap_or(0) * 1024,
        hwm: status_kb(&status, "VmHWM:").unwrap_or(0) * 1024,
    })
}

/// utime + stime in clock ticks. The command name (field 2) may hold spaces and parentheses,
/// so fields are counted from the last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Name:   123 kB` line of `/proc/<pid>/status`, in kB.
pub fn status_kb(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` so the workspace can keep `unsafe_code = "forbid"`.
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_nasty_command_name() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 \
                    123 456 789 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(325));
    }

    #[test]
    fn parses_status_lines() {
        let status = "Name:\tprometheus\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kb(status, "VmRSS:"), Some(102_400));
        assert_eq!(status_kb(status, "VmHWM:"), Some(204_800));
        assert_eq!(status_kb(status, "VmSwap:"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = read(std::process::id(), ticks_per_second()).unwrap();
        assert!(me.rss > 0 && me.hwm >= me.rss, "{me:?}");
    }
}
