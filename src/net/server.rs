use std::fmt;
use std::time::Duration;

use crate::net::TlsConfig;

/// How the connection to a server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Security {
    /// TLS from the first byte (IMAP 993, POP3 995).
    Tls,
    /// Plaintext connect, then STARTTLS (IMAP) or STLS (POP3), which the server must offer:
    /// if it does not, the connection fails rather than continuing in the clear.
    StartTls,
    /// No encryption at all. Only for loopback tests or hosts the caller explicitly trusts:
    /// passwords cross the network in the clear.
    Plaintext,
}

/// Where a mail server is and how to reach it.
///
/// ```
/// use mailmigrate::net::{Security, ServerConfig};
/// let server = ServerConfig::new("imap.example.com", 993, Security::Tls);
/// assert_eq!(server.to_string(), "imap.example.com:993");
/// ```
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Host name or IP address (also the name checked against the TLS certificate).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Transport security.
    pub security: Security,
    /// Certificate roots and TLS options.
    pub tls: TlsConfig,
    /// How long any single network wait may take before the operation fails as transient.
    pub timeout: Duration,
}

impl ServerConfig {
    /// A server with the default TLS roots (webpki-roots) and a 60 s timeout.
    pub fn new(host: impl Into<String>, port: u16, security: Security) -> Self {
        ServerConfig {
            host: host.into(),
            port,
            security,
            tls: TlsConfig::default(),
            timeout: Duration::from_secs(60),
        }
    }

    /// Replaces the TLS configuration (e.g. a private CA).
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Replaces the per-wait timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Display for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}
