//! The POP3 client against a real Dovecot pop3 service (started privately by
//! `tests/support`): byte-exact retrieval of a seeded maildrop, STLS and implicit TLS with
//! the test certificate, and the error kinds of wrong credentials and untrusted servers.

#![cfg(feature = "tokio")]

mod support;

use std::sync::Arc;

use mailmigrate::net::{Security, ServerConfig, TlsConfig, TokioTimer};
use mailmigrate::pop3::{self, AuthMethod, Session};
use mailmigrate::{Credentials, ErrorKind};
use support::{Proto, SeedMessage, dovecot, sample_message, sha256_hex};

const BIG: usize = 10 * 1024 * 1024;

fn server(security: Security) -> ServerConfig {
    dovecot().server(Proto::Pop3, security)
}

async fn connect(security: Security) -> Session<mailmigrate::net::TcpStream> {
    Session::connect(&server(security), Arc::new(TokioTimer))
        .await
        .expect("connects")
}

/// 500 messages of varied sizes with dot-leading lines (sample_message has `.`, `..` and a
/// lone `.` line), the last one 10 MB.
fn corpus() -> Vec<Vec<u8>> {
    (0..500)
        .map(|i| {
            if i == 499 {
                sample_message(i, BIG)
            } else {
                sample_message(i, 200 + (i * 397) % 6000)
            }
        })
        .collect()
}

#[tokio::test]
async fn a_seeded_maildrop_comes_back_byte_exact() {
    let d = dovecot();
    let user = d.unique_user("pop3-corpus");
    let messages = corpus();
    // Dot-stuffing is exercised: every message has a line starting with a dot, most with two.
    let starts_with = |m: &Vec<u8>, p: &[u8]| m.windows(p.len()).any(|w| w == p);
    assert!(messages.iter().all(|m| starts_with(m, b"\r\n.")));
    assert!(messages.iter().filter(|m| starts_with(m, b"\r\n..")).count() > 400);
    assert_eq!(
        d.seed(
            &user,
            "INBOX",
            messages.iter().map(|m| SeedMessage::new(m.clone()))
        ),
        500
    );

    let mut pop = connect(Security::StartTls).await;
    assert!(pop.is_tls());
    pop.login(&user.credentials()).await.expect("login");

    let stat = pop.stat().await.unwrap();
    assert_eq!(stat.count, 500);
    assert_eq!(stat.size, messages.iter().map(|m| m.len() as u64).sum::<u64>());

    let list = pop.list().await.unwrap();
    assert_eq!(list.len(), 500);
    for (entry, (n, message)) in list.iter().zip(messages.iter().enumerate()) {
        assert_eq!((entry.msg as usize, entry.size), (n + 1, message.len() as u64));
    }
    assert_eq!(pop.list_one(499).await.unwrap().size, messages[498].len() as u64);

    let uidl = pop.uidl().await.unwrap();
    assert_eq!(uidl.len(), 500);
    let distinct: std::collections::HashSet<&str> = uidl.iter().map(|e| e.uid.as_str()).collect();
    assert_eq!(distinct.len(), 500, "UIDL ids are unique");
    assert_eq!(pop.uidl_one(7).await.unwrap(), uidl[6]);
    assert_eq!(
        pop.unique_ids().await.unwrap(),
        uidl,
        "with UIDL, unique_ids is UIDL"
    );

    for (n, message) in messages.iter().enumerate() {
        let got = pop.retr(n as u32 + 1).await.unwrap();
        assert_eq!(got.len(), message.len(), "message {}", n + 1);
        assert_eq!(sha256_hex(&got), sha256_hex(message), "message {}", n + 1);
    }

    // The 10 MB message once more, as a stream of chunks.
    let mut reader = pop.retr_stream(500).await.unwrap();
    let mut streamed = Vec::with_capacity(BIG + 1024);
    let mut chunks = 0;
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        streamed.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert!(chunks > 1, "a 10 MB message arrives in more than one chunk");
    assert_eq!(sha256_hex(&streamed), sha256_hex(&messages[499]));

    // TOP gives the header section exactly.
    let head = pop.top(3, 0).await.unwrap();
    let header_end = messages[2].windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&head[..], &messages[2][..header_end]);

    pop.noop().await.unwrap();
    pop.rset().await.unwrap();
    pop.quit().await.unwrap();

    // Reading deleted nothing: a new session still sees every message.
    let mut again = connect(Security::Tls).await;
    again.login(&user.credentials()).await.unwrap();
    assert_eq!(again.stat().await.unwrap(), stat);
    again.quit().await.unwrap();
}

