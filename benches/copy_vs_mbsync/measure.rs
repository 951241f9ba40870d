//! Running one tool as a child process: wall time, peak RSS, CPU, and Dovecot's CPU meanwhile.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Dovecot;

/// GNU time: its `%M` is the child's peak RSS from `wait4`, exact rather than sampled.
const GNU_TIME: &str = "/usr/bin/time";
/// A command (and its arguments) to run each measured tool under, e.g. a heap profiler.
const WRAP_ENV: &str = "MAILMIGRATE_BENCH_WRAP";

/// A command line to measure.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Cmd {
        self.env.push((key.to_owned(), value.into()));
        self
    }
}

/// What one run cost.
#[derive(Debug, Clone, Default)]
pub struct Measure {
    pub secs: f64,
    /// Peak resident set of the tool's process, KiB.
    pub peak_rss_kib: u64,
    /// CPU seconds of the tool (user + system).
    pub cpu: f64,
    /// CPU seconds Dovecot's processes used meanwhile.
    pub dovecot_cpu: f64,
    /// CPU seconds of Dovecot's `imap` processes by the user they served (sampled every
    /// 50 ms, so a process's last few milliseconds may be missing).
    pub imap_cpu_by_user: Vec<(String, f64)>,
    pub stdout: String,
}

/// How peak RSS is measured on this machine.
pub fn rss_method() -> &'static str {
    if Path::new(GNU_TIME).exists() {
        "GNU time %M (wait4 ru_maxrss)"
    } else {
        "VmHWM sampled every 5 ms (install the `time` package for exact figures)"
    }
}

/// Runs `cmd` to completion; panics with its output if it fails.
pub fn run(cmd: &Cmd, dovecot: &Dovecot, scratch: &Path) -> Measure {
    // Let the previous run's dirty pages reach the disk first, so their writeback is not
    // billed to this run.
    let _ = Command::new("sync").status();
    let gnu_time = Path::new(GNU_TIME).exists();
    let stats_file = scratch.join("time-stats");
    let _ = fs::remove_file(&stats_file);
    // MAILMIGRATE_BENCH_WRAP="heaptrack -o /tmp/ht" runs every tool under a profiler (its
    // own figures are then off, of course).
    let wrap: Vec<String> = std::env::var(WRAP_ENV)
        .map(|w| w.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut line: Vec<std::ffi::OsString> = wrap.into_iter().map(Into::into).collect();
    line.push(cmd.program.clone().into_os_string());
    let mut command = if gnu_time {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f").arg("%M %U %S").arg("-o").arg(&stats_file).args(&line);
        c
    } else {
        let mut c = Command::new(&line[0]);
        c.args(&line[1..]);
        c
    };
    command
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let dovecot_before = dovecot_cpu(dovecot);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cmd.program.display()));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let mut sampled_hwm = 0;
    let mut imap = ImapProcesses::default();
    let mut next_sample = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("wait failed: {e}")) {
            break status;
        }
        if !gnu_time {
            sampled_hwm = sampled_hwm.max(vm_hwm(child.id()).unwrap_or(0));
        }
        if Instant::now() >= next_sample {
            imap.sample(dovecot);
            next_sample += Duration::from_millis(50);
        }
        std::thread::sleep(Duration::from_millis(if gnu_time { 1 } else { 5 }));
    };
    let secs = started.elapsed().as_secs_f64();
    // The tool logged out: let its imap processes finish, so their CPU time is counted.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline
        && dovecot
            .pids()
            .iter()
            .any(|&pid| stat(pid).is_some_and(|(c, _)| c == "imap"))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let dovecot_cpu = dovecot_cpu(dovecot) - dovecot_before;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    assert!(
        status.success(),
        "{} {:?} failed ({status}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        cmd.program.display(),
        cmd.args
    );
    let (peak_rss_kib, cpu) = if gnu_time {
        let stats = fs::read_to_string(&stats_file).unwrap_or_default();
        // The last line: GNU time puts "Command exited with ..." lines before it.
        let fields: Vec<&str> = stats
            .lines()
            .last()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        (num(0) as u64, num(1) + num(2))
    } else {
        (sampled_hwm, 0.0)
    };
    Measure {
        secs,
        peak_rss_kib,
        cpu,
        dovecot_cpu,
        imap_cpu_by_user: imap.by_user(),
        stdout: format!("{stdout}{stderr}"),
    }
}

/// The `imap` processes seen during a run: pid → (user, CPU ticks at the last sample).
#[derive(Default)]
struct ImapProcesses {
    seen: HashMap<u32, (String, u64)>,
}

impl ImapProcesses {
    fn sample(&mut self, dovecot: &Dovecot) {
        for pid in dovecot.pids() {
            let Some((comm, ticks)) = stat(pid) else { continue };
            if comm != "imap" {
                continue;
            }
            match self.seen.get_mut(&pid) {
                // Until login the title names no user.
                Some(entry) if entry.0 != "?" => entry.1 = ticks,
                _ => {
                    // The title is `<instance>/imap [<user> <ip> <command>]`.
                    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
                        continue;
                    };
                    let title = String::from_utf8_lossy(&cmdline);
                    let user = title
                        .split_once('[')
                        .and_then(|(_, rest)| rest.split([' ', ']']).next())
                        .unwrap_or("?")
                        .to_owned();
                    self.seen.insert(pid, (user, ticks));
                }
            }
        }
    }

    fn by_user(&self) -> Vec<(String, f64)> {
        let mut users: HashMap<&str, u64> = HashMap::new();
        for (user, ticks) in self.seen.values() {
            *users.entry(user).or_default() += ticks;
        }
        let mut out: Vec<(String, f64)> = users
            .into_iter()
            .map(|(u, t)| (u.to_owned(), t as f64 / clock_ticks()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// (command name, user + system CPU ticks) of a live process.
fn stat(pid: u32) -> Option<(String, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((comm, ticks))
}

fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds Dovecot has used so far: each process's own time plus what its exited
/// children used (the master reaps the per-connection `imap` processes). Zombies count too:
/// their time reaches the master's only once reaped.
fn dovecot_cpu(dovecot: &Dovecot) -> f64 {
    let ticks: u64 = group_with_zombies(dovecot)
        .iter()
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 1..];
            let fields: Vec<&str> = after.split_whitespace().collect();
            // After the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14).
            let sum = (11..=14)
                .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
                .sum::<u64>();
            Some(sum)
        })
        .sum();
    ticks as f64 / clock_ticks()
}

/// Every process in the Dovecot master's process group, zombies included.
fn group_with_zombies(dovecot: &Dovecot) -> Vec<u32> {
    let field = |pid: u32, i: usize| -> Option<u32> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .nth(i)?
            .parse()
            .ok()
    };
    // After the command: state(0) ppid(1) pgrp(2).
    let Some(pgid) = dovecot.pids().first().and_then(|&pid| field(pid, 2)) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| field(pid, 2) == Some(pgid))
        .collect()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
