//! One private Dovecot: its files, its processes, its users and mailboxes.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mailmigrate::Credentials;
use mailmigrate::net::{Security, ServerConfig, TlsConfig};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::maildir::{SeedMessage, seed_maildir, set_owner, whole_secs};
use super::{certs, oauth2};

/// The address every instance listens on (and the host in [`Dovecot::server`] configs).
pub const HOST: &str = "127.0.0.1";

const DOVECOT_BIN: &str = "/usr/sbin/dovecot";
const DOVEADM_BIN: &str = "/usr/bin/doveadm";
/// Starts retried when another process grabbed one of our ports between probe and bind.
const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const DOVEADM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Dovecot::change_password`] waits for Dovecot to pick the new password up.
const PASSWORD_CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The `nobody`/`nogroup` ids mail processes run as when the tests run as root.
const NOBODY: u32 = 65_534;

/// Runs in `/bin/sh` beside each instance: its stdin is a pipe whose only writer is the test
/// process, so EOF means the test process is gone (however it ended) and the instance must go
/// too. `$1` is Dovecot's process group, `$2` the instance directory.
const WATCHDOG_SCRIPT: &str = r#"
while read -r _; do :; done
kill -KILL "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null
sleep 0.2
rm -rf -- "$2"
"#;

/// Which protocol a server config or port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// IMAP4rev1 (plaintext/STARTTLS port and implicit-TLS port).
    Imap,
    /// POP3 (plaintext/STLS port and implicit-TLS port).
    Pop3,
}

/// A user of one Dovecot instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// Login name (lowercase; also the JWT `sub` for XOAUTH2).
    pub name: String,
    /// Current password.
    pub password: String,
}

impl TestUser {
    /// Password credentials for the crate's sessions.
    pub fn credentials(&self) -> Credentials {
        Credentials::password(self.name.clone(), self.password.clone())
    }
}

impl AsRef<str> for TestUser {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// The instance shared by every test in this test binary, started on first use.
///
/// It stops when the test process exits (a watchdog kills it and removes its directory).
/// Tests sharing it must use their own users ([`Dovecot::unique_user`]).
pub fn dovecot() -> &'static Dovecot {
    Dovecot::shared()
}

/// A private Dovecot 2.3 on 127.0.0.1 with its own config, directories, users and
/// certificates, stopped (all its processes killed) when dropped.
///
/// Methods taking `user: impl AsRef<str>` accept a [`TestUser`] or a login name.
pub struct Dovecot {
    id: String,
    dir: PathBuf,
    tempdir: Option<TempDir>,
    config_path: PathBuf,
    log_path: PathBuf,
    stderr_path: PathBuf,
    ports: Ports,
    ca_pem: Vec<u8>,
    /// (uid, gid) to chown files to, when we run as root.
    owner: Option<(u32, u32)>,
    oauth2_key: Vec<u8>,
    processes: Mutex<Option<Processes>>,
}

#[derive(Debug, Clone, Copy)]
struct Ports {
    imap: u16,
    imaps: u16,
    pop3: u16,
    pop3s: u16,
}

struct Processes {
    /// `dovecot -F`, leader of its own process group, which all Dovecot processes share.
    master: Child,
    watchdog: Child,
}

enum StartError {
    /// Another process bound one of the probed ports first; worth another attempt.
    PortTaken(String),
    Fatal(String),
}

impl Dovecot {
    /// The shared instance (same as [`dovecot()`]).
    pub fn shared() -> &'static Dovecot {
        static SHARED: OnceLock<Dovecot> = OnceLock::new();
        SHARED.get_or_init(|| Dovecot::launch(true))
    }

    /// Starts an instance of its own, for a test that must not share one (it restarts or
    /// stops the server, counts processes, ...). Returns once all four ports accept
    /// connections; panics with the log tail and config path if Dovecot does not come up.
    pub fn start() -> Dovecot {
        Dovecot::launch(false)
    }

    fn launch(shared: bool) -> Dovecot {
        let mut collisions = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Dovecot::try_launch(shared) {
                Ok(d) => return d,
                Err(StartError::PortTaken(report)) => collisions.push(report),
                Err(StartError::Fatal(report)) => panic!("{report}"),
            }
        }
        panic!(
            "Dovecot could not bind its ports in {START_ATTEMPTS} attempts (another process took one each time):\n{}",
            collisions.join("\n---\n")
        )
    }

    fn try_launch(shared: bool) -> Result<Dovecot, StartError> {
        assert!(
            Path::new(DOVECOT_BIN).exists() && Path::new(DOVEADM_BIN).exists(),
            "{DOVECOT_BIN} or {DOVEADM_BIN} is missing: install dovecot-imapd and dovecot-pop3d \
             (.ci/run does); the integration tests need a real Dovecot 2.3"
        );
        let (uid, gid) = our_ids();
        let root = uid == 0;
        let owner = root.then_some((NOBODY, NOBODY));
        let (mail_uid, mail_gid) = owner.unwrap_or((uid, gid));

        let tempdir = make_instance_dir();
        let dir = tempdir.path().to_path_buf();
        let id = instance_id(&dir);
        for sub in [
            "run",
            "state",
            "home",
            "users",
            "tls",
            "oauth2-keys/default/HS256",
        ] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
            set_mode(&d, 0o755);
        }
        set_mode(&dir.join("tls"), 0o700);

        let certs = certs::generate(&id);
        write_file(&dir.join("tls/ca.pem"), certs.ca_pem.as_bytes(), 0o644);
        write_file(&dir.join("tls/server.pem"), certs.chain_pem.as_bytes(), 0o644);
        write_file(&dir.join("tls/server.key"), certs.key_pem.as_bytes(), 0o600);

        // Not a secret anyone else needs to guess: unique per instance is enough.
        let oauth2_key =
            Sha256::digest(format!("{id}/{}/{:?}", std::process::id(), SystemTime::now())).to_vec();
        write_file(
            &dir.join("oauth2-keys/default/HS256/default"),
            oauth2::key_file_content(&oauth2_key).as_bytes(),
            0o644,
        );
        let oauth2_conf = format!(
            "introspection_mode = local\n\
             local_validation_key_dict = fs:posix:prefix={}/oauth2-keys/\n\
             username_attribute = sub\n",
            dir.display()
        );
        write_file(&dir.join("oauth2.conf.ext"), oauth2_conf.as_bytes(), 0o644);

        let ports = free_ports();
        let config = render_config(&dir, &id, ports, root, mail_uid, mail_gid);
        let config_path = dir.join("dovecot.conf");
        write_file(&config_path, config.as_bytes(), 0o644);
        let log_path = dir.join("dovecot.log");
        let stderr_path = dir.join("dovecot.stderr");

        let stderr = File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
        let master = Command::new(DOVECOT_BIN)
            .arg("-F")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // INTERNALDATEs print in the server's zone; UTC keeps expectations simple.
            .env("TZ", "UTC")
            .current_dir(&dir)
            // Its own process group, so stopping can kill every Dovecot process at once.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {DOVECOT_BIN}: {e}"));
        let watchdog = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("mailmigrate-dovecot-watchdog")
            .arg(master.id().to_string())
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .spawn();
        let watchdog = match watchdog {
            Ok(w) => w,
            Err(e) => {
                kill_group(master.id());
                panic!("cannot start the Dovecot watchdog (/bin/sh): {e}");
            }
        };

        let mut dovecot = Dovecot {
            id,
            dir,
            tempdir: Some(tempdir),
            config_path,
            log_path,
            stderr_path,
            ports,
            ca_pem: certs.ca_pem.into_bytes(),
            owner,
            oauth2_key,
            processes: Mutex::new(Some(Processes { master, watchdog })),
        };
        match dovecot.wait_ready() {
            Ok(()) => {
                if shared {
                    // Never dropped: the watchdog removes the directory after the process exits.
                    if let Some(t) = dovecot.tempdir.take() {
                        let _ = t.keep();
                    }
                }
                Ok(dovecot)
            }
            Err(StartError::Fatal(report)) => {
                dovecot.shutdown();
                // Keep the files: the report points at them.
                if let Some(t) = dovecot.tempdir.take() {
                    let _ = t.keep();
                }
                Err(StartError::Fatal(format!(
                    "{report}\n(instance directory kept for inspection)"
                )))
            }
            Err(collision) => Err(collision),
        }
    }

    /// Polls until both plaintext ports greet with this instance's banner (proving our
    /// master, not some other process, owns the ports) and both TLS ports accept.
    fn wait_ready(&self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.master_exit_status() {
                let report = self.failure_report(&format!("the master process exited ({status})"));
                let logs = format!("{}{}", self.log_tail(200), read_lossy(&self.stderr_path));
                return Err(if logs.contains("Address already in use") {
                    StartError::PortTaken(report)
                } else {
                    StartError::Fatal(report)
                });
            }
            if self.greets(self.ports.imap)
                && self.greets(self.ports.pop3)
                && accepts(self.ports.imaps)
                && accepts(self.ports.pop3s)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartError::Fatal(self.failure_report(&format!(
                    "its ports did not accept connections within {READY_TIMEOUT:?}"
                ))));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn greets(&self, port: u16) -> bool {
        let Ok(stream) = TcpStream::connect_timeout(&addr(port), Duration::from_secs(1)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let _ = BufReader::new(stream.take(4096)).read_line(&mut line);
        line.contains(&self.id)
    }

    fn master_exit_status(&self) -> Option<std::process::ExitStatus> {
        let mut guard = self.processes.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_mut().and_then(|p| p.master.try_wait().ok().flatten())
    }

    fn failure_report(&self, what: &str) -> String {
        format!(
            "Dovecot ({DOVECOT_BIN}) failed to start: {what}\nconfig: {}\nstderr: {}\nlast lines of {}:\n{}",
            self.config_path.display(),
            read_lossy(&self.stderr_path).trim(),
            self.log_path.display(),
            self.log_tail(40)
        )
    }

    /// Stops the instance now (same as dropping it).
    pub fn stop(self) {
        drop(self);
    }

    fn shutdown(&self) {
        let taken = self
            .processes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(Processes {
            mut master,
            mut watchdog,
        }) = taken
        else {
            return;
        };
        let _ = watchdog.kill();
        let _ = watchdog.wait();
        let pgid = master.id();
        // SIGKILL to the whole group: immediate (a graceful SIGTERM takes Dovecot ~3 s) and
        // nothing the tests care about is lost.
        kill_group(pgid);
        // Directly too, so the wait below can never hang even if the group kill failed.
        let _ = master.kill();
        let _ = master.wait();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let left = group_members(pgid);
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                // Drop may run during a panic: report rather than panic again.
                eprintln!("Dovecot processes {left:?} (group {pgid}) survived SIGKILL for {STOP_TIMEOUT:?}");
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Unique id of this instance (part of its directory name and of its greeting banner).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// IMAP plaintext port (STARTTLS offered).
    pub fn imap_port(&self) -> u16 {
        self.ports.imap
    }

    /// IMAP implicit-TLS port.
    pub fn imaps_port(&self) -> u16 {
        self.ports.imaps
    }

    /// POP3 plaintext port (STLS offered).
    pub fn pop3_port(&self) -> u16 {
        self.ports.pop3
    }

    /// POP3 implicit-TLS port.
    pub fn pop3s_port(&self) -> u16 {
        self.ports.pop3s
    }

    /// The port for `proto` under `security` (STARTTLS and plaintext share a port).
    pub fn port(&self, proto: Proto, security: Security) -> u16 {
        match (proto, security) {
            (Proto::Imap, Security::Tls) => self.ports.imaps,
            (Proto::Imap, Security::StartTls | Security::Plaintext) => self.ports.imap,
            (Proto::Pop3, Security::Tls) => self.ports.pop3s,
            (Proto::Pop3, Security::StartTls | Security::Plaintext) => self.ports.pop3,
        }
    }

    /// The test CA (PEM) that signed the server certificate.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// A TLS config trusting only the test CA.
    pub fn tls_config(&self) -> TlsConfig {
        TlsConfig::default()
            .with_ca_pem(&self.ca_pem)
            .unwrap_or_else(|e| panic!("the generated test CA was rejected: {e}"))
            .only_extra_roots()
    }

    /// Where and how to reach this instance: host 127.0.0.1 (in the certificate's SANs),
    /// the port for `proto` and `security`, the test CA as the only trusted root, and a 30 s
    /// timeout.
    pub fn server(&self, proto: Proto, security: Security) -> ServerConfig {
        ServerConfig::new(HOST, self.port(proto, security), security)
            .with_tls(self.tls_config())
            .with_timeout(Duration::from_secs(30))
    }

    /// The instance's `dovecot.conf`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The instance's log file (every Dovecot process logs here).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = read_lossy(&self.log_path);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The instance's directory (config, logs, homes, users, TLS material).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Live (non-zombie) processes of this instance: the master and all it started.
    pub fn pids(&self) -> Vec<u32> {
        let guard = self.processes.lock().unwrap_or_else(PoisonError::into_inner);
        guard
            .as_ref()
            .map(|p| group_members(p.master.id()))
            .unwrap_or_default()
    }

    /// Runs `doveadm -c CONFIG ARGS...` (with `TZ=UTC`, so dates print in UTC).
    pub fn doveadm(&self, args: &[&str]) -> Output {
        self.doveadm_with_input(args, &[])
    }

    /// Like [`Dovecot::doveadm`], feeding `input` on stdin (e.g. `save`). Panics if doveadm
    /// has not finished after a minute (rather than hanging the test run).
    pub fn doveadm_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new(DOVEADM_BIN)
            .arg("-c")
            .arg(&self.config_path)
            .args(args)
            .env("TZ", "UTC")
            .stdin(if input.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {DOVEADM_BIN}: {e}"));
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut buf);
                }
                buf
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input)
                .unwrap_or_else(|e| panic!("cannot feed doveadm {args:?}: {e}"));
        }
        let deadline = Instant::now() + DOVEADM_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "doveadm {args:?} did not finish within {DOVEADM_TIMEOUT:?}; last lines of {}:\n{}",
                        self.log_path.display(),
                        self.log_tail(20)
                    );
                }
                Err(e) => panic!("waiting for doveadm {args:?} failed: {e}"),
            }
        };
        Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }

    /// Runs doveadm and returns its stdout; panics with its stderr if it fails.
    pub fn doveadm_ok(&self, args: &[&str]) -> String {
        let out = self.doveadm(args);
        check_doveadm(args, &out)
    }

    /// Adds a user with `password` (any text without NUL). Panics if the name is taken on
    /// this instance or is not a lowercase login (`[a-z0-9._@+-]`, starting alphanumeric):
    /// Dovecot lowercases logins, so mixed case would only confuse.
    ///
    /// Usable immediately: each user has their own passwd-file, read on first lookup.
    pub fn add_user(&self, name: &str, password: &str) -> TestUser {
        check_user_name(name);
        let file = self.passwd_path(name);
        assert!(
            !file.exists(),
            "user {name} already exists on this Dovecot; use unique_user() or change_password()"
        );
        let home = self.home_of(name);
        let maildir = home.join("Maildir");
        fs::create_dir_all(&maildir).unwrap_or_else(|e| panic!("cannot create {}: {e}", maildir.display()));
        set_mode(&home, 0o700);
        set_owner(&home, self.owner);
        set_owner(&maildir, self.owner);
        self.write_passwd(name, password);
        TestUser {
            name: name.to_owned(),
            password: password.to_owned(),
        }
    }

    /// Adds a user named `{prefix}-{n}` with a generated password, unique in this process.
    pub fn unique_user(&self, prefix: &str) -> TestUser {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{n}");
        let digest = Sha256::digest(format!("{}/{name}/{:?}", self.id, SystemTime::now()));
        let password = format!(
            "Pw{n}-{:02x}{:02x}{:02x}{:02x}",
            digest[0], digest[1], digest[2], digest[3]
        );
        self.add_user(&name, &password)
    }

    /// Replaces `user`'s password and waits until Dovecot accepts the new one (it rechecks
    /// an already-read passwd-file at most once per second).
    pub fn change_password(&self, user: impl AsRef<str>, new_password: &str) -> TestUser {
        let name = user.as_ref();
        assert!(
            self.passwd_path(name).exists(),
            "user {name} does not exist on this Dovecot"
        );
        self.write_passwd(name, new_password);
        let deadline = Instant::now() + PASSWORD_CHANGE_TIMEOUT;
        while !self.password_accepted(name, new_password) {
            assert!(
                Instant::now() < deadline,
                "Dovecot did not pick up {name}'s new password within {PASSWORD_CHANGE_TIMEOUT:?}\n{}",
                self.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        TestUser {
            name: name.to_owned(),
            password: new_password.to_owned(),
        }
    }

    /// Whether Dovecot's auth service accepts `password` for `user` right now.
    pub fn password_accepted(&self, user: impl AsRef<str>, password: &str) -> bool {
        // no-penalty: a failed check must not slow later logins down.
        self.doveadm(&["auth", "test", "-x", "no-penalty", user.as_ref(), password])
            .status
            .success()
    }

    fn passwd_path(&self, name: &str) -> PathBuf {
        self.dir.join("users").join(name)
    }

    fn home_of(&self, name: &str) -> PathBuf {
        self.dir.join("home").join(name)
    }

    /// Writes the user's passwd-file atomically, with an mtime Dovecot sees as changed.
    fn write_passwd(&self, name: &str, password: &str) {
        assert!(
            !password.contains('\0'),
            "passwords cannot contain NUL (SASL PLAIN separates fields with it)"
        );
        // PLAIN.B64 is the PLAIN scheme, base64-encoded, so ':' or newlines can't break the line.
        let line = format!("{name}:{{PLAIN.B64}}{}\n", STANDARD.encode(password));
        let path = self.passwd_path(name);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        write_file(&tmp, line.as_bytes(), 0o644);
        // Dovecot reloads when mtime (whole seconds) or size differ from what it read; a
        // same-length password written within the same second would otherwise go unseen.
        if let Ok(old) = fs::metadata(&path).and_then(|m| m.modified()) {
            let now = SystemTime::now();
            let bumped = if whole_secs(now) <= whole_secs(old) {
                old + Duration::from_secs(1)
            } else {
                now
            };
            if let Ok(f) = File::options().write(true).open(&tmp) {
                let _ = f.set_modified(bumped);
            }
        }
        fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("cannot install {}: {e}", path.display()));
    }

    /// An HS256 JWT for XOAUTH2/OAUTHBEARER as `user`, valid for an hour.
    pub fn oauth2_token(&self, user: impl AsRef<str>) -> String {
        let now = unix_now();
        oauth2::hs256_jwt(&self.oauth2_key, user.as_ref(), now - 5, now + 3_600)
    }

    /// Like [`Dovecot::oauth2_token`] with a chosen expiry (in the past for an expired token).
    pub fn oauth2_token_expiring(&self, user: impl AsRef<str>, expires: SystemTime) -> String {
        let exp = expires
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let iat = (unix_now() - 5).min(exp);
        oauth2::hs256_jwt(&self.oauth2_key, user.as_ref(), iat, exp)
    }

    /// The user's maildir root (`~/Maildir`; INBOX is `~/Maildir/INBOX`, other mailboxes are
    /// `~/Maildir/<mUTF-7 path>`).
    pub fn maildir_of(&self, user: impl AsRef<str>) -> PathBuf {
        self.home_of(user.as_ref()).join("Maildir")
    }

    /// The directory holding `mailbox`'s `cur/`, `new/`, `tmp/` (as Dovecot maps the name).
    pub fn mailbox_dir(&self, user: impl AsRef<str>, mailbox: &str) -> PathBuf {
        let out = self.doveadm_ok(&["mailbox", "path", "-u", user.as_ref(), mailbox]);
        PathBuf::from(out.trim_end_matches('\n'))
    }

    /// Creates and subscribes `mailbox` (UTF-8, `/`-separated; parents are created too).
    /// Panics if it exists.
    pub fn create_mailbox(&self, user: impl AsRef<str>, mailbox: &str) {
        self.doveadm_ok(&["mailbox", "create", "-s", "-u", user.as_ref(), mailbox]);
    }

    /// `mailbox`'s directory, creating the mailbox first if it does not exist yet.
    fn ensure_mailbox(&self, user: &str, mailbox: &str) -> PathBuf {
        let path = self.mailbox_dir(user, mailbox);
        if path.join("cur").is_dir() {
            return path;
        }
        if mailbox.eq_ignore_ascii_case("INBOX") {
            // INBOX always exists for Dovecot; its directory appears on first access.
            fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
            set_owner(&path, self.owner);
        } else {
            self.create_mailbox(user, mailbox);
        }
        path
    }

    /// Writes `messages` straight into `user`'s `mailbox` (created if missing), with their
    /// flags, keywords and internal dates; returns how many. Thousands per second: meant for
    /// large corpora. UIDs follow the order given.
    pub fn seed(
        &self,
        user: impl AsRef<str>,
        mailbox: &str,
        messages: impl IntoIterator<Item = SeedMessage>,
    ) -> usize {
        let dir = self.ensure_mailbox(user.as_ref(), mailbox);
        seed_maildir(&dir, self.owner, messages)
    }

    /// Delivers one message through `doveadm save` (Dovecot's own write path; ~30 ms each,
    /// internal date = now, no flags).
    pub fn seed_via_doveadm_save(&self, user: impl AsRef<str>, mailbox: &str, raw: &[u8]) {
        let user = user.as_ref();
        self.ensure_mailbox(user, mailbox);
        let args = ["save", "-u", user, "-m", mailbox];
        let out = self.doveadm_with_input(&args, raw);
        check_doveadm(&args, &out);
    }

    /// `doveadm fetch` of single-line `fields` (space-separated, e.g. `"uid flags
    /// date.received.unixtime"`) for messages matching `query` (e.g. `&["all"]`), one map
    /// per message, in UID order.
    pub fn fetch(
        &self,
        user: impl AsRef<str>,
        mailbox: &str,
        fields: &str,
        query: &[&str],
    ) -> Vec<BTreeMap<String, String>> {
        let mut args = vec![
            "-f",
            "tab",
            "fetch",
            "-u",
            user.as_ref(),
            fields,
            "mailbox",
            mailbox,
        ];
        args.extend_from_slice(query);
        let out = self.doveadm_ok(&args);
        let mut lines = out.lines();
        let Some(header) = lines.next() else {
            return Vec::new();
        };
        let names: Vec<&str> = header.split('\t').collect();
        lines
            .map(|line| {
                names
                    .iter()
                    .map(|n| n.to_string())
                    .zip(line.split('\t').map(str::to_owned))
                    .collect()
            })
            .collect()
    }

    /// How many messages `mailbox` holds.
    pub fn message_count(&self, user: impl AsRef<str>, mailbox: &str) -> usize {
        let out = self.doveadm_ok(&[
            "-f",
            "tab",
            "mailbox",
            "status",
            "-u",
            user.as_ref(),
            "messages",
            mailbox,
        ]);
        // "mailbox\tmessages\n<name>\t<count>\n"
        let value = out
            .lines()
            .nth(1)
            .and_then(|l| l.rsplit('\t').next())
            .unwrap_or_default();
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("unexpected doveadm mailbox status output {out:?}"))
    }

    /// The user's mailbox names (UTF-8), as Dovecot lists them.
    pub fn mailboxes(&self, user: impl AsRef<str>) -> Vec<String> {
        self.doveadm_ok(&["mailbox", "list", "-u", user.as_ref()])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dovecot")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

fn check_doveadm(args: &[&str], out: &Output) -> String {
    assert!(
        out.status.success(),
        "doveadm {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8(out.stdout.clone())
        .unwrap_or_else(|e| panic!("doveadm {args:?} printed non-UTF-8: {e}"))
}

fn check_user_name(name: &str) {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._@+-".contains(&b));
    assert!(
        ok,
        "{name:?} is not a usable test login: use 1-64 of [a-z0-9._@+-], starting with a letter or digit"
    );
}

fn render_config(dir: &Path, id: &str, ports: Ports, root: bool, mail_uid: u32, mail_gid: u32) -> String {
    let privileges = if root {
        assert!(
            passwd_has("/etc/passwd", "dovecot") && passwd_has("/etc/passwd", "dovenull"),
            "the dovecot and dovenull system users are missing; install dovecot-core (it creates them)"
        );
        format!(
            "# We run as root: Dovecot's own processes use its default dovecot/dovenull users, mail\n\
             # processes run as {mail_uid}:{mail_gid} (they refuse to run as root)."
        )
    } else {
        let (uid, gid) = our_ids();
        let user = name_of_id("/etc/passwd", uid)
            .unwrap_or_else(|| panic!("uid {uid} has no /etc/passwd entry; Dovecot needs a user name"));
        let group = name_of_id("/etc/group", gid)
            .unwrap_or_else(|| panic!("gid {gid} has no /etc/group entry; Dovecot needs a group name"));
        format!(
            "# Not root: every Dovecot process runs as us, without chroots.\n\
             default_internal_user = {user}\n\
             default_internal_group = {group}\n\
             default_login_user = {user}"
        )
    };
    let login_chroot = if root { "" } else { "\n  chroot =" };
    CONFIG_TEMPLATE
        .replace("@DIR@", &dir.display().to_string())
        .replace("@ID@", id)
        .replace("@PRIVILEGES@", &privileges)
        .replace("@UID@", &mail_uid.to_string())
        .replace("@GID@", &mail_gid.to_string())
        .replace("@IMAP@", &ports.imap.to_string())
        .replace("@IMAPS@", &ports.imaps.to_string())
        .replace("@POP3@", &ports.pop3.to_string())
        .replace("@POP3S@", &ports.pop3s.to_string())
        .replace("@LOGIN_CHROOT@", login_chroot)
}

const CONFIG_TEMPLATE: &str = r#"# Written by mailmigrate's tests/support for one test run; regenerated every time.
# Only imap and pop3: no submission, lmtp or sieve listeners.
protocols = imap pop3
listen = 127.0.0.1
base_dir = @DIR@/run
state_dir = @DIR@/state
instance_name = mailmigrate-@ID@
log_path = @DIR@/dovecot.log
verbose_proctitle = yes
# The readiness check looks for this id, so a foreign server on a reused port can't fool it.
login_greeting = mailmigrate test dovecot @ID@ ready
@PRIVILEGES@
first_valid_uid = @UID@

ssl = yes
ssl_cert = <@DIR@/tls/server.pem
ssl_key = <@DIR@/tls/server.key

disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
auth_verbose = yes

# One passwd-file per user: a file created after start is read on its first lookup, whereas
# an already-read file is rechecked at most once per second, which would race with tests.
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u @DIR@/users/%u
  mechanisms = plain login none
}
# Tokens are HS256 JWTs checked locally (key in @DIR@/oauth2-keys); password logins never
# reach this passdb, and tokens never reach the passwd-file one.
passdb {
  driver = oauth2
  args = @DIR@/oauth2.conf.ext
  mechanisms = xoauth2 oauthbearer
}
userdb {
  driver = static
  args = uid=@UID@ gid=@GID@ home=@DIR@/home/%u
}

mail_location = maildir:~/Maildir:LAYOUT=fs:INBOX=~/Maildir/INBOX
mail_fsync = never

namespace inbox {
  inbox = yes
  separator = /
  prefix =
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \Archive
    auto = subscribe
  }
}

