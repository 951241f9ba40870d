//! Folder names: decoding, system-folder roles, sanitising for the target, and layouts.
