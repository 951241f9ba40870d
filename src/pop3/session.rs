//! The async POP3 session over any futures-io byte stream.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::client::TlsStream;
use sha2::{Digest, Sha256};

use super::auth::{AuthMethod, apop_digest, decode_challenge, plain_response, xoauth2_response};
use super::codec::{
    BodyDecoder, BodyEvent, Capabilities, Command, Limits, ListEntry, ListingDecoder, RespCode, Stat, Status,
    StatusLine, UidlEntry, apop_timestamp, decode_status, parse_list, parse_stat, parse_uidl,
};
use crate::error::{Error, ErrorKind, Result};
use crate::net::{AsyncStream, MaybeTls, Security, ServerConfig, Timer, TlsConnector, with_timeout};
use crate::secret::{Credentials, Secret};

/// Most bytes asked of the stream per read (each read zero-fills what it asks for).
const READ_CHUNK: usize = 64 * 1024;
/// Fewest bytes asked per read: reads start here and double while the stream fills them,
/// so a trickling server does not cost a 64 KiB zero-fill per byte.
const MIN_READ: usize = 4 * 1024;

/// A POP3 session: greeting read, TLS settled, ready to log in and read the maildrop.
///
/// It runs over any [`AsyncStream`] (a futures-io stream) and takes time from a [`Timer`]:
/// every network wait is bounded by [`ServerConfig::timeout`]. Nothing in it deletes mail:
/// there is no `DELE`, so `QUIT` commits nothing.
///
/// Errors name the server and, once [`Session::login`] was called, the account; never the
/// password. After a network error, a timeout or an unparsable response the session is
/// unusable (every call fails as transient): open a new one.
///
/// ```no_run
/// # async fn run() -> mailmigrate::Result<()> {
/// use std::sync::Arc;
/// use mailmigrate::Credentials;
/// use mailmigrate::net::{Security, ServerConfig, TokioTimer};
/// use mailmigrate::pop3::Session;
///
/// let server = ServerConfig::new("pop.example.com", 995, Security::Tls);
/// let mut pop = Session::connect(&server, Arc::new(TokioTimer)).await?;
/// pop.login(&Credentials::password("alice@example.com", "app-password")).await?;
/// for entry in pop.unique_ids().await? {
///     let message = pop.retr(entry.msg).await?;
///     println!("{} {} bytes", entry.uid, message.len());
/// }
/// pop.quit().await
/// # }
/// ```
pub struct Session<S> {
    stream: MaybeTls<S>,
    /// Bytes read and not yet decoded.
    buf: BytesMut,
    /// Bytes to ask for in the next read (between MIN_READ and READ_CHUNK).
    read_size: usize,
    /// The command being sent (wiped after each send: it may hold a password).
    out: BytesMut,
    limits: Limits,
    timer: Arc<dyn Timer>,
    timeout: Duration,
    /// `host:port`, for messages.
    server: String,
    account: Option<String>,
    greeting: StatusLine,
    capabilities: Option<Capabilities>,
    authenticated: bool,
    broken: bool,
    /// The `RETR` body a [`MessageReader`] is handing out; if the reader is dropped before
    /// the end, the rest is skipped before the next command.
    body: Option<BodyDecoder>,
}

impl<S> fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.server)
            .field("account", &self.account)
            .field("tls", &self.stream.is_tls())
            .field("authenticated", &self.authenticated)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// What a login check reports: what the server offers and how much mail waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSummary {
    /// The `CAPA` reply after login (empty if the server has no `CAPA`).
    pub capabilities: Capabilities,
    /// Messages in the maildrop.
    pub messages: u32,
    /// Their total size in octets, as the server counts it.
    pub total_size: u64,
    /// Whether the connection is TLS-protected.
    pub tls: bool,
}

impl fmt::Display for CheckSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let caps = if self.capabilities.is_empty() {
            "(none announced)".to_owned()
        } else {
            self.capabilities.to_string()
        };
        writeln!(f, "capabilities: {caps}")?;
        writeln!(f, "tls: {}", if self.tls { "yes" } else { "no" })?;
        writeln!(f, "messages: {}", self.messages)?;
        write!(f, "total size: {} bytes", self.total_size)
    }
}

