//! What `/proc` says about a process: the facts the safety rails and the
//! PID-reuse guard check before anything is signalled.

use std::io;
use std::path::Path;

use rustix::time::{clock_gettime, ClockId};

/// `PF_KTHREAD` in `/proc/PID/stat` flags: the task is a kernel thread.
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// The pid of `kthreadd`, parent of every kernel thread.
pub const KTHREADD_PID: i32 = 2;

/// One snapshot of `/proc/PID/stat` (read in one `read`, so consistent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// `comm`: the kernel's 15-byte process name.
    pub comm: String,
    /// `R`, `S`, `D`, `T`, `t`, `Z`, ...
    pub state: char,
    pub ppid: i32,
    pub flags: u64,
    pub nice: i64,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

impl ProcStat {
    pub fn is_kernel_thread(&self, pid: i32) -> bool {
        self.flags & PF_KTHREAD != 0 || pid == KTHREADD_PID || self.ppid == KTHREADD_PID
    }

    /// The start time as nanoseconds since the Unix epoch (what Falco's
    /// `proc.pid.ts` holds), to within a clock tick.
    pub fn start_epoch_nanos(&self) -> i64 {
        let ticks_per_second = rustix::param::clock_ticks_per_second().max(1);
        let since_boot =
            i128::from(self.start_ticks) * 1_000_000_000 / i128::from(ticks_per_second);
        let start = i128::from(boot_epoch_nanos()) + since_boot;
        i64::try_from(start).unwrap_or(i64::MAX)
    }
}

/// Read `/proc/PID/stat` under `proc_root`.
pub fn read_stat(proc_root: &Path, pid: i32) -> io::Result<ProcStat> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat"))?;
    parse_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat format"),
        )
    })
}

/// Parse a `/proc/PID/stat` line. The name sits in parentheses and may
/// itself contain spaces and `)`, so the fields start after the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 of proc(5): state; ppid is 4, flags 9, nice 19, starttime 22.
    Some(ProcStat {
        comm,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        flags: fields.get(6)?.parse().ok()?,
        nice: fields.get(16)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// When the system booted, in nanoseconds since the epoch: `CLOCK_REALTIME`
/// minus `CLOCK_BOOTTIME`, the clock `/proc/PID/stat` start times count in.
pub fn boot_epoch_nanos() -> i64 {
    let nanos = |id| {
        let t = clock_gettime(id);
        i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
    };
    i64::try_from(nanos(ClockId::Realtime) - nanos(ClockId::Boottime)).unwrap_or(0)
}

/// A process's real and effective user ids (`Uid:` in `/proc/PID/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessUids {
    pub real: u32,
    pub effective: u32,
}

/// Read the uids of `pid` under `proc_root`.
pub fn read_uids(proc_root: &Path, pid: i32) -> io::Result<ProcessUids> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status"))?;
    parse_uids(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no Uid line in /proc/{pid}/status"),
        )
    })
}

fn parse_uids(status: &str) -> Option<ProcessUids> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(|v| v.parse::<u32>().ok());
    Some(ProcessUids {
        real: ids.next()??,
        effective: ids.next()??,
    })
}

/// The thread ids of `pid` (`/proc/PID/task`).
pub fn thread_ids(proc_root: &Path, pid: i32) -> io::Result<Vec<i32>> {
    let mut tids: Vec<i32> = std::fs::read_dir(proc_root.join(pid.to_string()).join("task"))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_parentheses_and_spaces() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 5 1 0 98765 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "my (odd) name");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.flags, 4_194_560);
        assert_eq!(stat.nice, 5);
        assert_eq!(stat.start_ticks, 98_765);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn uids_come_from_the_status_file() {
        let status = "Name:\tsleep\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(
            parse_uids(status),
            Some(ProcessUids {
                real: 1000,
                effective: 0
            })
        );
        assert_eq!(parse_uids("Name:\tx\n"), None);
        let own = read_uids(Path::new("/proc"), std::process::id() as i32).unwrap();
        assert_eq!(own.real, rustix::process::getuid().as_raw());
    }

    #[test]
    fn own_process_started_recently_and_after_boot() {
        let stat = read_stat(Path::new("/proc"), std::process::id() as i32).unwrap();
        let now = crate::clock::SystemClock;
        let now = scbe_core::Clock::now(&now).as_nanos();
        let start = stat.start_epoch_nanos();
        assert!(
            start <= now + 1_000_000_000,
            "start {start} after now {now}"
        );
        assert!(start >= boot_epoch_nanos());
        assert!(!stat.is_kernel_thread(std::process::id() as i32));
    }
}
