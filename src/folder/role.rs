//! PLACEHOLDER on branch `sync` only: replaced by the folder helper's role module at merge.

/// The system role of a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// INBOX
    Inbox,
    /// Sent
    Sent,
}