#[tokio::test]
async fn implicit_tls_and_stls_both_log_in_with_the_test_certificate() {
    let d = dovecot();
    let user = d.unique_user("pop3-tls");
    d.seed(
        &user,
        "INBOX",
        (0..3).map(|i| SeedMessage::new(sample_message(i, 500))),
    );
    for security in [Security::Tls, Security::StartTls] {
        let mut pop = connect(security).await;
        assert!(pop.is_tls(), "{security:?}");
        pop.login(&user.credentials()).await.expect("login");
        let summary = pop.check_summary().await.unwrap();
        assert_eq!((summary.messages, summary.tls), (3, true));
        assert!(
            summary.capabilities.has("UIDL") && summary.capabilities.has("TOP"),
            "{summary}"
        );
        pop.quit().await.unwrap();
    }

    // The one-call check the example uses.
    let summary = pop3::check(&server(Security::Tls), &user.credentials(), Arc::new(TokioTimer))
        .await
        .unwrap();
    assert_eq!(summary.messages, 3);
    assert_eq!(
        summary.total_size,
        (0..3).map(|i| sample_message(i, 500).len() as u64).sum::<u64>()
    );
    let shown = summary.to_string();
    assert!(
        shown.contains("messages: 3") && shown.contains("tls: yes"),
        "{shown}"
    );
}

#[tokio::test]
async fn every_login_method_dovecot_offers_works() {
    let d = dovecot();
    let user = d.unique_user("pop3-methods");
    for method in [AuthMethod::UserPass, AuthMethod::Plain] {
        let mut pop = connect(Security::Tls).await;
        pop.login_with(&user.credentials(), method)
            .await
            .unwrap_or_else(|e| panic!("{method:?}: {e}"));
        assert_eq!(pop.stat().await.unwrap().count, 0);
        pop.quit().await.unwrap();
    }
    let token = d.oauth2_token(&user);
    let mut pop = connect(Security::Tls).await;
    pop.login(&Credentials::oauth2(user.name.clone(), token))
        .await
        .expect("XOAUTH2");
    assert!(pop.is_authenticated());
    pop.quit().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_that_names_account_and_host_only() {
    let d = dovecot();
    let user = d.unique_user("pop3-wrongpw");
    for method in [AuthMethod::Auto, AuthMethod::UserPass] {
        let mut pop = connect(Security::Tls).await;
        let wrong = Credentials::password(user.name.clone(), "not-the-Password-42");
        let err = pop.login_with(&wrong, method).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{method:?}: {err}");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains(&user.name) && shown.contains(d.host()), "{shown}");
        assert!(
            !shown.contains("not-the-Password-42") && !shown.contains(&user.password),
            "{shown}"
        );
    }
    let mut pop = connect(Security::Tls).await;
    let err = pop
        .login(&Credentials::oauth2(user.name.clone(), "forged.jwt.token"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    // Only the public webpki roots: the test CA is unknown.
    let untrusted = server(Security::Tls).with_tls(TlsConfig::default());
    let err = Session::connect(&untrusted, Arc::new(TokioTimer))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    let untrusted = server(Security::StartTls).with_tls(TlsConfig::default());
    let err = Session::connect(&untrusted, Arc::new(TokioTimer))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
}
