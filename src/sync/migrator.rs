use std::future::Future;

use bytes::Bytes;

use crate::folder::{Role, TargetListing, TargetRules};
use crate::imap::codec::{Flag, InternalDate, MailboxName};
use crate::sync::{Fingerprint, FingerprintCounts, SyncState};
use crate::{Result, Uid};

/// Where a message goes: a folder of the target, as planned from the source folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetFolder {
    /// Path components, already sanitised for the target (e.g. `["Projects", "2024"]`).
    pub path: Vec<String>,
    /// The system role, when the folder is one (INBOX, Sent, ...).
    pub role: Option<Role>,
}

/// Which source message a [`Message`] is, stable across runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceId {
    /// A message of an IMAP folder.
    Imap {
        /// The source folder, raw.
        folder: MailboxName,
        /// The folder's UIDVALIDITY.
        uid_validity: u32,
        /// The message's UID.
        uid: Uid,
    },
    /// A message of a POP3 inbox.
    Pop3 {
        /// Its UIDL (or the TOP-header fingerprint standing in for it).
        uidl: String,
    },
}

/// One message to store.
#[derive(Debug, Clone)]
pub struct Message {
    /// The message exactly as the source holds it.
    pub raw: Bytes,
    /// Its flags and keywords, without `\Recent`.
    pub flags: Vec<Flag>,
    /// When the source received it (INTERNALDATE); `None` if the source did not say.
    pub internal_date: Option<InternalDate>,
    /// Where it comes from.
    pub source: SourceId,
    /// Its content identity: [`Fingerprint::of_message`] of `raw`, computed once by the
    /// engine so a target need not scan the message again.
    pub fingerprint: Fingerprint,
}

/// Why a message or folder was not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The target already holds it (found by fingerprint after a UIDVALIDITY change or a lost state).
    AlreadyInTarget,
    /// Deleted at the source while the migration ran.
    VanishedAtSource,
    /// Larger than the configured maximum message size.
    TooLarge {
        /// Its size in bytes.
        size: u64,
    },
    /// Older than the configured since-date.
    BeforeSinceDate,
    /// The folder is excluded (virtual duplicate, caller's pattern, not selectable).
    FolderExcluded(String),
}

/// What the engine reports while it works; the host shows it or records it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A folder is about to be copied: how much the source holds and how much is left.
    FolderStarted {
        /// Source folder, decoded for display.
        source: String,
        /// Target folder.
        target: TargetFolder,
        /// Messages in the source folder.
        known: u64,
        /// Of those, how many are still to copy.
        remaining: u64,
        /// Bytes still to copy, when known.
        remaining_bytes: u64,
    },
    /// One message was stored.
    Copied {
        /// Source folder, decoded for display.
        source: String,
        /// Its size in bytes.
        bytes: u64,
    },
    /// One message or folder was skipped.
    Skipped {
        /// Source folder, decoded for display.
        source: String,
        /// Why.
        reason: SkipReason,
    },
    /// One message failed and will be retried on the next pass.
    Failed {
        /// Source folder, decoded for display.
        source: String,
        /// What went wrong.
        error: String,
    },
    /// Copying a folder broke off for a passing reason (the connection dropped, a timeout,
    /// the server asked to come back later); it is tried again after `delay`, resuming where
    /// it stopped.
    Retrying {
        /// Source folder, decoded for display; empty when listing the folders failed, or
        /// when a whole watch-mode pass failed (then the next poll tries again).
        source: String,
        /// What went wrong.
        error: String,
        /// Which retry this is (1 for the first).
        attempt: u32,
        /// How long the engine waits first.
        delay: std::time::Duration,
    },
    /// A folder pass finished.
    FolderFinished {
        /// Source folder, decoded for display.
        source: String,
    },
}

