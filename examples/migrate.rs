//! Moves one account: every folder (IMAP) or the inbox (POP3) of `--from` into `--to`.
//!
//! ```text
//! cargo run --release --features tokio --example migrate -- \
//!     --from imaps://old@example.com@imap.example.com --to maildir:./old-mail \
//!     [--layout mirror|under-address] [--state FILE] [--watch DURATION] [--ca-file PEM] \
//!     [--summary-json FILE] [--dry-run] [--connections N] [--max-size BYTES] [--no-fsync]
//! ```
//!
//! `--from` takes `imaps://`, `imap://` (STARTTLS required), `pop3s://`, `pop3://` (STLS
//! required), and `imap+insecure://`/`pop3+insecure://` for loopback tests. `--to` takes
//! `maildir:PATH` or an IMAP URL (`imaps://new@example.com@imap.new.example`, whose state
//! file is `--state`, by default `./mailmigrate-state.json`). Passwords come from
//! `MAILMIGRATE_SOURCE_PASSWORD` and `MAILMIGRATE_TARGET_PASSWORD` or a prompt, never from
//! the command line.
//!
//! Run it again to copy what is new; stop it with Ctrl-C at any time: the state is saved
//! after every batch and the next run resumes without duplicates. `--watch 30d` keeps
//! copying new mail for 30 days.

#[macro_use]
#[path = "shared/stdout.rs"]
mod stdout;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mailmigrate::folder::{Layout, PlanOptions, TargetListing};
use mailmigrate::net::{AccountUrl, Protocol, TlsConfig, TokioTimer};
use mailmigrate::store::{Imap, ImapOptions, Maildir, MaildirOptions};
use mailmigrate::sync::{
    Engine, EngineOptions, Event, FingerprintCounts, Message, Migrator, Report, Source, SyncState,
    TargetFolder, TcpConnector, Watch,
};
use mailmigrate::{Credentials, Error, ErrorKind, Result};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

const USAGE: &str = "usage: migrate --from URL --to maildir:PATH|IMAP-URL [--layout mirror|under-address] [--state FILE]
               [--watch DURATION] [--ca-file PEM] [--summary-json FILE] [--dry-run]
               [--connections N] [--max-size BYTES] [--no-fsync] [--quiet]
  --from: imaps:// imap:// pop3s:// pop3:// (imap+insecure:// pop3+insecure:// for tests), e.g. imaps://me@example.com@imap.example.com
  passwords: $MAILMIGRATE_SOURCE_PASSWORD, $MAILMIGRATE_TARGET_PASSWORD or a prompt";

/// Where the mail goes.
enum To {
    Maildir(PathBuf),
    Imap(AccountUrl),
}

struct Args {
    from: AccountUrl,
    to: To,
    layout: Option<String>,
    state: Option<PathBuf>,
    watch: Option<Duration>,
    ca_file: Option<PathBuf>,
    summary_json: Option<PathBuf>,
    dry_run: bool,
    connections: usize,
    max_size: Option<u64>,
    fsync: bool,
    quiet: bool,
}

fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 15m, 12h or 30d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{text:?} is not a duration like 90s, 15m, 12h or 30d")),
    };
    Ok(Duration::from_secs(secs))
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut from = None;
    let mut to = None;
    let mut args = Args {
        from: "imaps://x@x".parse().map_err(|e: Error| e.to_string())?,
        to: To::Maildir(PathBuf::new()),
        layout: None,
        state: None,
        watch: None,
        ca_file: None,
        summary_json: None,
        dry_run: false,
        connections: 3,
        max_size: None,
        fsync: true,
        quiet: false,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--from" => from = Some(value("--from")?),
            "--to" => to = Some(value("--to")?),
            "--layout" => args.layout = Some(value("--layout")?),
            "--state" => args.state = Some(value("--state")?.into()),
            "--watch" => args.watch = Some(parse_duration(&value("--watch")?)?),
            "--ca-file" => args.ca_file = Some(value("--ca-file")?.into()),
            "--summary-json" => args.summary_json = Some(value("--summary-json")?.into()),
            "--connections" => {
                let v = value("--connections")?;
                args.connections = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("{v:?} is not a positive number"))?;
            }
            "--max-size" => {
                let v = value("--max-size")?;
                args.max_size = Some(v.parse().map_err(|_| format!("{v:?} is not a number of bytes"))?);
            }
            "--dry-run" => args.dry_run = true,
            "--no-fsync" => args.fsync = false,
            "--quiet" => args.quiet = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let from = from.ok_or(format!("--from is required\n{USAGE}"))?;
    args.from = from.parse().map_err(|e: Error| e.to_string())?;
    let to = to.ok_or(format!("--to is required\n{USAGE}"))?;
    args.to = match to.strip_prefix("maildir:") {
        Some(path) if !path.is_empty() => To::Maildir(path.into()),
        Some(_) => return Err("--to maildir: needs a path, e.g. maildir:./old-mail".to_owned()),
        None => {
            let url: AccountUrl = to.parse().map_err(|e: Error| format!("--to: {e}"))?;
            if url.protocol != Protocol::Imap {
                return Err("--to: the target must be maildir:PATH or an IMAP URL".to_owned());
            }
            To::Imap(url)
        }
    };
    Ok(args)
}

fn password(variable: &str, what: &str) -> Result<String> {
    if let Ok(value) = std::env::var(variable) {
        return Ok(value);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("set {variable} to the {what} password"),
        ));
    }
    eprint!("{what} password: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The built-in stores this example writes to.
enum Store {
    Maildir(Maildir),
    Imap(Box<Imap<TcpConnector>>),
}

/// Runs the same call on whichever store it is.
macro_rules! on_store {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Maildir($s) => $call,
            Store::Imap($s) => $call,
        }
    };
}

/// The target, with progress bars and (for a Maildir) an optional state file elsewhere.
struct Target {
    store: Store,
    state_file: Option<PathBuf>,
    progress: Option<Progress>,
}

struct Progress {
    bars: MultiProgress,
    overall: ProgressBar,
    folders: Mutex<Vec<(String, ProgressBar)>>,
}

impl Progress {
    fn new() -> Progress {
        let bars = MultiProgress::new();
        let overall = bars.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} msgs {bytes_per_sec} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_prefix("all folders");
        Progress {
            bars,
            overall,
            folders: Mutex::new(Vec::new()),
        }
    }

    fn folder(&self, name: &str) -> Option<ProgressBar> {
        let folders = self.folders.lock().ok()?;
        folders
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bar)| bar.clone())
    }

    fn on(&self, event: &Event) {
        match event {
            Event::FolderStarted {
                source,
                known,
                remaining,
                ..
            } => {
                let bar = self.bars.insert_before(&self.overall, ProgressBar::new(*known));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(short(source, 24));
                bar.set_position(known - remaining);
                self.overall.inc_length(*remaining);
                if let Ok(mut folders) = self.folders.lock() {
                    folders.push((source.clone(), bar));
                }
            }
            Event::Copied { source, .. } => {
                if let Some(bar) = self.folder(source) {
                    bar.inc(1);
                }
                self.overall.inc(1);
            }
            Event::Failed { source, error } => {
                self.bars.println(format!("{source}: {error}")).ok();
            }
            Event::Retrying {
                source,
                error,
                attempt,
                delay,
            } => {
                let what = if source.is_empty() { "source" } else { source };
                self.bars
                    .println(format!(
                        "{what}: {error}; retry {attempt} in {} s",
                        delay.as_secs_f64().ceil()
                    ))
                    .ok();
                // The folder starts over (from where it got to) with a bar of its own.
                let removed = self.folders.lock().ok().and_then(|mut folders| {
                    let at = folders.iter().position(|(n, _)| n == source)?;
                    Some(folders.remove(at).1)
                });
                if let Some(bar) = removed {
                    let left = bar.length().unwrap_or(0).saturating_sub(bar.position());
                    let total = self.overall.length().unwrap_or(0);
                    self.overall.set_length(total.saturating_sub(left));
                    bar.finish_and_clear();
                }
            }
            Event::FolderFinished { source } => {
                if let Some(bar) = self.folder(source) {
                    bar.finish();
                }
            }
            _ => {}
        }
    }
}

