//! What the benchmarks and the memory checks read: a process's counters from `/proc`, the
//! host's load and CPUs, and percentiles of samples.

use std::path::Path;
use std::time::Duration;

/// A number from a `/proc` status file (`/proc/PID/status`, `/proc/PID/task/TID/status`):
/// `VmRSS` and `VmHWM` in KiB, `voluntary_ctxt_switches`, …; `None` when the file or the
/// field is missing.
pub fn status_field(status: impl AsRef<Path>, field: &str) -> Option<u64> {
    std::fs::read_to_string(status)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `field` of `/proc/PID/status` (0 when the process is gone).
pub fn status_of(pid: u32, field: &str) -> u64 {
    status_field(format!("/proc/{pid}/status"), field).unwrap_or(0)
}

/// User + system CPU time of process `pid`, all its threads (live and exited) included
/// (zero when it is gone).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing paren, where
    // utime and stime (fields 14 and 15 of stat(5)) are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    // Clock ticks of `USER_HZ`, 100 on every Linux ABI.
    Duration::from_millis(ticks * 10)
}

/// The `p`th percentile (0 to 100, nearest rank) of `samples`, sorted here; the default (zero)
/// when there are none.
pub fn percentile<T: Copy + PartialOrd + Default>(samples: &mut [T], p: f64) -> T {
    samples.sort_by(|a, b| a.partial_cmp(b).expect("comparable samples"));
    let i = ((p / 100.0) * samples.len().saturating_sub(1) as f64).round() as usize;
    samples.get(i).copied().unwrap_or_default()
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The 1-minute load average, as `uptime` shows it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