#[cfg(feature = "tokio")]
impl Session<crate::net::TcpStream> {
    /// Connects to `server` over TCP (then TLS or STLS as its [`Security`] says) and reads the
    /// greeting, with the default [`Limits`].
    pub async fn connect(server: &ServerConfig, timer: Arc<dyn Timer>) -> Result<Self> {
        let tcp = crate::net::connect_tcp(server).await?;
        Self::from_stream(tcp, server, timer, Limits::default()).await
    }
}

impl<S: AsyncStream> Session<S> {
    /// Starts a session over an already connected plain `stream`, without any runtime.
    ///
    /// For [`Security::Tls`] it runs the TLS handshake first. It reads the greeting. For
    /// [`Security::StartTls`] it then requires `STLS` in the `CAPA` reply (failing with
    /// [`ErrorKind::Tls`] rather than going on in the clear), upgrades, refuses any byte the
    /// server sent between its `+OK` and the handshake, and forgets the pre-TLS capabilities.
    pub async fn from_stream(
        stream: S,
        server: &ServerConfig,
        timer: Arc<dyn Timer>,
        limits: Limits,
    ) -> Result<Self> {
        let stream = match server.security {
            Security::Tls => MaybeTls::Tls(Box::new(handshake(&*timer, server, stream).await?)),
            Security::StartTls | Security::Plaintext => MaybeTls::Plain(stream),
        };
        let mut session = Session {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            read_size: MIN_READ,
            out: BytesMut::new(),
            limits,
            timer,
            timeout: server.timeout,
            server: server.to_string(),
            account: None,
            greeting: StatusLine {
                status: Status::Ok,
                code: None,
                text: Bytes::new(),
            },
            capabilities: None,
            authenticated: false,
            broken: false,
            body: None,
        };
        let greeting = session.read_status().await?;
        match greeting.status {
            Status::Ok => session.greeting = greeting,
            Status::Err => {
                return Err(session.refusal("the connection", &greeting, ErrorKind::SourceRefused));
            }
            Status::Continue => return Err(session.violation("a continuation line as its greeting")),
        }
        if server.security == Security::StartTls {
            session = session.start_tls(server).await?;
        }
        Ok(session)
    }

    async fn start_tls(mut self, server: &ServerConfig) -> Result<Self> {
        if !self.capabilities().await?.has("STLS") {
            return Err(self.tls_error(
                "does not offer STLS (not in its CAPA reply), so the login would cross the network \
                 in the clear; use implicit TLS (port 995), or plaintext only on a network you trust",
            ));
        }
        self.expect_ok(Command::Stls, ErrorKind::Tls).await?;
        if !self.buf.is_empty() {
            // Whatever came before the handshake is unauthenticated plaintext that would
            // otherwise be read as if TLS had protected it (a STARTTLS injection).
            let message = format!(
                "sent {} bytes after accepting STLS and before the TLS handshake; they may have been \
                 injected by an attacker, so the connection is dropped",
                self.buf.len()
            );
            return Err(self.tls_error(&message));
        }
        let plain = match self.stream {
            MaybeTls::Plain(plain) => plain,
            MaybeTls::Tls(_) => {
                return Err(self.tls_error("was sent STLS on a connection that is already TLS"));
            }
        };
        self.stream = MaybeTls::Tls(Box::new(handshake(&*self.timer, server, plain).await?));
        // RFC 2595: capabilities learned before TLS must not be trusted after it.
        self.capabilities = None;
        Ok(self)
    }

    /// The server's greeting.
    pub fn greeting(&self) -> &StatusLine {
        &self.greeting
    }

    /// Whether the connection is TLS-protected (implicit TLS or after STLS).
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Whether a login succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The server's capabilities (`CAPA`, RFC 2449), asked once per state and cached; empty
    /// when the server does not support `CAPA`.
    pub async fn capabilities(&mut self) -> Result<&Capabilities> {
        if self.capabilities.is_none() {
            let caps = match self.command(Command::Capa).await? {
                Ok(_) => {
                    let lines = self.read_listing().await?;
                    Capabilities::from_lines(lines.iter().map(|l| &l[..]))
                }
                Err(_) => Capabilities::default(),
            };
            self.capabilities = Some(caps);
        }
        Ok(self.capabilities.get_or_insert_default())
    }

    /// Logs in, choosing the method with [`AuthMethod::Auto`].
    pub async fn login(&mut self, credentials: &Credentials) -> Result<()> {
        self.login_with(credentials, AuthMethod::Auto).await
    }

