//! SIGINT and SIGTERM while routectl writes: stop starting work, pass the signal on to the
//! running children, wait for them, and say what is known.
//!
//! [`install`] starts a thread that receives the signals through `signal-hook` (no handler code
//! of our own runs in signal context). On a signal it records it and forwards it to the process
//! group of every running child (through the function it is given:
//! [`crate::node::transport::forward`], which keeps the registry of live children); a second
//! signal forwards SIGKILL. From then on [`crate::node::transport`] starts no new command, except the reads
//! allowed again by [`allow_reads`] for the final read-back. Each running command is waited for
//! (bounded: [`GRACE`], then SIGKILL to its group), so routectl exits, and releases its lock, only
//! after every child it started is gone.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// How long a child gets to end after the signal was forwarded, before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static READS: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Starts handling SIGINT and SIGTERM (idempotent). Until this is called the default actions
/// apply (a read-only command may simply die: nothing it started writes). `forward` passes a
/// signal on to the running children (the caller gives [`crate::node::transport::forward`], so
/// this module depends on no layer).
pub fn install(forward: fn(i32)) -> std::io::Result<()> {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        match signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ]) {
            Ok(mut signals) => {
                std::thread::spawn(move || {
                    for sig in signals.forever() {
                        let first = SIGNAL
                            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok();
                        forward(if first {
                            sig
                        } else {
                            signal_hook::consts::SIGKILL
                        });
                    }
                });
            }
            Err(e) => result = Err(e),
        }
    });
    result
}

/// The signal received, if any.
pub fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// True once SIGINT or SIGTERM was received.
pub fn requested() -> bool {
    signal().is_some()
}

/// The signal's name.
pub fn signal_name() -> &'static str {
    match signal() {
        Some(signal_hook::consts::SIGINT) => "SIGINT",
        Some(signal_hook::consts::SIGTERM) => "SIGTERM",
        Some(_) => "a signal",
        None => "nothing",
    }
}

/// Lets commands start again after an interruption, for reading back what is true.
pub fn allow_reads() {
    READS.store(true, Ordering::SeqCst);
}

/// True when a command may be started now.
pub fn may_start() -> bool {
    !requested() || READS.load(Ordering::SeqCst)
}