/// `text` cut to at most `width` terminal columns (a Chinese character takes two), keeping
/// the end: a folder path ends in its most telling part.
fn short(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut tail = Vec::new();
    let mut used = 1; // the ellipsis
    for c in text.chars().rev() {
        used += c.width().unwrap_or(0);
        if used > width {
            break;
        }
        tail.push(c);
    }
    std::iter::once('…').chain(tail.into_iter().rev()).collect()
}

/// `text` in exactly `width` terminal columns: cut as [`short`] does, then padded.
fn cell(text: &str, width: usize) -> String {
    let text = short(text, width);
    let pad = width.saturating_sub(text.width());
    format!("{text}{}", " ".repeat(pad))
}

impl Migrator for Target {
    async fn prepare_folder(&self, folder: &TargetFolder) -> Result<()> {
        on_store!(&self.store, s => s.prepare_folder(folder).await)
    }
    async fn store(&self, folder: &TargetFolder, message: Message) -> Result<()> {
        on_store!(&self.store, s => s.store(folder, message).await)
    }
    async fn store_batch(&self, folder: &TargetFolder, messages: Vec<Message>) -> Vec<Result<()>> {
        on_store!(&self.store, s => s.store_batch(folder, messages).await)
    }
    async fn target_listing(&self) -> Result<TargetListing> {
        on_store!(&self.store, s => s.target_listing().await)
    }
    async fn load_state(&self) -> Result<Option<SyncState>> {
        match &self.state_file {
            None => on_store!(&self.store, s => s.load_state().await),
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "state file {} is corrupt ({e}); restore it or remove it to start over",
                            path.display()
                        ),
                    )
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::new(
                    ErrorKind::Io,
                    format!("cannot read {}: {e}", path.display()),
                )),
            },
        }
    }
    async fn save_state(&self, state: &SyncState) -> Result<()> {
        match &self.state_file {
            None => on_store!(&self.store, s => s.save_state(state).await),
            Some(path) => {
                let json = serde_json::to_vec_pretty(state)
                    .map_err(|e| Error::new(ErrorKind::Io, format!("cannot encode the state: {e}")))?;
                let tmp = path.with_extension("tmp");
                let write = || -> std::io::Result<()> {
                    let mut file = std::fs::File::create(&tmp)?;
                    file.write_all(&json)?;
                    file.sync_all()?;
                    std::fs::rename(&tmp, path)
                };
                write()
                    .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write {}: {e}", path.display())))
            }
        }
    }
    async fn fingerprints(&self, folder: &TargetFolder) -> Result<Option<FingerprintCounts>> {
        on_store!(&self.store, s => s.fingerprints(folder).await)
    }
    fn event(&self, event: &Event) {
        if let Some(progress) = &self.progress {
            progress.on(event);
        }
    }
}

fn print_table(report: &Report, elapsed: Duration) {
    say!();
    say!(
        "{:<32} {:<32} {:>8} {:>8} {:>8} {:>7} {:>10}",
        "source",
        "target",
        "copied",
        "skipped",
        "failed",
        "known",
        "MB"
    );
    for folder in &report.folders {
        let target = match (&folder.target, &folder.skipped_because) {
            (Some(path), _) => path.join('/'),
            (None, Some(_)) => "(skipped)".to_owned(),
            (None, None) => String::new(),
        };
        let c = &folder.counts;
        say!(
            "{} {} {:>8} {:>8} {:>8} {:>7} {:>10.1}",
            cell(&folder.source, 32),
            cell(&target, 32),
            c.copied_this_run,
            c.skipped,
            c.failed,
            c.known,
            c.copied_bytes as f64 / 1e6
        );
    }
    for folder in &report.folders {
        if let Some(why) = &folder.skipped_because {
            say!("note: {}: {why}", folder.source);
        }
    }
    let t = report.totals();
    let secs = elapsed.as_secs_f64().max(1e-3);
    say!(
        "total: {} copied this run ({:.1} MB), {} in the target of {} known, {} skipped, {} failed, in {:.1} s ({:.0} msg/s, {:.1} MB/s){}",
        t.copied_this_run,
        t.copied_bytes as f64 / 1e6,
        t.copied,
        t.known,
        t.skipped,
        t.failed,
        secs,
        t.copied_this_run as f64 / secs,
        t.copied_bytes as f64 / 1e6 / secs,
        if report.dry_run {
            " [dry run: nothing written]"
        } else {
            ""
        },
    );
}

