//! A scripted IMAP (or POP3) peer: plays a byte-exact transcript against the client over an
//! in-memory duplex stream. Each step either expects exact bytes from the client or sends
//! bytes (optionally cut into pieces, to exercise the client's reassembly).
//!
//! ```ignore
//! let (stream, peer) = scripted::start(vec![send("* OK hi\r\n"), expect("A0001 NOOP\r\n"), send("A0001 OK\r\n")]);
//! // ... run the client over `stream`, drop it ...
//! peer.finish().await; // panics with a readable transcript if the client strayed
//! ```
#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// How long the peer waits for the client's bytes before failing the script.
const PEER_WAIT: Duration = Duration::from_secs(20);

/// One step of a script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these bytes in one write.
    Send(Vec<u8>),
    /// Send these bytes in pieces, cut at these offsets, flushing (and yielding) between.
    SendSplit(Vec<u8>, Vec<usize>),
    /// Expect exactly these bytes from the client.
    Expect(Vec<u8>),
    /// Expect `n` bytes from the client whatever they are (e.g. a big literal), checking
    /// only that they end with `suffix`.
    ExpectLen(usize, Vec<u8>),
    /// Close the server's side of the connection.
    Close,
}

/// Bytes the server sends.
pub fn send(bytes: impl AsRef<[u8]>) -> Step {
    Step::Send(bytes.as_ref().to_vec())
}

/// Bytes the server sends, cut at `cuts`.
pub fn send_split(bytes: impl AsRef<[u8]>, cuts: &[usize]) -> Step {
    Step::SendSplit(bytes.as_ref().to_vec(), cuts.to_vec())
}

/// Bytes the client must send next.
pub fn expect(bytes: impl AsRef<[u8]>) -> Step {
    Step::Expect(bytes.as_ref().to_vec())
}

/// The client stream and the running peer.
pub fn start(script: Vec<Step>) -> (Compat<DuplexStream>, Peer) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(async move {
        let result = play(server, script).await;
        if let Err(message) = &result {
            // Printed at once: the client under test usually fails first, on the closed stream.
            eprintln!("scripted peer: {message}");
        }
        result
    });
    (client.compat(), Peer { task })
}

/// A running script.
pub struct Peer {
    task: JoinHandle<Result<(), String>>,
}

impl Peer {
    /// Waits for the script to end (the client must drop or close its stream) and panics
    /// with the difference if the client sent anything other than the script says.
    pub async fn finish(self) {
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(message)) => panic!("scripted peer: {message}"),
            Err(join) => panic!("scripted peer crashed: {join}"),
        }
    }
}

/// Shows bytes readably: printable ASCII as is, CR/LF as `\r\n`, the rest as `\xNN`.
pub fn show(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(400)
        .map(|&b| match b {
            b'\r' => "\\r".to_owned(),
            b'\n' => "\\n".to_owned(),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect();
    if bytes.len() > 400 {
        format!("{shown}... ({} bytes)", bytes.len())
    } else {
        shown
    }
}

async fn read_exact(server: &mut DuplexStream, n: usize, step: usize) -> Result<Vec<u8>, String> {
    let mut got = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        let read = tokio::time::timeout(PEER_WAIT, server.read(&mut got[filled..]))
            .await
            .map_err(|_| {
                format!(
                    "step {step}: timed out waiting for the client; got so far {:?}",
                    show(&got[..filled])
                )
            })?
            .map_err(|e| format!("step {step}: read failed: {e}"))?;
        if read == 0 {
            return Err(format!(
                "step {step}: the client closed the connection; expected {n} bytes, got {:?}",
                show(&got[..filled])
            ));
        }
        filled += read;
    }
    Ok(got)
}

async fn play(mut server: DuplexStream, script: Vec<Step>) -> Result<(), String> {
    for (i, step) in script.into_iter().enumerate() {
        match step {
            Step::Send(bytes) => {
                // The client may already have gone (that can be what the test wants).
                if server.write_all(&bytes).await.is_err() {
                    return Ok(());
                }
                let _ = server.flush().await;
            }
            Step::SendSplit(bytes, cuts) => {
                let mut start = 0;
                for cut in cuts.into_iter().chain(std::iter::once(bytes.len())) {
                    let cut = cut.clamp(start, bytes.len());
                    if server.write_all(&bytes[start..cut]).await.is_err() {
                        return Ok(());
                    }
                    let _ = server.flush().await;
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    start = cut;
                }
            }
            Step::Expect(want) => {
                let got = read_exact(&mut server, want.len(), i).await?;
                if got != want {
                    return Err(format!(
                        "step {i}: expected {:?}\n                  got {:?}",
                        show(&want),
                        show(&got)
                    ));
                }
            }
            Step::ExpectLen(n, suffix) => {
                let got = read_exact(&mut server, n, i).await?;
                if !got.ends_with(&suffix) {
                    return Err(format!(
                        "step {i}: {n} bytes not ending in {:?}: {:?}",
                        show(&suffix),
                        show(&got)
                    ));
                }
            }
            Step::Close => {
                let _ = server.shutdown().await;
                drop(server);
                return Ok(());
            }
        }
    }
    // Keep the connection open until the client is done, collecting what it still sends.
    let mut trailing = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PEER_WAIT, server.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => trailing.extend_from_slice(&buf[..n]),
            Err(_) => return Err("the client never closed the connection after the script ended".into()),
        }
    }
    if !trailing.is_empty() {
        return Err(format!(
            "the client sent bytes the script did not expect: {:?}",
            show(&trailing)
        ));
    }
    Ok(())
}
