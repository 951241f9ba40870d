//! End-to-end copy benchmark (issue 5): mailmigrate against mbsync and `doveadm backup`.
//!
//! ```text
//! cargo bench --bench copy_vs_mbsync                                   # 20,000 messages
//! MAILMIGRATE_BENCH_MESSAGES=2000 cargo bench --bench copy_vs_mbsync   # a quick run
//! benches/copy_vs_mbsync.sh                                            # checks the tools first
//! ```
//!
//! One private Dovecot (from `tests/support/`) holds a deterministic corpus in one user:
//! sizes from 2 KB to 5 MB, Chinese and special-character folder names, keywords, and
//! duplicates within a folder. Then, in the same run, each tool copies it and copies it
//! again with nothing new:
//!
//! * mbsync (isync) and mailmigrate ([`store::Imap`](mailmigrate::store::Imap)) into another
//!   user of the same Dovecot, over plaintext and over implicit TLS;
//! * `doveadm backup` and mailmigrate ([`store::Maildir`](mailmigrate::store::Maildir)) into
//!   a Maildir++ directory (mailmigrate reads over IMAP, doveadm reads the files directly).
//!
//! Every tool runs as a child process measured the same way: wall time, peak RSS (GNU
//! `time`), its CPU time and the CPU Dovecot used meanwhile. Every copy is then checked
//! against the source through Dovecot's own view (see `check.rs`); an inexact copy by
//! mailmigrate fails the benchmark, an inexact one by another tool is reported.
//!
//! `MAILMIGRATE_BENCH_ONLY=mbsync-plain,mm-plain,...` runs a subset, in the order given
//! (the keys are the scenario names printed at the start; one may repeat);
//! `MAILMIGRATE_BENCH_ENGINE=connections=4,...` overrides engine options for experiments
//! (see `child.rs`); `MAILMIGRATE_BENCH_WRAP="heaptrack -o FILE"` runs each tool under a
//! profiler (a wrapper script can name one file per process).
//!
//! Where the files go: the private Dovecot, its users and every copy live under `TMPDIR`
//! (default `/tmp`). Most of Dovecot's CPU goes into creating files, which on a shared
//! machine's disk varies a lot from run to run (on ext4 without a journal, creating a file
//! scans past every inode freed in the last 30 s, by any process); `TMPDIR=/dev/shm` gives
//! steadier figures for comparing the tools. Each run starts after a pause
//! (`MAILMIGRATE_BENCH_SETTLE`, default 36 s, none on tmpfs) so it does not pay for the
//! previous run's freed inodes; nothing is deleted until the end.

#[path = "../../tests/support/mod.rs"]
mod support;

mod check;
mod child;
mod corpus;
mod measure;

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use check::{Snapshot, Verdict};
use corpus::Corpus;
use measure::{Cmd, Measure};
use support::{Dovecot, TestUser};

const DEFAULT_MESSAGES: usize = 20_000;
const MESSAGES_ENV: &str = "MAILMIGRATE_BENCH_MESSAGES";
const ONLY_ENV: &str = "MAILMIGRATE_BENCH_ONLY";
const SETTLE_ENV: &str = "MAILMIGRATE_BENCH_SETTLE";
const DEFAULT_SETTLE_SECS: u64 = 36;
const MBSYNC: &str = "/usr/bin/mbsync";
const DOVEADM: &str = "/usr/bin/doveadm";
/// The mail user of the private Dovecot when we run as root.
const NOBODY: u32 = 65_534;

/// The goals of issue 5.
const GOAL_PLAIN: f64 = 1.5;
const GOAL_TLS: f64 = 1.3;
const GOAL_RSS_MIB: f64 = 64.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Mbsync,
    Mailmigrate,
    DoveadmBackup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Another user of the same Dovecot, over IMAP.
    Imap { tls: bool },
    /// A Maildir++ directory; `fsync` says whether every message is flushed.
    Maildir { fsync: bool },
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    key: &'static str,
    tool: Tool,
    target: Target,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "mbsync-plain",
        tool: Tool::Mbsync,
        target: Target::Imap { tls: false },
    },
    Scenario {
        key: "mm-plain",
        tool: Tool::Mailmigrate,
        target: Target::Imap { tls: false },
    },
    Scenario {
        key: "mbsync-tls",
        tool: Tool::Mbsync,
        target: Target::Imap { tls: true },
    },
    Scenario {
        key: "mm-tls",
        tool: Tool::Mailmigrate,
        target: Target::Imap { tls: true },
    },
    Scenario {
        key: "doveadm",
        tool: Tool::DoveadmBackup,
        target: Target::Maildir { fsync: false },
    },
    Scenario {
        key: "mm-maildir",
        tool: Tool::Mailmigrate,
        target: Target::Maildir { fsync: false },
    },
    Scenario {
        key: "doveadm-fsync",
        tool: Tool::DoveadmBackup,
        target: Target::Maildir { fsync: true },
    },
    Scenario {
        key: "mm-maildir-fsync",
        tool: Tool::Mailmigrate,
        target: Target::Maildir { fsync: true },
    },
];

