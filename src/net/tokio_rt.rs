//! The real connector and timer, on tokio.

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::error::{Error, Result};
use crate::net::{MaybeTls, Security, ServerConfig, Timer, TlsConnector, with_timeout};

/// A tokio TCP stream seen through futures-io.
pub type TcpStream = Compat<tokio::net::TcpStream>;

/// tokio's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTimer;

impl Timer for TokioTimer {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Opens a TCP connection to `server` within its timeout (no TLS yet).
pub async fn connect_tcp(server: &ServerConfig) -> Result<TcpStream> {
    let addr = (server.host.as_str(), server.port);
    let what = format!("a TCP connection to {server}");
    let tcp = with_timeout(
        &TokioTimer,
        server.timeout,
        &what,
        tokio::net::TcpStream::connect(addr),
    )
    .await?
    .map_err(|e| Error::network(&server.to_string(), e))?;
    // Commands are small and latency-bound; don't let Nagle hold them back.
    let _ = tcp.set_nodelay(true);
    Ok(tcp.compat())
}

/// Opens a connection to `server`: TCP, then the TLS handshake for [`Security::Tls`].
///
/// For [`Security::StartTls`] the stream stays plain: the protocol session upgrades it after
/// the server offers STARTTLS/STLS.
pub async fn connect(server: &ServerConfig) -> Result<MaybeTls<TcpStream>> {
    let tcp = connect_tcp(server).await?;
    match server.security {
        Security::Tls => {
            let connector = TlsConnector::new(&server.tls)?;
            let what = format!("the TLS handshake with {server}");
            let tls = with_timeout(
                &TokioTimer,
                server.timeout,
                &what,
                connector.connect(&server.host, tcp),
            )
            .await??;
            Ok(MaybeTls::Tls(Box::new(tls)))
        }
        Security::StartTls | Security::Plaintext => Ok(MaybeTls::Plain(tcp)),
    }
}