    /// Logs in with `method`.
    ///
    /// A rejection is [`ErrorKind::Auth`]; `[IN-USE]`, `[LOGIN-DELAY]` and `[SYS/TEMP]` are
    /// [`ErrorKind::Transient`] (with [`Error::retry_after`] when the server gave a delay);
    /// `[SYS/PERM]` is [`ErrorKind::SourceRefused`].
    pub async fn login_with(&mut self, credentials: &Credentials, method: AuthMethod) -> Result<()> {
        if self.authenticated {
            return Err(self.invalid("login was called on a session that is already logged in"));
        }
        self.account = Some(credentials.user().to_owned());
        let method = match method {
            AuthMethod::Auto => self.pick_method(credentials).await?,
            chosen => chosen,
        };
        match (method, credentials) {
            (AuthMethod::UserPass, Credentials::Password { user, password }) => {
                self.expect_ok(Command::User(user), ErrorKind::Auth).await?;
                self.expect_ok(Command::Pass(password), ErrorKind::Auth).await?;
            }
            (AuthMethod::Apop, Credentials::Password { user, password }) => {
                let Some(timestamp) = apop_timestamp(&self.greeting.text) else {
                    return Err(self.context(Error::new(
                        ErrorKind::SourceRefused,
                        "the server does not offer APOP (its greeting has no timestamp); log in with USER/PASS",
                    )));
                };
                let digest = apop_digest(timestamp, password);
                self.expect_ok(
                    Command::Apop {
                        user,
                        digest: &digest,
                    },
                    ErrorKind::Auth,
                )
                .await?;
            }
            (AuthMethod::Plain, Credentials::Password { user, password }) => {
                let response = plain_response(user, password).map_err(|e| self.context(e))?;
                self.sasl("PLAIN", &response).await?;
            }
            (AuthMethod::XOAuth2, Credentials::OAuth2 { user, token }) => {
                let response = xoauth2_response(user, token).map_err(|e| self.context(e))?;
                self.sasl("XOAUTH2", &response).await?;
            }
            (method, _) => {
                let message =
                    format!("{method:?} cannot log in with these credentials; pick a method that fits them");
                return Err(self.invalid(&message));
            }
        }
        self.authenticated = true;
        // RFC 2449: capabilities may differ after login.
        self.capabilities = None;
        Ok(())
    }

    async fn pick_method(&mut self, credentials: &Credentials) -> Result<AuthMethod> {
        if let Credentials::OAuth2 { .. } = credentials {
            return Ok(AuthMethod::XOAuth2);
        }
        let has_apop = apop_timestamp(&self.greeting.text).is_some();
        let caps = self.capabilities().await?;
        Ok(if caps.has_sasl("PLAIN") {
            AuthMethod::Plain
        } else if caps.is_empty() || caps.has("USER") || !has_apop {
            AuthMethod::UserPass
        } else {
            AuthMethod::Apop
        })
    }

    async fn sasl(&mut self, mechanism: &str, response: &Secret) -> Result<()> {
        let what = format!("AUTH {mechanism}");
        match self.exchange(Command::Auth { mechanism }).await? {
            line if line.status == Status::Err => {
                return Err(self.refusal(&what, &line, ErrorKind::SourceRefused));
            }
            line if line.status == Status::Ok => {
                return Err(self.violation(&format!("+OK to {what} before any credentials were sent")));
            }
            _ => {}
        }
        let mut line = self.exchange(Command::AuthResponse(response)).await?;
        if line.status == Status::Continue {
            // XOAUTH2 reports failure as a challenge (base64 JSON); RFC 7628 wants an empty
            // reply, after which the server sends -ERR.
            let challenge = decode_challenge(&line.text);
            line = self.exchange(Command::AuthResponse(&Secret::new(""))).await?;
            if line.status == Status::Err {
                let mut err = self.refusal(&what, &line, ErrorKind::Auth);
                if let Some(challenge) = challenge {
                    err = Error::new(
                        err.kind(),
                        format!("{} (server detail: {challenge})", err.message()),
                    );
                }
                return Err(err);
            }
        }
        match line.status {
            Status::Ok => Ok(()),
            Status::Err => Err(self.refusal(&what, &line, ErrorKind::Auth)),
            Status::Continue => {
                // Abandon the exchange so the session stays in step, then report it.
                self.exchange(Command::AuthCancel).await?;
                Err(self.violation(&format!("endless challenges to {what}")))
            }
        }
    }

