//! Writing a node's last-applied record: a fixed script given the record on stdin, through
//! the transport (never a shell string built from topology values).

use crate::core::record::{self, LastApplied};
use crate::core::topology::Node;
use crate::error::NodeError;
use crate::node::transport::{Invocation, Transport};

/// The script that stores a node's last-applied record, given on stdin: `$1` the record's path,
/// `$2` a temporary name routectl chose (random). The directory must be a real directory owned
/// by the user the script runs as; the temporary file is created with O_EXCL (`set -C`) and
/// renamed over the record (removed on any failure). With no stdin content, the record is
/// removed. It writes nothing else: the record's binding is computed by the read, never stored
/// in the node's state.
pub const WRITE_SCRIPT: &str = "set -eu; f=$1; d=${f%/*}; t=$d/.$2; umask 077; \
for x in \"${d%/*}\" \"$d\"; do [ -d \"$x\" ] || mkdir -m 0700 \"$x\"; \
if [ -L \"$x\" ] || [ ! -O \"$x\" ]; then echo \"routectl: $x is not a directory of mine\" >&2; exit 1; fi; done; \
set -C; cat >\"$t\"; set +C; trap 'rm -f -- \"$t\"' EXIT; \
if [ ! -s \"$t\" ]; then rm -f -- \"$f\"; exit 0; fi; \
mv -f -- \"$t\" \"$f\"";

/// Stores `record` (or removes the node's record, with `None`) through the transport: one
/// command, the record as data on stdin (for a network namespace it lands on this host, where
/// the read looks for it).
pub fn write_record(
    t: &dyn Transport,
    node: &Node,
    record: Option<&LastApplied>,
) -> Result<(), NodeError> {
    let body = match record {
        Some(r) => {
            let mut b = serde_json::to_vec_pretty(r).unwrap_or_default();
            b.push(b'\n');
            b
        }
        None => Vec::new(),
    };
    let inv = Invocation {
        program: "sh".to_string(),
        args: vec![
            "-c".to_string(),
            WRITE_SCRIPT.to_string(),
            "sh".to_string(),
            record::record_path(&node.instance),
            format!("last-applied.{}", temp_suffix()),
        ],
        stdin: Some(body),
    };
    let out = t.run(&node.instance, &inv)?;
    out.success().map(|_| ()).map_err(NodeError::Command)
}

/// A random-enough temporary suffix: the clock, the process and a counter, hashed.
fn temp_suffix() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    crate::core::hex(&h.finalize()[..8])
}
