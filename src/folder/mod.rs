//! Folder names: decoding, system-folder roles, sanitising for the target, and layouts.
//!
//! Everything here is a pure function of data, with no I/O: the engine feeds in what the
//! source and the target listed, and gets back a [`FolderPlan`] saying, for every source
//! folder, which target folder it goes to (and its [`Role`]) or why it is skipped. Users
//! never have to rename folders before moving: names with `+ * \ / % " & .`, the other
//! side's delimiter, non-ASCII text or legacy charsets all get a readable, valid, unique
//! target name, stable from one run to the next.
//!
//! | item | holds |
//! |---|---|
//! | [`ListedFolder`], [`SourceListing`], [`ProviderHints`] | what the source listed (raw names, delimiter, attributes, namespaces) |
//! | [`Role`], [`role_from_attributes`], [`role_for_name`] | system folders: SPECIAL-USE, XLIST, multilingual names |
//! | [`TargetRules`], [`TargetPath`] | what names the target accepts, and sanitising |
//! | [`TargetListing`], [`PlanOptions`], [`Layout`], [`FolderPlan`] | the plan |
//!
//! ```
//! use mailmigrate::folder::{
//!     Decision, FolderPlan, Layout, ListedFolder, PlanOptions, Role, SkipReason, SourceListing, TargetListing,
//!     TargetPath, TargetRules,
//! };
//! use mailmigrate::imap::codec::MailboxName;
//!
//! // Gmail, as LIST shows it.
//! let gmail = SourceListing::new([
//!     ListedFolder::new("INBOX", Some('/'), ["\\HasNoChildren"]),
//!     ListedFolder::new("[Gmail]", Some('/'), ["\\HasChildren", "\\Noselect"]),
//!     ListedFolder::new("[Gmail]/All Mail", Some('/'), ["\\All", "\\HasNoChildren"]),
//!     ListedFolder::new("[Gmail]/Sent Mail", Some('/'), ["\\HasNoChildren", "\\Sent"]),
//!     ListedFolder::new("Work/C++ & C#", Some('/'), ["\\HasNoChildren"]),
//! ]);
//! // Into a fresh Maildir, everything under the old address.
//! let target = TargetListing::new(TargetRules::maildir());
//! let options = PlanOptions { layout: Layout::UnderAddress { root: "old@example.com".into() }, ..PlanOptions::default() };
//! let plan = FolderPlan::build(&gmail, &target, &options);
//!
//! let decision = |raw: &'static str| &plan.entry(&MailboxName::from_raw(raw)).unwrap().decision;
//! let root = "old@example．com";
//! assert_eq!(decision("INBOX"), &Decision::Copy { path: TargetPath::new([root, "Inbox"]), role: Some(Role::Inbox) });
//! assert_eq!(decision("[Gmail]/Sent Mail").path(), Some(&TargetPath::new([root, "Sent"])));
//! assert_eq!(decision("[Gmail]/All Mail"), &Decision::Skip(SkipReason::Virtual(Role::All)));
//! assert_eq!(decision("[Gmail]"), &Decision::Skip(SkipReason::NoselectEmpty));
//! assert_eq!(decision("Work/C++ & C#").path(), Some(&TargetPath::new([root, "Work", "C++ & C#"])));
//! ```

mod plan;
mod role;
mod sanitize;
mod source;
mod tree;

pub use plan::{Decision, FolderPlan, Layout, PlanEntry, PlanOptions, SkipReason, TargetListing};
pub use role::{Evidence, Role, role_for_name, role_from_attributes};
pub use sanitize::{
    DEFAULT_FORBIDDEN, DEFAULT_FORBIDDEN_LEADING, MIN_COMPONENT_BYTES, TargetPath, TargetRules,
};
pub use source::{ListedFolder, ProviderHints, SourceListing};
