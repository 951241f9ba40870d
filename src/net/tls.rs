use std::fmt;
use std::sync::Arc;

use futures::io::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, ErrorKind, Result};

/// Which certificates a TLS connection trusts.
///
/// The default trusts the Mozilla roots shipped in `webpki-roots`. Add a private CA with
/// [`TlsConfig::with_ca_pem`]. Certificate checks are never off unless the caller names
/// [`TlsConfig::dangerous_accept_any_certificate`].
#[derive(Clone, Default)]
pub struct TlsConfig {
    extra_roots: Vec<CertificateDer<'static>>,
    without_webpki_roots: bool,
    accept_any_certificate: bool,
}

impl TlsConfig {
    /// Also trusts every certificate in `pem` (one or more `BEGIN CERTIFICATE` blocks).
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Self> {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("the CA file is not valid PEM ({e}); pass a PEM certificate"),
                )
            })?;
            self.extra_roots.push(cert);
            found += 1;
        }
        if found == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the CA file holds no 'BEGIN CERTIFICATE' block; pass a PEM certificate",
            ));
        }
        Ok(self)
    }

    /// Trusts only the extra roots, not the public webpki roots (for private deployments).
    pub fn only_extra_roots(mut self) -> Self {
        self.without_webpki_roots = true;
        self
    }

    /// Accepts any server certificate, valid or not, for any name.
    ///
    /// **Dangerous**: anyone on the path can read the password. Only for test servers.
    pub fn dangerous_accept_any_certificate(mut self) -> Self {
        self.accept_any_certificate = true;
        self
    }

    fn client_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Tls, format!("TLS setup failed: {e}")))?;
        let config = if self.accept_any_certificate {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            if !self.without_webpki_roots {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            for cert in &self.extra_roots {
                roots.add(cert.clone()).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("a CA certificate cannot be used as a root: {e}"),
                    )
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(config)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("extra_roots", &self.extra_roots.len())
            .field("webpki_roots", &!self.without_webpki_roots)
            .field("accept_any_certificate", &self.accept_any_certificate)
            .finish()
    }
}

/// Wraps plain streams in TLS, checking the certificate against a [`TlsConfig`].
#[derive(Clone)]
pub struct TlsConnector {
    inner: futures_rustls::TlsConnector,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConnector")
    }
}

impl TlsConnector {
    /// A connector for `config`.
    pub fn new(config: &TlsConfig) -> Result<Self> {
        Ok(TlsConnector {
            inner: futures_rustls::TlsConnector::from(Arc::new(config.client_config()?)),
        })
    }

    /// Runs the TLS handshake over `stream`, checking the certificate against `host`
    /// (a DNS name or an IP address).
    pub async fn connect<S>(&self, host: &str, stream: S) -> Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{host:?} is not a valid host name for TLS"),
            )
        })?;
        self.inner.connect(name, stream).await.map_err(|e| {
            let kind = if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                ErrorKind::Tls
            } else {
                ErrorKind::Transient
            };
            Error::new(
                kind,
                format!(
                    "TLS handshake with {host} failed: {e}; if the server uses a private CA, pass it as a CA file"
                ),
            )
            .with_source(e)
        })
    }
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