protocol imap {
  mail_max_userip_connections = 100
}
protocol pop3 {
  mail_max_userip_connections = 100
}

# No auth penalty: otherwise failed logins in one test add a growing delay (2 s, 4 s, ...
# up to 15 s) to every later login from 127.0.0.1 on the instance. Dovecot 2.3 has no
# setting for it; the auth process skips penalties when it cannot reach this socket.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

service imap-login {
  inet_listener imap {
    port = @IMAP@
  }
  inet_listener imaps {
    port = @IMAPS@
    ssl = yes
  }@LOGIN_CHROOT@
}
service pop3-login {
  inet_listener pop3 {
    port = @POP3@
  }
  inet_listener pop3s {
    port = @POP3S@
    ssl = yes
  }@LOGIN_CHROOT@
}
"#;

/// Four distinct free loopback ports (held open together while probing so they differ).
fn free_ports() -> Ports {
    let listeners: Vec<TcpListener> = (0..4)
        .map(|_| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap_or_else(|e| panic!("cannot bind a probe socket on 127.0.0.1: {e}"))
        })
        .collect();
    let port = |i: usize| {
        listeners[i]
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    Ports {
        imap: port(0),
        imaps: port(1),
        pop3: port(2),
        pop3s: port(3),
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&addr(port), Duration::from_secs(1)).is_ok()
}

