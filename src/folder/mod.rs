//! Folder names: decoding, system-folder roles, sanitising for the target, and layouts.

mod role;
pub use role::Role;
