//! IDLE (RFC 2177): wait for the server to report changes to the selected folder.

use std::time::Duration;

use futures::io::{AsyncRead, AsyncWrite};

use crate::imap::codec::{Command, CommandEncoder, Status, StatusResponse, Tag};
use crate::imap::failure::Side;
use crate::imap::session::{Completion, Incoming, Step, Until, nothing};
use crate::imap::{Session, Unsolicited};
use crate::{Error, ErrorKind, Result};

/// What ended an [`Idle::wait`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdleEvent {
    /// The server reported something (EXISTS, EXPUNGE, a flag change, ...): see
    /// [`Idle::take_unsolicited`].
    Changed,
    /// The wait's time limit passed with no news.
    TimedOut,
    /// The server ended IDLE by itself with this text; [`Idle::done`] has nothing left to do.
    Ended(String),
}

/// An IDLE in progress. End it with [`Idle::done`] (dropping it works too: the session
/// sends `DONE` before its next command).
///
/// Servers drop idle connections after about 30 minutes (RFC 2177 suggests re-issuing IDLE
/// every 29), so wait in slices shorter than that.
pub struct Idle<'a, S> {
    session: &'a mut Session<S>,
    tag: Option<Tag>,
}

impl<S> std::fmt::Debug for Idle<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idle")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// Starts IDLE in the selected folder. Fails with [`ErrorKind::SourceRefused`] if the
    /// server does not advertise IDLE (poll with [`Session::noop`] instead).
    pub async fn idle(&mut self) -> Result<Idle<'_, S>> {
        if !self.capabilities.has("IDLE") {
            return Err(Error::new(
                ErrorKind::SourceRefused,
                format!(
                    "IMAP server {} does not support IDLE; poll with NOOP instead",
                    self.peer
                ),
            ));
        }
        self.ready().await?;
        let mut out = Completion::default();
        let (tag, _) = self.send(&Command::Idle, "IDLE", nothing, &mut out).await?;
        match self.read_until(&tag, "IDLE", nothing, &mut out, true).await? {
            Until::Continue(_) => {
                self.idling = Some(tag.clone());
                Ok(Idle {
                    session: self,
                    tag: Some(tag),
                })
            }
            Until::Done(st) => Err(self.failed("IDLE", None, st, Side::Read)),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Idle<'_, S> {
    /// Waits up to `max` (on the session's timer) for the server to report something.
    /// A `BYE` or a dropped connection is an error.
    pub async fn wait(&mut self, max: Duration) -> Result<IdleEvent> {
        let Some(tag) = self.tag.clone() else {
            return Ok(IdleEvent::Ended(String::new()));
        };
        let timer = self.session.timer.clone();
        let start = timer.now();
        let seen = self.session.unsolicited_pushed;
        let what = format!("news from IMAP server {} during IDLE", self.session.peer);
        let mut codes = Vec::new();
        loop {
            let incoming = match self.session.decode_buffered()? {
                Some(incoming) => incoming,
                None => {
                    if self.session.unsolicited_pushed != seen {
                        return Ok(IdleEvent::Changed);
                    }
                    let waited = timer.now().duration_since(start).unwrap_or_default();
                    let Some(left) = max.checked_sub(waited).filter(|d| !d.is_zero()) else {
                        return Ok(IdleEvent::TimedOut);
                    };
                    if self.session.fill(&what, left).await?.is_err() {
                        return Ok(IdleEvent::TimedOut);
                    }
                    continue;
                }
            };
            let response = match incoming {
                Incoming::Response(response) => response,
                Incoming::Skipped(err) => {
                    self.session.push_unsolicited(Unsolicited::Warning(format!(
                        "unreadable response during IDLE: {err}"
                    )));
                    continue;
                }
            };
            match self.session.dispatch(response, nothing, &mut codes) {
                Step::Tagged(st) => {
                    if let Some(st) = self.session.complete(&tag, st) {
                        self.tag = None;
                        return ended(st);
                    }
                }
                Step::Bye(text) => {
                    self.tag = None;
                    return Err(self.session.bye_error("IDLE", &text));
                }
                Step::Data(_) | Step::Continue(_) | Step::Handled => {}
            }
        }
    }

    /// Takes the session's queued unsolicited events.
    pub fn take_unsolicited(&mut self) -> Vec<Unsolicited> {
        self.session.take_unsolicited()
    }

    /// Ends IDLE (`DONE`) and waits for the server's OK.
    pub async fn done(mut self) -> Result<()> {
        let Some(tag) = self.tag.take() else { return Ok(()) };
        self.session.idling = None;
        self.session.write_line(&CommandEncoder::done(), "DONE").await?;
        let mut out = Completion::default();
        let st = self.session.wait_tagged(&tag, "IDLE", nothing, &mut out).await?;
        if st.status == Status::Ok {
            Ok(())
        } else {
            Err(self.session.failed("IDLE", None, st, Side::Read))
        }
    }
}

fn ended(st: StatusResponse) -> Result<IdleEvent> {
    Ok(IdleEvent::Ended(st.text))
}
