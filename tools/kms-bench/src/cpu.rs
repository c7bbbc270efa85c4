//! CPU time of processes from `/proc/<pid>/stat` (Linux), to report the
//! server's CPU cost per request.

use std::time::Duration;

use anyhow::{Context, bail};

/// Fields 14 and 15 of a `/proc/<pid>/stat` line (utime + stime), in clock ticks.
/// The command name (field 2) is in parentheses and may hold spaces or `)`,
/// so the fields are counted from the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_ascii_whitespace();
    // After the name: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second: `getconf CLK_TCK`, or Linux's usual 100.
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// CPU time (user + system) used so far by `pid` (`"self"` for this process).
pub fn cpu_time(pid: &str, ticks_per_second: u64) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let Some(ticks) = parse_stat_ticks(&stat) else {
        bail!("cannot parse {path}");
    };
    Ok(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second as f64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime() {
        let line =
            "4242 (kms gateway) S 1 4242 4242 0 -1 4194560 1234 0 5 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(line), Some(325));
        let tricky = "7 (a) b) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0";
        assert_eq!(parse_stat_ticks(tricky), Some(7));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(cpu_time("self", clock_ticks_per_second()).is_ok());
    }
}