async fn run(args: Args) -> Result<ExitCode> {
    let mut tls = TlsConfig::default();
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("cannot read --ca-file {}: {e}", path.display()),
            )
        })?;
        tls = tls.with_ca_pem(&pem)?;
    }
    // A private CA is trusted on both sides.
    let target_tls = tls.clone();
    let server = args.from.server().with_tls(tls);
    let credentials = Credentials::password(
        args.from.user.clone(),
        password("MAILMIGRATE_SOURCE_PASSWORD", "source")?,
    );
    let source = match args.from.protocol {
        Protocol::Imap => Source::imap(server, credentials),
        Protocol::Pop3 => Source::pop3(server, credentials),
    };
    let layout = match args.layout.as_deref() {
        None | Some("mirror") => Layout::Mirror,
        Some("under-address") => Layout::UnderAddress {
            root: args.from.user.clone(),
        },
        Some(other) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("--layout {other:?}: use mirror or under-address"),
            ));
        }
    };
    let (store, state_file) = match &args.to {
        To::Maildir(path) => {
            let maildir = Maildir::open_with(path, MaildirOptions::default().sync(args.fsync))?;
            (Store::Maildir(maildir), args.state.clone())
        }
        To::Imap(url) => {
            let credentials = Credentials::password(
                url.user.clone(),
                password("MAILMIGRATE_TARGET_PASSWORD", "target")?,
            );
            let state = args
                .state
                .clone()
                .unwrap_or_else(|| PathBuf::from("mailmigrate-state.json"));
            let options = ImapOptions::new(state).sync(args.fsync);
            let server = url.server().with_tls(target_tls);
            // The IMAP store keeps its own state file, with its journal of messages in flight.
            (
                Store::Imap(Box::new(
                    Imap::connect(server, credentials, Arc::new(TokioTimer), options).await?,
                )),
                None,
            )
        }
    };
    let progress = (!args.quiet && std::io::stderr().is_terminal()).then(Progress::new);
    let target = Target {
        store,
        state_file,
        progress,
    };
    let options = EngineOptions {
        plan: PlanOptions {
            layout,
            ..PlanOptions::default()
        },
        dry_run: args.dry_run,
        connections: args.connections,
        max_message_size: args.max_size,
        watch: args.watch.map(|window| Watch {
            window,
            poll_interval: Duration::from_secs(60).min(window),
        }),
        ..EngineOptions::default()
    };
    let engine = Engine::new(source, target, TcpConnector, Arc::new(TokioTimer), options);
    let started = Instant::now();
    let report = tokio::select! {
        report = engine.run() => report?,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the run is safe: the state was saved after the last batch, and the
            // next run re-offers at most the batch in flight, which the store recognises.
            eprintln!("\ninterrupted: the state is saved; run the same command again to resume");
            return Ok(ExitCode::from(130));
        }
    };
    if let Some(progress) = &engine.migrator().progress {
        progress.overall.finish();
    }
    print_table(&report, started.elapsed());
    if let Some(path) = &args.summary_json {
        let json = serde_json::to_vec_pretty(&report)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot encode the summary: {e}")))?;
        std::fs::write(path, json)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(if report.totals().failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(64);
        }
    };
    match run(args).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error ({}): {err}", err.kind());
            ExitCode::from(match err.kind() {
                ErrorKind::Auth => 3,
                ErrorKind::Transient => 75,
                _ => 1,
            })
        }
    }
}
