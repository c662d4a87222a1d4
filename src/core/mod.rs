//! The pure core: values and decisions, no I/O. Everything here can be tested with plain
//! values and captured `ip -j` output.

pub mod access;
pub mod applied;
pub mod canary;
pub mod change;
pub mod check;
pub mod desired;
pub mod diff;
pub mod discover;
pub mod fit;
pub mod guard;
pub mod link;
pub mod persist;
pub mod plan;
pub mod reconcile;
pub mod record;
pub mod route;
pub mod saved;
pub mod show;
pub mod text;
pub mod topology;

/// Lower-case hex of bytes (of a SHA-256 digest, for example).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
