//! Messages on stderr that can never end a command: `eprintln!` panics when stderr is closed or
//! full (`2>/dev/full`, `2>&1 | head -1`); these write, and drop (and count) what cannot be
//! written.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes that failed because stderr was closed or full.
pub static STDERR_LOST: AtomicUsize = AtomicUsize::new(0);

/// Writes `text` to stderr; a failure is counted, never an error or a panic.
pub fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    if e.write_all(text.as_bytes())
        .and_then(|_| e.flush())
        .is_err()
    {
        STDERR_LOST.fetch_add(1, Ordering::Relaxed);
    }
}

/// [`err`] with a newline.
pub fn errln(text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    err(&line);
}