    /// `STAT`: message count and total size.
    pub async fn stat(&mut self) -> Result<Stat> {
        let line = self.expect_ok(Command::Stat, ErrorKind::SourceRefused).await?;
        parse_stat(&line.text).map_err(|e| self.context(e.into()))
    }

    /// `LIST`: every message's number and size.
    pub async fn list(&mut self) -> Result<Vec<ListEntry>> {
        self.expect_ok(Command::List(None), ErrorKind::SourceRefused)
            .await?;
        let lines = self.read_listing().await?;
        lines
            .iter()
            .map(|l| parse_list(l).map_err(|e| self.context(e.into())))
            .collect()
    }

    /// `LIST n`: one message's size.
    pub async fn list_one(&mut self, msg: u32) -> Result<ListEntry> {
        let line = self
            .expect_ok(Command::List(Some(msg)), ErrorKind::SourceRefused)
            .await?;
        parse_list(&line.text).map_err(|e| self.context(e.into()))
    }

    /// `UIDL`: every message's unique id. Fails with [`ErrorKind::SourceRefused`] on a
    /// server without `UIDL`; [`Session::unique_ids`] falls back to fingerprints instead.
    pub async fn uidl(&mut self) -> Result<Vec<UidlEntry>> {
        self.expect_ok(Command::Uidl(None), ErrorKind::SourceRefused)
            .await?;
        self.read_uidl_listing().await
    }

    /// `UIDL n`: one message's unique id.
    pub async fn uidl_one(&mut self, msg: u32) -> Result<UidlEntry> {
        let line = self
            .expect_ok(Command::Uidl(Some(msg)), ErrorKind::SourceRefused)
            .await?;
        parse_uidl(&line.text).map_err(|e| self.context(e.into()))
    }

    async fn read_uidl_listing(&mut self) -> Result<Vec<UidlEntry>> {
        let lines = self.read_listing().await?;
        lines
            .iter()
            .map(|l| parse_uidl(l).map_err(|e| self.context(e.into())))
            .collect()
    }

    /// A stable id for every message: the server's `UIDL` when it has one, otherwise a
    /// fingerprint of each message's header section and size (see [`header_fingerprint`]),
    /// read with `TOP n 0` (or `RETR` when the server lacks `TOP` as well).
    ///
    /// Fingerprints start with `fp:`; identical header sections get `-2`, `-3`, ... in
    /// message order. They cost one `TOP` per message, and stay stable as long as the
    /// server keeps the messages and their headers unchanged.
    pub async fn unique_ids(&mut self) -> Result<Vec<UidlEntry>> {
        let caps = self.capabilities().await?;
        // Without CAPA nothing is known: ask.
        let (try_uidl, mut use_top) = (
            caps.is_empty() || caps.has("UIDL"),
            caps.is_empty() || caps.has("TOP"),
        );
        if try_uidl && self.command(Command::Uidl(None)).await?.is_ok() {
            return self.read_uidl_listing().await;
        }
        let list = self.list().await?;
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut ids = Vec::with_capacity(list.len());
        for entry in list {
            let mut head = None;
            if use_top {
                match self
                    .command(Command::Top {
                        msg: entry.msg,
                        lines: 0,
                    })
                    .await?
                {
                    Ok(_) => head = Some(self.read_block(None).await?),
                    Err(_) => use_top = false,
                }
            }
            let head = match head {
                Some(head) => head,
                None => self.retr(entry.msg).await?,
            };
            let mut uid = header_fingerprint(&head, entry.size);
            let copies = seen.entry(uid.clone()).or_default();
            *copies += 1;
            if *copies > 1 {
                uid = format!("{uid}-{copies}");
            }
            ids.push(UidlEntry { msg: entry.msg, uid });
        }
        Ok(ids)
    }

    /// `RETR n`: the whole message, dot-unstuffed, as sent otherwise (line ends included).
    ///
    /// When the server announces the size in its `+OK`, the read buffer is sized for it up
    /// front, so the message is handed out without being copied.
    pub async fn retr(&mut self, msg: u32) -> Result<Bytes> {
        let line = self
            .expect_ok(Command::Retr(msg), ErrorKind::SourceRefused)
            .await?;
        self.read_block(size_hint(&line)).await
    }

