//! What the benchmark reads from and does to the host: the load average, its CPUs, and pinning
//! processes to them with `taskset`.

use std::process::{Command, Stdio};

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

/// Pins every thread of `pid` to `cpu` (threads it starts later inherit the mask); false when
/// `taskset` is missing or refuses.
pub fn pin(pid: u32, cpu: usize) -> bool {
    Command::new("taskset")
        .args(["--all-tasks", "--cpu-list", "--pid"])
        .arg(cpu.to_string())
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
