//! One account: the [`Migrator`] trait a host implements, the [`SyncState`] it persists, and
//! the content [`Fingerprint`]s that keep a lost state from causing duplicates.

mod fingerprint;
mod migrator;
mod state;

pub use fingerprint::{Fingerprint, FingerprintCounts};
pub use migrator::{Event, Message, Migrator, SkipReason, SourceId, TargetFolder};
pub use state::{FolderState, Pop3State, RawName, STATE_FORMAT, SyncState};