/// Creates the instance directory under a base whose every ancestor others may traverse
/// (mail processes run as nobody) and whose path is short (unix socket paths under
/// `run/` must stay below 108 bytes).
fn make_instance_dir() -> TempDir {
    let candidates = [std::env::temp_dir(), PathBuf::from("/tmp")];
    for base in &candidates {
        if base.as_os_str().len() > 40 || !traversable_by_others(base) {
            continue;
        }
        let Ok(dir) = tempfile::Builder::new().prefix("mm-dovecot-").tempdir_in(base) else {
            continue;
        };
        set_mode(dir.path(), 0o755);
        return dir;
    }
    panic!(
        "no usable temp dir for Dovecot among {candidates:?}: it must be short and every ancestor \
         must be world-executable (mail processes run as nobody)"
    )
}

fn traversable_by_others(path: &Path) -> bool {
    path.ancestors()
        .all(|p| fs::metadata(p).map(|m| m.mode() & 0o001 != 0).unwrap_or(false))
}

/// The random suffix tempfile gave the directory: unique among live instances.
fn instance_id(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.trim_start_matches("mm-dovecot-").to_owned()
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

fn write_file(path: &Path, content: &[u8], mode: u32) {
    fs::write(path, content).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    set_mode(path, mode);
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Our effective uid and gid (the owner of `/proc/self`), without unsafe libc calls.
fn our_ids() -> (u32, u32) {
    let meta = fs::metadata("/proc/self").unwrap_or_else(|e| panic!("cannot stat /proc/self: {e}"));
    (meta.uid(), meta.gid())
}

fn passwd_has(file: &str, name: &str) -> bool {
    read_lossy(Path::new(file))
        .lines()
        .any(|l| l.split(':').next() == Some(name))
}

fn name_of_id(file: &str, id: u32) -> Option<String> {
    read_lossy(Path::new(file)).lines().find_map(|l| {
        let mut fields = l.split(':');
        let name = fields.next()?;
        let found: u32 = fields.nth(1)?.parse().ok()?;
        (found == id).then(|| name.to_owned())
    })
}

/// SIGKILL to every process in group `pgid` (through sh's `kill`: no libc, no unsafe).
fn kill_group(pgid: u32) {
    let _ = Command::new("/bin/sh")
        .args(["-c", r#"kill -KILL "-$1" 2>/dev/null"#, "kill-group"])
        .arg(pgid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Live (not zombie) processes whose process group is `pgid`, from /proc.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[0] != "X" && fields[2].parse() == Ok(pgid) {
            pids.push(pid);
        }
    }
    pids
}
