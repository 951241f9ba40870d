//! Runtime glue: where to connect, TLS, and time.
//!
//! The protocol sessions above this layer take any already-connected
//! `futures::io::AsyncRead + AsyncWrite` stream and a [`Timer`]; this module supplies both
//! for real use ([`connect`] and [`TokioTimer`] behind the `tokio` feature) and for tests
//! ([`ManualClock`]).

mod server;
mod stream;
mod timer;
mod tls;
mod url;

#[cfg(feature = "tokio")]
mod tokio_rt;

pub use server::{Security, ServerConfig};
pub use stream::{AsyncStream, MaybeTls};
pub use timer::{ManualClock, Timer, with_timeout};
pub use tls::{TlsConfig, TlsConnector};
pub use url::{AccountUrl, Protocol};

#[cfg(feature = "tokio")]
pub use tokio_rt::{TcpStream, TokioTimer, connect, connect_tcp};