    /// `RETR n` as a stream of chunks: the message is handed out as it arrives, never held
    /// whole. Dropping the reader early is allowed; the rest is skipped before the next
    /// command.
    pub async fn retr_stream(&mut self, msg: u32) -> Result<MessageReader<'_, S>> {
        let line = self
            .expect_ok(Command::Retr(msg), ErrorKind::SourceRefused)
            .await?;
        self.body = Some(BodyDecoder::new(&self.limits));
        Ok(MessageReader {
            size_hint: size_hint(&line),
            session: self,
        })
    }

    /// `TOP n lines`: the header section and the first `lines` lines of the body.
    pub async fn top(&mut self, msg: u32, lines: u32) -> Result<Bytes> {
        self.expect_ok(Command::Top { msg, lines }, ErrorKind::SourceRefused)
            .await?;
        self.read_block(None).await
    }

    /// `NOOP`: keeps the connection alive.
    pub async fn noop(&mut self) -> Result<()> {
        self.expect_ok(Command::Noop, ErrorKind::SourceRefused)
            .await
            .map(drop)
    }

    /// `RSET`.
    pub async fn rset(&mut self) -> Result<()> {
        self.expect_ok(Command::Rset, ErrorKind::SourceRefused)
            .await
            .map(drop)
    }

    /// `QUIT`, then closes the connection. Nothing was marked deleted, so nothing is.
    pub async fn quit(mut self) -> Result<()> {
        self.expect_ok(Command::Quit, ErrorKind::SourceRefused).await?;
        let what = format!("closing the connection to {}", self.server);
        // The server has already committed the session; a failed close loses nothing.
        let _ = with_timeout(&*self.timer, self.timeout, &what, self.stream.close()).await;
        Ok(())
    }

    /// A login check: capabilities (after login), message count, total size, TLS.
    pub async fn check_summary(&mut self) -> Result<CheckSummary> {
        let capabilities = self.capabilities().await?.clone();
        let stat = self.stat().await?;
        Ok(CheckSummary {
            capabilities,
            messages: stat.count,
            total_size: stat.size,
            tls: self.is_tls(),
        })
    }

    // ---- plumbing -------------------------------------------------------------------------

    /// Sends `cmd` and reads its status line: `Ok(Ok)` for `+OK`, `Ok(Err)` for `-ERR`; a
    /// continuation line here is a protocol violation.
    async fn command(&mut self, cmd: Command<'_>) -> Result<Result<StatusLine, StatusLine>> {
        let line = self.exchange(cmd).await?;
        match line.status {
            Status::Ok => Ok(Ok(line)),
            Status::Err => Ok(Err(line)),
            Status::Continue => {
                Err(self.violation(&format!("a continuation line in reply to {}", cmd.name())))
            }
        }
    }

    /// Sends `cmd`; `-ERR` becomes an error of `default` kind (or what its code says).
    async fn expect_ok(&mut self, cmd: Command<'_>, default: ErrorKind) -> Result<StatusLine> {
        match self.command(cmd).await? {
            Ok(line) => Ok(line),
            Err(line) => Err(self.refusal(cmd.name(), &line, default)),
        }
    }

    async fn exchange(&mut self, cmd: Command<'_>) -> Result<StatusLine> {
        self.send(cmd).await?;
        self.read_status().await
    }

    async fn send(&mut self, cmd: Command<'_>) -> Result<()> {
        if self.broken {
            return Err(self.context(Error::new(
                ErrorKind::Transient,
                "the connection is unusable after an earlier failure; open a new session",
            )));
        }
        self.skip_body().await?;
        self.out.clear();
        cmd.encode(&mut self.out).map_err(|e| self.context(e.into()))?;
        let what = format!("sending {} to {}", cmd.name(), self.server);
        let (stream, out) = (&mut self.stream, &self.out);
        let sent = with_timeout(&*self.timer, self.timeout, &what, async move {
            stream.write_all(out).await?;
            stream.flush().await
        })
        .await;
        // Wipe the line: it may hold a password.
        self.out.fill(0);
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(io)) => Err(self.fail(Error::network(&self.server, io))),
            Err(timeout) => Err(self.fail(timeout)),
        }
    }

    async fn read_status(&mut self) -> Result<StatusLine> {
        loop {
            match decode_status(&mut self.buf, &self.limits) {
                Ok(Some(line)) => return Ok(line),
                Ok(None) => self.fill().await?,
                Err(e) => return Err(self.fail(e.into())),
            }
        }
    }

    async fn read_listing(&mut self) -> Result<Vec<Bytes>> {
        let mut decoder = ListingDecoder::new(&self.limits);
        let mut lines = Vec::new();
        loop {
            match decoder.decode(&mut self.buf) {
                Ok(BodyEvent::Data(line)) => lines.push(line),
                Ok(BodyEvent::NeedMore) => self.fill().await?,
                Ok(BodyEvent::End) => return Ok(lines),
                Err(e) => return Err(self.fail(e.into())),
            }
        }
    }

    /// Reads a `RETR`/`TOP` block whole. With a size hint the buffer is reserved up front,
    /// so consecutive pieces stay in one allocation and `unsplit` joins them for free.
    async fn read_block(&mut self, size_hint: Option<usize>) -> Result<Bytes> {
        if let Some(size) = size_hint {
            let size = size.min(self.limits.max_message_size);
            self.buf.reserve(size + size / 32 + READ_CHUNK);
        }
        let mut decoder = BodyDecoder::new(&self.limits);
        let mut message = BytesMut::new();
        loop {
            let (piece, end) = decoder
                .decode_mut(&mut self.buf)
                .map_err(|e| self.fail(e.into()))?;
            message.unsplit(piece);
            if end {
                return Ok(message.freeze());
            }
            self.fill().await?;
        }
    }

    async fn skip_body(&mut self) -> Result<()> {
        if let Some(mut decoder) = self.body.take() {
            while !decoder
                .decode_mut(&mut self.buf)
                .map_err(|e| self.fail(e.into()))?
                .1
            {
                self.fill().await?;
            }
        }
        Ok(())
    }

    /// Reads at least one more byte into the buffer.
    async fn fill(&mut self) -> Result<()> {
        let want = self.read_size;
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let what = format!("a response from {}", self.server);
        let read = with_timeout(
            &*self.timer,
            self.timeout,
            &what,
            self.stream.read(&mut self.buf[start..]),
        )
        .await;
        let got = match read {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => 0,
        };
        self.buf.truncate(start + got);
        self.read_size = if got == want {
            (want * 2).min(READ_CHUNK)
        } else if got < want / 4 {
            (want / 2).max(MIN_READ)
        } else {
            want
        };
        match read {
            Ok(Ok(0)) => Err(self.fail(Error::new(
                ErrorKind::Transient,
                format!(
                    "{} closed the connection before its response was complete; retry",
                    self.server
                ),
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(io)) => Err(self.fail(Error::network(&self.server, io))),
            Err(timeout) => Err(self.fail(timeout)),
        }
    }

    // ---- errors ---------------------------------------------------------------------------

    /// Who we talk to, for messages: the account (once known) and the server.
    fn label(&self) -> String {
        match &self.account {
            Some(account) => format!("POP3 {account} on {}", self.server),
            None => format!("POP3 {}", self.server),
        }
    }

    fn context(&self, err: Error) -> Error {
        err.context(self.label())
    }

    /// An error after which the stream is out of step: the session refuses further commands.
    fn fail(&mut self, err: Error) -> Error {
        self.broken = true;
        self.context(err)
    }

    fn violation(&mut self, what: &str) -> Error {
        let message = format!("the server sent {what}; this is not POP3, reconnect");
        self.fail(Error::protocol(message))
    }

    fn tls_error(&mut self, what: &str) -> Error {
        let message = format!("{} {what}", self.server);
        self.fail(Error::new(ErrorKind::Tls, message))
    }

    fn invalid(&self, message: &str) -> Error {
        self.context(Error::new(ErrorKind::InvalidInput, message.to_owned()))
    }

    /// The error for a `-ERR` to `command`: its kind from the response code, else `default`.
    fn refusal(&self, command: &str, line: &StatusLine, default: ErrorKind) -> Error {
        let kind = line.error_kind(default);
        let advice = match (&line.code, kind) {
            (Some(RespCode::InUse), _) => "another POP3 session holds the mailbox; retry when it has ended",
            (Some(RespCode::LoginDelay { .. }), _) => {
                "the server allows logins only every so often; retry after the delay"
            }
            (_, ErrorKind::Transient) => "a temporary failure on the server; retry later",
            (_, ErrorKind::Auth) => {
                "check the user name and password; many providers need an app password or \
                 authorization code for POP3"
            }
            (_, ErrorKind::Tls) => "the server will not switch to TLS; use implicit TLS (port 995)",
            _ => "check that POP3 access is enabled for this account",
        };
        let message = format!(
            "the server answered {command} with -ERR {:?}; {advice}",
            line.text_lossy()
        );
        let mut err = Error::new(kind, message);
        if let Some(delay) = line.retry_after() {
            err = err.with_retry_after(delay);
        }
        self.context(err)
    }
}

async fn handshake<S: AsyncStream>(
    timer: &dyn Timer,
    server: &ServerConfig,
    stream: S,
) -> Result<TlsStream<S>> {
    let connector = TlsConnector::new(&server.tls)?;
    let what = format!("the TLS handshake with {server}");
    with_timeout(
        timer,
        server.timeout,
        &what,
        connector.connect(&server.host, stream),
    )
    .await?
}

/// The size a `RETR` reply announces (`+OK 1234 octets`), if it starts with a number.
fn size_hint(line: &StatusLine) -> Option<usize> {
    let digits = line.text.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&line.text[..digits]).ok()?.parse().ok()
}

