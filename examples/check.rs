//! Placeholder until the IMAP session lands.
fn main() {}