struct Row {
    scenario: Scenario,
    first: Measure,
    again: Measure,
    verdict: Verdict,
    /// The child's own account of where the time went (mailmigrate only).
    timing: Option<String>,
}

fn main() -> ExitCode {
    if std::env::var_os(child::CHILD_ENV).is_some() {
        return child::main();
    }
    match bench() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("copy_vs_mbsync: {message}");
            ExitCode::FAILURE
        }
    }
}

fn bench() -> Result<ExitCode, String> {
    let messages = match std::env::var(MESSAGES_ENV) {
        Ok(v) => v.parse::<usize>().ok().filter(|&n| n >= 100).ok_or(format!(
            "{MESSAGES_ENV}={v:?}: give a message count of at least 100"
        ))?,
        Err(_) => DEFAULT_MESSAGES,
    };
    let scenarios: Vec<Scenario> = match std::env::var(ONLY_ENV) {
        Ok(only) => {
            let keys: Vec<&str> = only.split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
            for key in &keys {
                if !SCENARIOS.iter().any(|s| s.key == *key) {
                    return Err(format!(
                        "{ONLY_ENV}: unknown scenario {key:?}; known: {}",
                        SCENARIOS.iter().map(|s| s.key).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            // In the order given, so that the order's effect can be checked too.
            keys.iter()
                .filter_map(|k| SCENARIOS.iter().find(|s| s.key == *k))
                .copied()
                .collect()
        }
        Err(_) => SCENARIOS.to_vec(),
    };
    if scenarios.iter().any(|s| s.tool == Tool::Mbsync) && !Path::new(MBSYNC).exists() {
        return Err(format!(
            "{MBSYNC} is missing: install isync (`apt-get install isync`), or leave the mbsync \
             scenarios out with {ONLY_ENV}=mm-plain,mm-tls,doveadm,mm-maildir"
        ));
    }
    if !Path::new(DOVEADM).exists() {
        return Err(format!(
            "{DOVEADM} is missing: install dovecot-imapd and dovecot-pop3d (.ci/run does)"
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this benchmark's binary: {e}"))?;
    let scratch = tempfile::Builder::new()
        .prefix("mm-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    // Dovecot's mail processes (nobody) read and write maildirs below it.
    fs::set_permissions(scratch.path(), fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let root = fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);

    let tmp = std::env::temp_dir();
    println!(
        "copy_vs_mbsync: {messages} messages under {} ({}); peak RSS by {}",
        tmp.display(),
        if on_tmpfs(&tmp) { "tmpfs" } else { "not tmpfs" },
        measure::rss_method()
    );
    println!(
        "scenarios: {}",
        scenarios.iter().map(|s| s.key).collect::<Vec<_>>().join(", ")
    );
    let d = Dovecot::start();
    let ca = scratch.path().join("ca.pem");
    fs::write(&ca, d.ca_pem()).map_err(|e| e.to_string())?;

    let corpus = Corpus::new(messages);
    let source_user = d.unique_user("source");
    let started = Instant::now();
    let (seeded, seeded_bytes) = corpus.seed(&d, &source_user);
    println!(
        "corpus: {seeded} messages, {:.1} MB, seeded in {:.1} s\n{}",
        seeded_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        corpus.describe()
    );
    // Also builds the source's indexes, so that no tool pays for them.
    let source = check::snapshot(&d, &source_user.name, None);
    if source.messages() != seeded {
        return Err(format!(
            "Dovecot shows {} messages in the source, {seeded} were seeded",
            source.messages()
        ));
    }

    let mut rows = Vec::new();
    for scenario in scenarios {
        println!("\n== {} ...", scenario.key);
        let row = run_scenario(
            scenario,
            &d,
            &source_user,
            &source,
            &exe,
            &ca,
            scratch.path(),
            root,
        );
        println!(
            "   first {:.2} s, again {:.3} s, peak RSS {:.1} MiB; {}",
            row.first.secs,
            row.again.secs,
            row.first.peak_rss_kib.max(row.again.peak_rss_kib) as f64 / 1024.0,
            row.verdict.summary()
        );
        for example in &row.verdict.flag_examples {
            println!("   flags changed, e.g. {example}");
        }
        if let Some(timing) = &row.timing {
            println!("   {timing}");
        }
        let imap: Vec<String> = row
            .first
            .imap_cpu_by_user
            .iter()
            .map(|(user, secs)| format!("{user} {secs:.2} s"))
            .collect();
        println!(
            "   CPU: the tool {:.2} s, Dovecot {:.2} s (imap processes by user: {})",
            row.first.cpu,
            row.first.dovecot_cpu,
            imap.join(", ")
        );
        rows.push(row);
    }
    println!();
    print!("{}", table(&rows, &source));
    print!("{}", goals(&rows));
    let ours_inexact: Vec<&str> = rows
        .iter()
        .filter(|r| r.scenario.tool == Tool::Mailmigrate && !r.verdict.exact())
        .map(|r| r.scenario.key)
        .collect();
    if !ours_inexact.is_empty() {
        eprintln!("mailmigrate's copy is not exact in: {}", ours_inexact.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn run_scenario(
    scenario: Scenario,
    d: &Dovecot,
    source_user: &TestUser,
    source: &Snapshot,
    exe: &Path,
    ca: &Path,
    scratch: &Path,
    root: bool,
) -> Row {
    let target_user = d.unique_user(scenario.key);
    // Named after the (unique) target user, so a scenario can run twice.
    let dir = scratch.join(&target_user.name);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("{e}"));
    let maildir = dir.join("Maildir");
    if matches!(scenario.target, Target::Maildir { .. }) && root {
        // doveadm writes as the mail user; it must be able to create the maildir here.
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap_or_else(|e| panic!("{e}"));
    }
    let cmd = match (scenario.tool, scenario.target) {
        (Tool::Mbsync, Target::Imap { tls }) => {
            let rc = mbsync_rc(d, source_user, &target_user, tls, ca, &dir);
            Cmd::new(MBSYNC).arg("-c").arg(rc).arg("-a")
        }
        (Tool::Mailmigrate, target) => {
            let mut cmd = Cmd::new(exe)
                .env(child::CHILD_ENV, "1")
                .env("MAILMIGRATE_SOURCE_PASSWORD", source_user.password.clone())
                .env("MAILMIGRATE_TARGET_PASSWORD", target_user.password.clone())
                .arg(format!("source-user={}", source_user.name))
                .arg(format!("ca={}", ca.display()));
            match target {
                Target::Imap { tls } => {
                    let (port, other) = if tls {
                        (d.imaps_port(), "1")
                    } else {
                        (d.imap_port(), "0")
                    };
                    cmd = cmd
                        .arg(format!("tls={other}"))
                        .arg(format!("source-port={port}"))
                        .arg(format!("target-port={port}"))
                        .arg("target=imap")
                        .arg(format!("target-user={}", target_user.name))
                        .arg(format!("state={}", dir.join("state.json").display()));
                }
                Target::Maildir { fsync } => {
                    // Read over plaintext IMAP: doveadm reads the files with no network at all.
                    cmd = cmd
                        .arg("tls=0")
                        .arg(format!("source-port={}", d.imap_port()))
                        .arg("target=maildir")
                        .arg(format!("maildir={}", maildir.display()))
                        .arg(format!("fsync={}", u8::from(fsync)));
                    if root {
                        cmd = cmd.arg(format!("owner={NOBODY}:{NOBODY}"));
                    }
                }
            }
            cmd
        }
        (Tool::DoveadmBackup, Target::Maildir { fsync }) => Cmd::new(DOVEADM)
            .arg("-c")
            .arg(d.config_path())
            // The test config says `never`; `optimized` is Dovecot's default.
            .arg("-o")
            .arg(format!(
                "mail_fsync={}",
                if fsync { "optimized" } else { "never" }
            ))
            .arg("backup")
            .arg("-u")
            .arg(source_user.name.clone())
            .arg(format!("maildir:{}", maildir.display()))
            .env("TZ", "UTC"),
        (tool, target) => panic!("no such scenario: {tool:?} into {target:?}"),
    };
    settle();
    let first = measure::run(&cmd, d, &dir);
    let again = measure::run(&cmd, d, &dir);
    let timing = (scenario.tool == Tool::Mailmigrate).then(|| child_summary(&first, &again, source));
    let copy = match scenario.target {
        Target::Imap { .. } => check::snapshot(d, &target_user.name, None),
        Target::Maildir { .. } => check::snapshot(d, &target_user.name, Some(&maildir)),
    };
    let verdict = check::compare(source, &copy);
    // Nothing is deleted until the end: on ext4 without a journal (as here), creating a file
    // scans past every inode freed in the last 30 s, so a run right after deleting a copy
    // of 20,000 files would be slowed by the previous run's cleanup.
    Row {
        scenario,
        first,
        again,
        verdict,
        timing,
    }
}

/// Waits until inodes freed before this run no longer slow file creation down.
///
/// On ext4 without a journal (as on the machine these figures come from) creating a file
/// scans past every inode of its block group freed in the last 30 (35) seconds: a run
/// right after another tool's run (Dovecot frees a lock file per APPEND), or after the
/// previous benchmark removed its copies, would pay for them. Each run pays only for its
/// own churn after this pause. `MAILMIGRATE_BENCH_SETTLE=0` skips it.
fn settle() {
    let default = if on_tmpfs(&std::env::temp_dir()) {
        0
    } else {
        DEFAULT_SETTLE_SECS
    };
    let secs = std::env::var(SETTLE_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    if secs > 0 {
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
}

/// Whether `path` is on a tmpfs (its longest mount point prefix in `/proc/mounts`).
fn on_tmpfs(path: &Path) -> bool {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point).then_some((point.len(), kind == "tmpfs"))
        })
        .max_by_key(|&(len, _)| len)
        .is_some_and(|(_, tmpfs)| tmpfs)
}

/// The child's RESULT and TIMING lines, checked: the first run copies everything, the
/// second nothing.
fn child_summary(first: &Measure, again: &Measure, source: &Snapshot) -> String {
    let field = |m: &Measure, line: &str, key: &str| -> Option<u64> {
        let l = m.stdout.lines().find(|l| l.starts_with(line))?;
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    let copied = field(first, "RESULT", "copied");
    let failed = field(first, "RESULT", "failed");
    let again_copied = field(again, "RESULT", "copied");
    assert_eq!(
        (copied, failed, again_copied),
        (Some(source.messages() as u64), Some(0), Some(0)),
        "mailmigrate: the first run must copy every message and the second none:\n{}\n{}",
        first.stdout,
        again.stdout
    );
    let timing = first
        .stdout
        .lines()
        .find(|l| l.starts_with("TIMING"))
        .unwrap_or_default();
    let again_timing = again
        .stdout
        .lines()
        .find(|l| l.starts_with("TIMING"))
        .unwrap_or_default();
    format!("first: {timing}\n   again: {again_timing}")
}

/// An mbsyncrc pulling every folder of `source` into `target` (far → near), state in `dir`.
fn mbsync_rc(d: &Dovecot, source: &TestUser, target: &TestUser, tls: bool, ca: &Path, dir: &Path) -> PathBuf {
    let state = dir.join("mbsync-state");
    fs::create_dir_all(&state).unwrap_or_else(|e| panic!("cannot create {}: {e}", state.display()));
    let (port, security) = if tls {
        // mbsync checks the name in the certificate and does not accept an IP address.
        (
            d.imaps_port(),
            format!("SSLType IMAPS\nCertificateFile {}", ca.display()),
        )
    } else {
        (d.imap_port(), "SSLType None".to_owned())
    };
    let host = if tls { "localhost" } else { "127.0.0.1" };
    let mut rc = String::new();
    for (name, user) in [("source", source), ("target", target)] {
        let _ = write!(
            rc,
            "IMAPAccount {name}\nHost {host}\nPort {port}\nUser {}\nPass \"{}\"\n{security}\n\
             AuthMechs PLAIN\n\nIMAPStore {name}\nAccount {name}\n\n",
            user.name, user.password
        );
    }
    let _ = write!(
        rc,
        "Channel copy\nFar :source:\nNear :target:\nPatterns *\nCreate Near\nSync Pull\n\
         CopyArrivalDate yes\nExpunge None\nSyncState {}/\n",
        state.display()
    );
    let path = dir.join("mbsyncrc");
    fs::write(&path, rc).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn label(s: &Scenario) -> (&'static str, String) {
    let tool = match s.tool {
        Tool::Mbsync => "mbsync",
        Tool::Mailmigrate => "mailmigrate",
        Tool::DoveadmBackup => "doveadm backup",
    };
    let transport = match (s.tool, s.target) {
        (_, Target::Imap { tls: false }) => "IMAP→IMAP plain".to_owned(),
        (_, Target::Imap { tls: true }) => "IMAP→IMAP TLS".to_owned(),
        (Tool::DoveadmBackup, Target::Maildir { fsync }) => {
            format!("local→Maildir{}", if fsync { " fsync" } else { "" })
        }
        (_, Target::Maildir { fsync }) => format!("IMAP→Maildir{}", if fsync { " fsync" } else { "" }),
    };
    (tool, transport)
}

fn table(rows: &[Row], source: &Snapshot) -> String {
    let messages = source.messages() as f64;
    let mb = source.bytes as f64 / 1e6;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<22} {:>6} {:>7} {:>7} {:>6} {:>7} {:>7} {:>8} {:>8} {:>7}  exact?",
        "tool",
        "transport",
        "msgs",
        "seconds",
        "msg/s",
        "MB/s",
        "RSS MiB",
        "CPU s",
        "dovecot",
        "again s",
        "vs ref"
    );
    for row in rows {
        let (tool, transport) = label(&row.scenario);
        let rss = row.first.peak_rss_kib.max(row.again.peak_rss_kib) as f64 / 1024.0;
        let ratio = reference(rows, &row.scenario)
            .map(|r| format!("{:.2}x", r.first.secs / row.first.secs))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{tool:<14} {transport:<22} {:>6} {:>7.2} {:>7.0} {:>6.1} {:>7.1} {:>7.2} {:>8.2} {:>8.3} {:>7}  {}",
            messages,
            row.first.secs,
            messages / row.first.secs,
            mb / row.first.secs,
            rss,
            row.first.cpu,
            row.first.dovecot_cpu,
            row.again.secs,
            ratio,
            row.verdict.summary()
        );
    }
    let _ = writeln!(
        out,
        "({messages} messages, {mb:.1} MB as served over IMAP; \"dovecot\" is the CPU seconds \
         Dovecot used during the first run; \"vs ref\" is mailmigrate's speed-up over mbsync \
         on the same transport, or over doveadm backup into the same kind of Maildir)"
    );
    out
}

/// What a mailmigrate row is compared with: mbsync on the same transport, or doveadm backup
/// with the same fsync setting.
fn reference<'r>(rows: &'r [Row], s: &Scenario) -> Option<&'r Row> {
    if s.tool != Tool::Mailmigrate {
        return None;
    }
    let tool = match s.target {
        Target::Imap { .. } => Tool::Mbsync,
        Target::Maildir { .. } => Tool::DoveadmBackup,
    };
    rows.iter()
        .find(|r| r.scenario.tool == tool && r.scenario.target == s.target)
}

fn goals(rows: &[Row]) -> String {
    let mut out = String::from("\ngoals (issue 5):\n");
    let mut line = |ok: bool, text: String| {
        let _ = writeln!(out, "  [{}] {text}", if ok { "met" } else { "MISSED" });
    };
    for row in rows.iter().filter(|r| r.scenario.tool == Tool::Mailmigrate) {
        let (_, transport) = label(&row.scenario);
        if let Some(reference) = reference(rows, &row.scenario) {
            let speedup = reference.first.secs / row.first.secs;
            let (goal, what) = match row.scenario.target {
                Target::Imap { tls: false } => (GOAL_PLAIN, "mbsync's msg/s"),
                Target::Imap { tls: true } => (GOAL_TLS, "mbsync's msg/s"),
                Target::Maildir { .. } => (1.0, "doveadm backup's msg/s"),
            };
            line(
                speedup >= goal,
                format!("{transport}: {speedup:.2}x {what} (goal {goal}x)"),
            );
            if reference.scenario.tool == Tool::Mbsync {
                line(
                    row.again.secs <= reference.again.secs,
                    format!(
                        "{transport}: re-run with nothing new {:.3} s, mbsync {:.3} s",
                        row.again.secs, reference.again.secs
                    ),
                );
            }
        }
        let rss = row.first.peak_rss_kib.max(row.again.peak_rss_kib) as f64 / 1024.0;
        line(
            rss <= GOAL_RSS_MIB,
            format!("{transport}: peak RSS {rss:.1} MiB (goal ≤ {GOAL_RSS_MIB} MiB)"),
        );
        line(
            row.verdict.exact(),
            format!("{transport}: {}", row.verdict.summary()),
        );
    }
    out
}
