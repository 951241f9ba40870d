//! One account: the [`Migrator`] trait a host implements, the [`SyncState`] it persists, and
//! the content [`Fingerprint`]s that keep a lost state from causing duplicates.

mod engine;
mod fingerprint;
mod migrator;
mod report;
mod state;

#[cfg(feature = "tokio")]
pub use engine::TcpConnector;
pub use engine::{Connector, Engine, EngineOptions, Retry, Source, Watch};
pub use fingerprint::{Fingerprint, FingerprintCounts};
pub use migrator::{Event, Message, Migrator, SkipReason, SourceId, TargetFolder};
pub use report::{Counts, FolderReport, Report};
pub use state::{FolderState, Pop3State, RawName, STATE_FORMAT, SyncState};
