//! Per-run TLS material: a test CA and a server leaf it signs.
//!
//! rustls (webpki) refuses a self-signed CA certificate used directly as the server's
//! certificate, so the server gets a separate leaf for `localhost` and `127.0.0.1`.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// PEM texts for one Dovecot instance.
pub(super) struct TestCerts {
    /// The CA certificate clients trust.
    pub ca_pem: String,
    /// The server leaf followed by the CA (what Dovecot sends).
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8).
    pub key_pem: String,
}

/// Generates a fresh CA and a leaf for `localhost` and `127.0.0.1`.
pub(super) fn generate(instance: &str) -> TestCerts {
    let fail = |what: &str, e: rcgen::Error| -> ! { panic!("generating the test {what} failed: {e}") };

    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail("CA key", e));
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail("CA", e));
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, format!("mailmigrate test CA {instance}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap_or_else(|e| fail("CA", e));

    let leaf_key = KeyPair::generate().unwrap_or_else(|e| fail("server key", e));
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap_or_else(|e| fail("server certificate", e));
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .unwrap_or_else(|e| fail("server certificate", e));

    TestCerts {
        ca_pem: ca_cert.pem(),
        chain_pem: format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
        key_pem: leaf_key.serialize_pem(),
    }
}