/// The id [`Session::unique_ids`] gives a message on a server without `UIDL`: `fp:` and 32
/// hex digits of the SHA-256 of the message size and its header section (up to the first
/// empty line; line ends normalised to LF, so CRLF and bare-LF servers agree).
///
/// ```
/// use mailmigrate::pop3::header_fingerprint;
/// let a = header_fingerprint(b"Subject: a\r\nMessage-ID: <1@x>\r\n\r\nbody", 44);
/// assert_eq!(a, header_fingerprint(b"Subject: a\nMessage-ID: <1@x>\n\nother body", 44));
/// assert_ne!(a, header_fingerprint(b"Subject: a\r\nMessage-ID: <2@x>\r\n\r\nbody", 44));
/// assert!(a.starts_with("fp:") && a.len() == 35);
/// ```
pub fn header_fingerprint(message: &[u8], size: u64) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("{size}\n").as_bytes());
    for line in message.split_inclusive(|&b| b == b'\n') {
        let content = super::codec::trim_line_end(line);
        if content.is_empty() {
            break;
        }
        hash.update(content);
        hash.update(b"\n");
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("fp:{hex}")
}

/// A message being read by [`Session::retr_stream`], chunk by chunk.
///
/// The decoding state lives in the session, so dropping the reader early needs no cleanup:
/// the session skips the rest of the message before its next command.
pub struct MessageReader<'a, S: AsyncStream> {
    session: &'a mut Session<S>,
    size_hint: Option<usize>,
}

