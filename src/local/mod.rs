//! Files on the machine routectl runs on: the lock, and reading and writing local files.

pub mod files;
pub mod lock;
pub mod runtime;
