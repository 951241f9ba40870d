//! The crate's side of the benchmark: this same binary, re-run as a child process (so its
//! peak RSS is measured the way every other tool's is), copying one account with
//! [`Engine`] into [`store::Imap`](mailmigrate::store::Imap) or
//! [`store::Maildir`](mailmigrate::store::Maildir).
//!
//! Arguments are `key=value` words; passwords come from `MAILMIGRATE_SOURCE_PASSWORD` and
//! `MAILMIGRATE_TARGET_PASSWORD`. It prints one `RESULT ...` line and one `TIMING ...` line
//! (where the wall time went, as seen from the target's side).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use mailmigrate::folder::TargetListing;
use mailmigrate::net::{Security, ServerConfig, Timer, TlsConfig};
use mailmigrate::store::{Imap, ImapOptions, Maildir, MaildirOptions};
use mailmigrate::sync::{
    Connector, Engine, EngineOptions, Event, FingerprintCounts, Message, Migrator, Source, SyncState,
    TargetFolder,
};
use mailmigrate::{Credentials, Error, ErrorKind, Result};
use tokio::io::{AsyncRead as _, AsyncWrite as _, ReadBuf};

/// Set in the child's environment: run as the engine child, not as the benchmark.
pub const CHILD_ENV: &str = "MAILMIGRATE_BENCH_CHILD";
/// Engine option overrides for experiments, e.g. `connections=4,batch_messages=500`.
pub const ENGINE_ENV: &str = "MAILMIGRATE_BENCH_ENGINE";

pub fn main() -> ExitCode {
    let args: HashMap<String, String> = std::env::args()
        .skip(1)
        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error ({}): {err}", err.kind());
            ExitCode::FAILURE
        }
    }
}

fn arg<'a>(args: &'a HashMap<String, String>, key: &str) -> Result<&'a str> {
    args.get(key).map(String::as_str).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("the benchmark child needs {key}=..."),
        )
    })
}

fn server(args: &HashMap<String, String>, port_key: &str) -> Result<ServerConfig> {
    let port: u16 = arg(args, port_key)?
        .parse()
        .map_err(|_| Error::new(ErrorKind::InvalidInput, format!("{port_key} is not a port")))?;
    let tls = arg(args, "tls")? == "1";
    let pem = std::fs::read(arg(args, "ca")?)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("cannot read the CA: {e}")))?;
    Ok(ServerConfig::new(
        "127.0.0.1",
        port,
        if tls { Security::Tls } else { Security::Plaintext },
    )
    .with_tls(TlsConfig::default().with_ca_pem(&pem)?.only_extra_roots())
    .with_timeout(Duration::from_secs(600)))
}

fn password(variable: &str) -> Result<String> {
    std::env::var(variable).map_err(|_| Error::new(ErrorKind::InvalidInput, format!("set {variable}")))
}

fn engine_options() -> Result<EngineOptions> {
    let mut options = EngineOptions::default();
    let Ok(overrides) = std::env::var(ENGINE_ENV) else {
        return Ok(options);
    };
    for item in overrides.split(',').filter(|s| !s.is_empty()) {
        let bad = || {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{ENGINE_ENV}: bad item {item:?}"),
            )
        };
        let (key, value) = item.split_once('=').ok_or_else(bad)?;
        let n: u64 = value.parse().map_err(|_| bad())?;
        match key {
            "connections" => options.connections = n as usize,
            "fetch_chunk" => options.fetch_chunk = n as u32,
            "batch_messages" => options.batch_messages = n as usize,
            "batch_bytes" => options.batch_bytes = n,
            "target_connections" => {}
            _ => return Err(bad()),
        }
    }
    Ok(options)
}

fn target_connections() -> usize {
    std::env::var(ENGINE_ENV)
        .ok()
        .and_then(|o| {
            o.split(',')
                .find_map(|i| i.strip_prefix("target_connections=")?.parse().ok())
        })
        .unwrap_or(0)
}

async fn run(args: &HashMap<String, String>) -> Result<()> {
    let source = Source::imap(
        server(args, "source-port")?,
        Credentials::password(
            arg(args, "source-user")?,
            password("MAILMIGRATE_SOURCE_PASSWORD")?,
        ),
    );
    let options = engine_options()?;
    let timer: Arc<dyn Timer> = Arc::new(Clock);
    let target = arg(args, "target")?;
    let started = Instant::now();
    if target == "imap" {
        let mut imap_options = ImapOptions::new(arg(args, "state")?);
        let n = target_connections();
        if n > 0 {
            imap_options = imap_options.connections(n);
        }
        let store = Imap::open(
            Tcp,
            server(args, "target-port")?,
            Credentials::password(
                arg(args, "target-user")?,
                password("MAILMIGRATE_TARGET_PASSWORD")?,
            ),
            timer.clone(),
            imap_options,
        )
        .await?;
        copy(source, Timed::new(store), timer, options, started).await
    } else {
        let mut maildir_options = MaildirOptions::default().sync(arg(args, "fsync")? == "1");
        if let Some(owner) = args.get("owner") {
            let (uid, gid) = owner
                .split_once(':')
                .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
                .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "owner=UID:GID"))?;
            maildir_options = maildir_options.owner(uid, gid);
        }
        let store = Maildir::open_with(arg(args, "maildir")?, maildir_options)?;
        copy(source, Timed::new(store), timer, options, started).await
    }
}