impl<S: AsyncStream> fmt::Debug for MessageReader<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageReader")
            .field("read", &self.session.body.as_ref().map(BodyDecoder::size))
            .field("size_hint", &self.size_hint)
            .finish()
    }
}

impl<'a, S: AsyncStream> MessageReader<'a, S> {
    /// The next piece of the message (dot-unstuffed), or `None` after the last one.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        let session = &mut *self.session;
        while let Some(decoder) = session.body.as_mut() {
            let failure = match decoder.decode(&mut session.buf) {
                Ok(BodyEvent::Data(chunk)) => return Ok(Some(chunk)),
                Ok(BodyEvent::End) => {
                    session.body = None;
                    continue;
                }
                Ok(BodyEvent::NeedMore) => match session.fill().await {
                    Ok(()) => continue,
                    Err(e) => e,
                },
                Err(e) => session.fail(e.into()),
            };
            // The session is broken now; the reader ends after reporting it.
            session.body = None;
            return Err(failure);
        }
        Ok(None)
    }

    /// The size the server announced in its `+OK`, if it did.
    pub fn size_hint(&self) -> Option<usize> {
        self.size_hint
    }

    /// The message as a `futures` stream of chunks, ending after the first error.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes>> + 'a {
        futures::stream::unfold(self, |mut reader| async move {
            match reader.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), reader)),
                Ok(None) => None,
                Err(e) => Some((Err(e), reader)),
            }
        })
    }
}
