//! A fault-injecting TCP proxy for tests: sits between the client and a real server on
//! loopback and, per connection, drops the link after N bytes from the server or from the
//! client, or just before the server says something, stalls, or passes everything through. Used for resume and no-loss checks against the real Dovecot.
#![allow(dead_code)] // Shared by several test binaries; each uses part of it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// What to do to one proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Close both directions once this many bytes have gone from the server to the client.
    DropAfterServerBytes(u64),
    /// Stop forwarding server bytes (but keep the socket open) after this many bytes.
    StallAfterServerBytes(u64),
    /// Close both directions once this many bytes have gone from the client to the server:
    /// the server gets a command cut short.
    DropAfterClientBytes(u64),
    /// Close both directions instead of forwarding this text from the server: the server
    /// did the work, the client never hears of it.
    DropAtServerText(&'static str),
}

/// A running proxy. Faults are taken from the plan in order, one per accepted connection;
/// once the plan is used up, connections pass through untouched.
pub struct FaultProxy {
    addr: SocketAddr,
    plan: Arc<Mutex<Vec<Fault>>>,
    /// While set, connections are accepted and closed at once: the server is "down".
    down: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    server_bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream`.
    pub async fn start(upstream: SocketAddr, plan: Vec<Fault>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let plan = Arc::new(Mutex::new(plan.into_iter().rev().collect::<Vec<_>>()));
        let connections = Arc::new(AtomicUsize::new(0));
        let server_bytes = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let task = {
            let (plan, connections, server_bytes) = (plan.clone(), connections.clone(), server_bytes.clone());
            let down = down.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let fault = plan.lock().await.pop().unwrap_or(Fault::None);
                    let server_bytes = server_bytes.clone();
                    tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(upstream).await {
                            proxy(client, server, fault, server_bytes).await;
                        }
                    });
                }
            })
        };
        FaultProxy {
            addr,
            plan,
            down,
            connections,
            server_bytes,
            task,
        }
    }

    /// Takes the "server" down (new connections are closed at once) or back up.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// How many bytes went from the server to clients over all connections.
    pub fn server_bytes(&self) -> u64 {
        self.server_bytes.load(Ordering::SeqCst)
    }

    /// Appends faults for the next connections.
    pub async fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        let mut plan = self.plan.lock().await;
        let mut queued: Vec<Fault> = plan.drain(..).rev().collect();
        queued.extend(faults);
        *plan = queued.into_iter().rev().collect();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy(client: TcpStream, server: TcpStream, fault: Fault, total: Arc<AtomicU64>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let limit = match fault {
            Fault::DropAfterClientBytes(n) => n,
            _ => u64::MAX,
        };
        let mut sent = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let allowed = (limit - sent).min(n as u64) as usize;
            if server_write.write_all(&buf[..allowed]).await.is_err() {
                break;
            }
            sent += allowed as u64;
            if sent >= limit {
                break;
            }
        }
    };
    let downstream = async {
        let limit = match fault {
            Fault::DropAfterServerBytes(n) | Fault::StallAfterServerBytes(n) => n,
            _ => u64::MAX,
        };
        let mut sent = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut allowed = (limit - sent).min(n as u64) as usize;
            let mut cut = false;
            if let Fault::DropAtServerText(text) = fault
                && let Some(at) = buf[..n].windows(text.len()).position(|w| w == text.as_bytes())
            {
                allowed = at;
                cut = true;
            }
            if client_write.write_all(&buf[..allowed]).await.is_err() {
                break;
            }
            sent += allowed as u64;
            total.fetch_add(allowed as u64, Ordering::SeqCst);
            if cut || sent >= limit {
                if let Fault::StallAfterServerBytes(_) = fault {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                break;
            }
        }
    };
    // Whichever side ends first ends the connection (dropping both halves closes the sockets).
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
