//! The engine against byte-exact scripted sources: provider behaviour that a real Dovecot
//! does not show, with a manual clock for the waits.

mod scripted;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailmigrate::imap::SessionOptions;
use mailmigrate::net::{ManualClock, Security, ServerConfig};
use mailmigrate::store::Maildir;
use mailmigrate::sync::{Connector, Engine, EngineOptions, Source};
use mailmigrate::{Credentials, Error, ErrorKind};
use scripted::{Peer, Step, expect, send};
use tokio::io::DuplexStream;
use tokio_util::compat::Compat;

/// Hands out one scripted connection per script, in order; keeps the peers to check them.
#[derive(Default)]
struct Scripts {
    scripts: Mutex<VecDeque<Vec<Step>>>,
    peers: Mutex<Vec<Peer>>,
}

impl Scripts {
    fn new(scripts: Vec<Vec<Step>>) -> Arc<Scripts> {
        Arc::new(Scripts {
            scripts: Mutex::new(scripts.into()),
            peers: Mutex::new(Vec::new()),
        })
    }

    async fn finish(&self) {
        let peers: Vec<Peer> = std::mem::take(&mut *self.peers.lock().unwrap());
        for peer in peers {
            peer.finish().await;
        }
        assert!(
            self.scripts.lock().unwrap().is_empty(),
            "a scripted connection was never opened"
        );
    }
}

#[derive(Clone)]
struct ScriptedConnector(Arc<Scripts>);

impl std::fmt::Debug for ScriptedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScriptedConnector")
    }
}

impl Connector for ScriptedConnector {
    type Stream = Compat<DuplexStream>;
    async fn connect(&self, _: &ServerConfig) -> mailmigrate::Result<Self::Stream> {
        let script = self.0.scripts.lock().unwrap().pop_front();
        let Some(script) = script else {
            return Err(Error::new(ErrorKind::Transient, "no more scripted connections"));
        };
        let (stream, peer) = scripted::start(script);
        self.0.peers.lock().unwrap().push(peer);
        Ok(stream)
    }
}

const MESSAGE: &str = "Subject: hi\r\nMessage-ID: <1@contoso.test>\r\n\r\nHello.\r\n";
const FETCH_MESSAGE: &str = "A0000 UID FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])\r\n";

const GREETING: &str = "* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] Microsoft Exchange IMAP4 ready\r\n";

#[tokio::test]
async fn office_365_throttling_waits_as_long_as_the_server_asks_then_finishes_the_folder() {
    let status = "* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7)\r\n";
    let examined = "* FLAGS (\\Seen)\r\n* 1 EXISTS\r\n* OK [UIDVALIDITY 7] UIDs valid\r\n\
                    * OK [UIDNEXT 2] Predicted next UID\r\n";
    let first = vec![
        send(GREETING),
        expect("A0001 LIST \"\" *\r\n"),
        send("* LIST (\\HasNoChildren) \"/\" INBOX\r\nA0001 OK LIST completed.\r\n"),
        expect("A0002 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)\r\n"),
        send(format!("{status}A0002 OK STATUS completed.\r\n")),
        expect("A0003 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)\r\n"),
        send(format!("{status}A0003 OK STATUS completed.\r\n")),
        expect("A0004 EXAMINE INBOX\r\n"),
        send(format!("{examined}A0004 OK [READ-ONLY] EXAMINE completed.\r\n")),
        expect("A0005 UID FETCH 1:4294967295 (UID RFC822.SIZE)\r\n"),
        send(format!(
            "* 1 FETCH (UID 1 RFC822.SIZE {})\r\nA0005 OK FETCH completed.\r\n",
            MESSAGE.len()
        )),
        expect(FETCH_MESSAGE.replace("A0000", "A0006")),
        // Office 365's words for "too fast": no [THROTTLED] code, then it hangs up.
        send("A0006 NO Request is throttled. Suggested Backoff Time: 299961 milliseconds\r\n"),
        Step::Close,
    ];
    // The retry: a new connection that resumes the folder.
    let second = vec![
        send(GREETING),
        expect("A0001 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)\r\n"),
        send(format!("{status}A0001 OK STATUS completed.\r\n")),
        expect("A0002 EXAMINE INBOX\r\n"),
        send(format!("{examined}A0002 OK [READ-ONLY] EXAMINE completed.\r\n")),
        expect("A0003 UID FETCH 1:4294967295 (UID RFC822.SIZE)\r\n"),
        send(format!(
            "* 1 FETCH (UID 1 RFC822.SIZE {})\r\nA0003 OK FETCH completed.\r\n",
            MESSAGE.len()
        )),
        expect(FETCH_MESSAGE.replace("A0000", "A0004")),
        send(format!(
            "* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"01-Jan-2024 10:00:00 +0800\" RFC822.SIZE {n} BODY[] {{{n}}}\r\n{MESSAGE})\r\n\
             A0004 OK FETCH completed.\r\n",
            n = MESSAGE.len()
        )),
        expect("A0005 LOGOUT\r\n"),
        send("* BYE Microsoft Exchange Server IMAP4 server signing off.\r\nA0005 OK LOGOUT completed.\r\n"),
    ];
    let scripts = Scripts::new(vec![first, second]);
    let clock = Arc::new(ManualClock::new());
    let dir = tempfile::tempdir().unwrap();
    let source = Source::Imap {
        server: ServerConfig::new("outlook.office365.test", 993, Security::Plaintext)
            .with_timeout(Duration::from_secs(60)),
        credentials: Credentials::password("alice@contoso.test", "pw"),
        session: SessionOptions {
            send_id: false,
            ..SessionOptions::default()
        },
    };
    let engine = Engine::new(
        source,
        Maildir::open(dir.path().join("Maildir")).expect("maildir"),
        ScriptedConnector(scripts.clone()),
        clock.clone(),
        EngineOptions::default(),
    );
    let run = tokio::spawn(async move {
        let report = engine.run().await;
        (report, engine)
    });
    // The engine waits on the manual clock, as long as the server asked (not the 2 s its
    // own first retry would wait).
    let mut polls = 0;
    while clock.pending_sleeps() == 0 {
        assert!(!run.is_finished(), "the run ended without waiting");
        assert!(polls < 3000, "the engine never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
        polls += 1;
    }
    assert_eq!(clock.next_wake(), Some(Duration::from_millis(299_961)));
    clock.advance(Duration::from_millis(299_960));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(clock.pending_sleeps(), 1, "1 ms early is too early");
    clock.advance(Duration::from_millis(1));
    let (report, engine) = run.await.expect("no panic");
    let report = report.expect("the run ends well");
    let inbox = &report.folders[0];
    assert_eq!(inbox.counts.copied_this_run, 1, "{report:#?}");
    assert!(inbox.errors.is_empty(), "{report:#?}");
    let stored: Vec<_> = std::fs::read_dir(engine.migrator().root().join("cur"))
        .expect("INBOX")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
        .collect();
    assert_eq!(stored, vec![MESSAGE.as_bytes().to_vec()]);
    scripts.finish().await;
}