/// The host's side of a migration: where messages and state go.
///
/// A mail platform implements this to wire the engine to its own storage; the crate ships
/// `store::Maildir` and `store::Imap`. Methods take `&self` because the engine copies
/// several folders at once; use interior mutability where needed. Futures are `Send` so the
/// engine can run on a multi-threaded executor.
///
/// **Idempotence.** The engine saves state after every batch. After a crash it may offer the
/// messages that were in flight again (at most one batch per folder): `store` must recognise
/// them by [`Message::source`] and not store them twice. The built-in stores do.
///
/// ```
/// use std::sync::Mutex;
/// use mailmigrate::sync::{Message, Migrator, SourceId, SyncState, TargetFolder};
/// use mailmigrate::Result;
///
/// /// Keeps everything in memory: a toy host.
/// #[derive(Default)]
/// struct InMemory {
///     folders: Mutex<Vec<(TargetFolder, Vec<Message>)>>,
///     state: Mutex<Option<SyncState>>,
/// }
///
/// impl Migrator for InMemory {
///     async fn prepare_folder(&self, folder: &TargetFolder) -> Result<()> {
///         let mut folders = self.folders.lock().unwrap();
///         if !folders.iter().any(|(f, _)| f == folder) {
///             folders.push((folder.clone(), Vec::new()));
///         }
///         Ok(())
///     }
///
///     async fn store(&self, folder: &TargetFolder, message: Message) -> Result<()> {
///         let mut folders = self.folders.lock().unwrap();
///         let (_, messages) = folders.iter_mut().find(|(f, _)| f == folder).expect("prepared");
///         // Idempotent: a message offered again after a crash is recognised by its source.
///         if !messages.iter().any(|m| m.source == message.source) {
///             messages.push(message);
///         }
///         Ok(())
///     }
///
///     async fn load_state(&self) -> Result<Option<SyncState>> {
///         Ok(self.state.lock().unwrap().clone())
///     }
///
///     async fn save_state(&self, state: &SyncState) -> Result<()> {
///         *self.state.lock().unwrap() = Some(state.clone());
///         Ok(())
///     }
/// }
/// ```
pub trait Migrator: Send + Sync {
    /// Makes sure `folder` exists in the target (creating it, with its role, if needed).
    fn prepare_folder(&self, folder: &TargetFolder) -> impl Future<Output = Result<()>> + Send;

    /// Stores one message in `folder` (which [`Migrator::prepare_folder`] has prepared), with
    /// its flags and internal date. Must be idempotent per [`Message::source`].
    fn store(&self, folder: &TargetFolder, message: Message) -> impl Future<Output = Result<()>> + Send;

    /// Stores several messages in `folder`; returns one result per message, in order. The
    /// default stores them one by one; targets that can pipeline (IMAP with LITERAL+)
    /// override it.
    fn store_batch(
        &self,
        folder: &TargetFolder,
        messages: Vec<Message>,
    ) -> impl Future<Output = Vec<Result<()>>> + Send {
        async move {
            let mut results = Vec::with_capacity(messages.len());
            for message in messages {
                results.push(self.store(folder, message).await);
            }
            results
        }
    }

    /// The target's naming rules and its existing folders, so the folder plan finds the
    /// target's own system folders and produces names it accepts. The default: an IMAP-like
    /// target with `/` as delimiter and no folders yet.
    fn target_listing(&self) -> impl Future<Output = Result<TargetListing>> + Send {
        async { Ok(TargetListing::new(TargetRules::imap('/')?)) }
    }

    /// The account's saved state, `None` before the first run.
    fn load_state(&self) -> impl Future<Output = Result<Option<SyncState>>> + Send;

    /// Persists the account's state. Called after every batch; make it atomic.
    fn save_state(&self, state: &SyncState) -> impl Future<Output = Result<()>> + Send;

    /// The fingerprints of the messages `folder` already holds, used when the source's
    /// UIDVALIDITY changed or the state was lost. `Ok(None)` (the default) means the target
    /// cannot tell; the engine then copies everything the state does not cover, which can
    /// duplicate messages after a lost state, so implement it if you can.
    fn fingerprints(
        &self,
        folder: &TargetFolder,
    ) -> impl Future<Output = Result<Option<FingerprintCounts>>> + Send {
        let _ = folder;
        async { Ok(None) }
    }

    /// Hears progress. The default ignores it.
    fn event(&self, event: &Event) {
        let _ = event;
    }
}
