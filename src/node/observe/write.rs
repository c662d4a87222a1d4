//! Writing a node's last-applied record on its own (a canary rollback puts one back; an apply
//! whose fused write could not store it): one [`ApplyRequest`] with the record alone, through
//! the transport (never a shell string built from topology values).

use crate::core::record::{self, LastApplied};
use crate::core::topology::Node;
use crate::error::NodeError;
use crate::node::request::{ApplyRequest, FileChange};
use crate::node::transport::Transport;

/// The bytes a record is stored as.
pub fn record_bytes(record: &LastApplied) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(record).unwrap_or_default();
    b.push(b'\n');
    b
}

/// Stores `record` (or removes the node's record, with `None`) through the transport: one
/// round trip, the record as data (for a network namespace it lands on this host, where the read
/// looks for it).
pub fn write_record(
    t: &dyn Transport,
    node: &Node,
    record: Option<&LastApplied>,
) -> Result<(), NodeError> {
    let change = match record {
        Some(r) => FileChange::Write(record_bytes(r)),
        None => FileChange::Remove,
    };
    let req = ApplyRequest {
        record: Some((record::record_path(&node.instance), change)),
        ..ApplyRequest::default()
    };
    let out = t.apply(&node.instance, &req)?;
    if out.status == Some(0) && out.record_done {
        Ok(())
    } else {
        Err(NodeError::Command(out.status_error()))
    }
}