async fn copy<M: Migrator>(
    source: Source,
    target: Timed<M>,
    timer: Arc<dyn Timer>,
    options: EngineOptions,
    started: Instant,
) -> Result<()> {
    let engine = Engine::new(source, target, Tcp, timer, options);
    let report = engine.run().await?;
    let secs = started.elapsed().as_secs_f64();
    let totals = report.totals();
    println!(
        "RESULT copied={} bytes={} failed={} skipped={} known={} secs={secs:.3} vmhwm_kib={}",
        totals.copied_this_run,
        totals.copied_bytes,
        totals.failed,
        totals.skipped,
        totals.known,
        own_vm_hwm()
    );
    let t = engine.migrator();
    let ms = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e6;
    println!(
        "TIMING total={:.0}ms store_batch={:.0}ms save_state={:.0}ms prepare_folder={:.0}ms \
         target_listing={:.0}ms load_state={:.0}ms fingerprints={:.0}ms batches={}",
        secs * 1e3,
        ms(&t.store),
        ms(&t.save),
        ms(&t.prepare),
        ms(&t.listing),
        ms(&t.load),
        ms(&t.fingerprints),
        t.batches.load(Ordering::Relaxed)
    );
    for folder in &report.folders {
        for error in &folder.errors {
            eprintln!("{}: {error}", folder.source);
        }
    }
    Ok(())
}

fn own_vm_hwm() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A target that adds up the time spent in each of its calls (nanoseconds).
struct Timed<M> {
    inner: M,
    store: AtomicU64,
    save: AtomicU64,
    prepare: AtomicU64,
    listing: AtomicU64,
    load: AtomicU64,
    fingerprints: AtomicU64,
    batches: AtomicU64,
}

impl<M> Timed<M> {
    fn new(inner: M) -> Timed<M> {
        Timed {
            inner,
            store: AtomicU64::new(0),
            save: AtomicU64::new(0),
            prepare: AtomicU64::new(0),
            listing: AtomicU64::new(0),
            load: AtomicU64::new(0),
            fingerprints: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        }
    }
}

fn add(counter: &AtomicU64, since: Instant) {
    counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

impl<M: Migrator> Migrator for Timed<M> {
    async fn prepare_folder(&self, folder: &TargetFolder) -> Result<()> {
        let t = Instant::now();
        let r = self.inner.prepare_folder(folder).await;
        add(&self.prepare, t);
        r
    }
    async fn store(&self, folder: &TargetFolder, message: Message) -> Result<()> {
        let t = Instant::now();
        let r = self.inner.store(folder, message).await;
        add(&self.store, t);
        r
    }
    async fn store_batch(&self, folder: &TargetFolder, messages: Vec<Message>) -> Vec<Result<()>> {
        let t = Instant::now();
        let r = self.inner.store_batch(folder, messages).await;
        add(&self.store, t);
        self.batches.fetch_add(1, Ordering::Relaxed);
        r
    }
    async fn target_listing(&self) -> Result<TargetListing> {
        let t = Instant::now();
        let r = self.inner.target_listing().await;
        add(&self.listing, t);
        r
    }
    async fn load_state(&self) -> Result<Option<SyncState>> {
        let t = Instant::now();
        let r = self.inner.load_state().await;
        add(&self.load, t);
        r
    }
    async fn save_state(&self, state: &SyncState) -> Result<()> {
        let t = Instant::now();
        let r = self.inner.save_state(state).await;
        add(&self.save, t);
        r
    }
    async fn fingerprints(&self, folder: &TargetFolder) -> Result<Option<FingerprintCounts>> {
        let t = Instant::now();
        let r = self.inner.fingerprints(folder).await;
        add(&self.fingerprints, t);
        r
    }
    fn event(&self, event: &Event) {
        self.inner.event(event);
    }
}

/// tokio's clock (the crate's `TokioTimer` needs the `tokio` feature; this bench does not).
#[derive(Debug)]
struct Clock;

impl Timer for Clock {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// TCP on tokio, seen through futures-io, as the crate's `TcpConnector` does it.
#[derive(Debug, Clone, Copy)]
struct Tcp;

impl Connector for Tcp {
    type Stream = TcpStream;
    async fn connect(&self, server: &ServerConfig) -> Result<TcpStream> {
        let tcp = tokio::net::TcpStream::connect((server.host.as_str(), server.port))
            .await
            .map_err(|e| Error::new(ErrorKind::Transient, format!("cannot connect to {server}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        Ok(TcpStream(tcp))
    }
}

/// A tokio `TcpStream` implementing futures' `AsyncRead`/`AsyncWrite`.
struct TcpStream(tokio::net::TcpStream);

impl futures::io::AsyncRead for TcpStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.0).poll_read(cx, &mut read))?;
        Poll::Ready(Ok(read.filled().len()))
    }
}

impl futures::io::AsyncWrite for TcpStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
