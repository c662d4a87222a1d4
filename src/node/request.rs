//! What routectl asks of a node, as typed values: a [`ReadRequest`] (every route, optionally
//! the addresses, the last-applied record and its binding, the network-manager facts) and its
//! [`ReadReply`]; an [`ApplyRequest`] (route operations, then a file that persists them and the
//! manager's reload, then the last-applied record, then the read-back) and its [`ApplyReply`];
//! a [`ProbeRequest`] (one ping of a path) and a [`WatchRequest`] (what a watch follows).
//! Defined here, beside nothing that executes them: each way of reaching a node carries each
//! out in one round trip. The exec transports render a read or an apply as one fixed script and
//! parse its one output (`crate::node::transport::read_script`,
//! `crate::node::transport::apply_script`, the apply's files on stdin, length- and
//! digest-checked), and a probe or a watch as its one command line
//! (`crate::node::transport::commands`); host access executes them natively, through netlink
//! and the files of the container's root (`crate::node::host`). No other code builds a command
//! line for a node.
//!
//! Nothing is half written: the script stores its whole input first and does nothing unless the
//! input has the length (and, where `sha256sum` exists, the digest) routectl announced, so a
//! routectl killed while sending leaves the node as it was. Each file is written to a fresh
//! temporary file beside it and renamed over it. The record is written last, and only when every
//! route operation (and the drop-in) succeeded, so that it never claims what is not there.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::core::change::RouteOp;
use crate::core::link::Link;
use crate::core::persist::NodeFacts;
use crate::core::route::Route;
use crate::error::{CommandError, ParseError};

/// What to do with one file of the node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FileChange {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Replace it with these bytes (atomically).
    Write(Vec<u8>),
    /// Remove it.
    Remove,
}

impl FileChange {
    /// The bytes to write (none for keep and remove).
    pub fn bytes(&self) -> &[u8] {
        match self {
            FileChange::Write(b) => b,
            _ => &[],
        }
    }

    /// `keep`, `write` or `remove`.
    pub fn mode(&self) -> &'static str {
        match self {
            FileChange::Keep => "keep",
            FileChange::Write(_) => "write",
            FileChange::Remove => "remove",
        }
    }

    /// Whether anything is to be done.
    pub fn is_change(&self) -> bool {
        !matches!(self, FileChange::Keep)
    }
}

/// The file through which a node's network manager keeps routectl's routes, and what to do
/// with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedFile {
    /// Its path in the node.
    pub path: String,
    /// What to do with it.
    pub change: FileChange,
    /// The mode a written file gets (owned by the user the write runs as: root).
    pub mode: u32,
    /// Whether the manager must be told to load it (`networkctl reload`) after a change.
    pub networkd_reload: bool,
}

/// One write to a node, carried out in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyRequest {
    /// The route operations, in order, each tried whatever became of the one before (as
    /// `ip -force -batch` does): an exec transport sends them as `ip -batch` lines
    /// ([`RouteOp::line`]), host access as netlink requests.
    pub routes: Vec<RouteOp>,
    /// The persisted file (a networkd drop-in, followed by `networkctl reload` when changed; a
    /// NetworkManager dispatcher script; an ifupdown hook). Done only when every route operation
    /// succeeded.
    pub persisted: Option<PersistedFile>,
    /// The last-applied record's path in the node and what to do with it. Done last, only when
    /// everything before it succeeded.
    pub record: Option<(String, FileChange)>,
    /// Whether to read every route back afterwards.
    pub read_back: bool,
}

/// What a node answered to an [`ApplyRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReply {
    /// What ran, for messages.
    pub argv: String,
    /// The exit status: 0 when everything asked for was done.
    pub status: Option<i32>,
    /// What the route operations (and the writes) said; a failing operation N (counted from 1)
    /// as its message and `Command failed -:N`, as `ip -batch` reports line N.
    pub stderr: String,
    /// The read-back: every route of every table after the write, or why the answer could not
    /// be read (`None`: not read).
    pub read_back: Option<Result<Vec<Route>, ParseError>>,
    /// Whether the persisted file was written or removed (and networkd reloaded for a drop-in).
    pub persisted_done: bool,
    /// Whether the record was written or removed.
    pub record_done: bool,
}

impl ApplyReply {
    /// Takes the outcome of writing the record at `path` outside the script (on this host, or
    /// in a container's root from the host): done, or a failure that says which file.
    pub fn record_written(&mut self, path: &str, written: Result<(), String>) {
        match written {
            Ok(()) => self.record_done = true,
            Err(e) => {
                self.status = Some(1);
                self.stderr.push_str(&format!("routectl: {path}: {e}\n"));
            }
        }
    }

    /// The [`CommandError::Status`] that describes a reply that did not exit 0.
    pub fn status_error(&self) -> CommandError {
        CommandError::Status {
            argv: self.argv.clone(),
            status: self.status,
            stderr: self.stderr.clone(),
        }
    }
}

/// A random-enough temporary name: the clock, the process and a counter, hashed.
pub fn temp_suffix() -> String {
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

/// The route operations as `ip -batch` reads them, one line each.
pub fn batch_text(ops: &[RouteOp]) -> String {
    let mut text = String::with_capacity(ops.len() * 80);
    for op in ops {
        text.push_str(&op.line());
        text.push('\n');
    }
    text
}

/// One read of a node, carried out in one round trip: every route of every table (both
/// families), and beside them what the request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadRequest {
    /// The last-applied record's path in the node, read with the binding that ties it to the
    /// node as it is now (boot, PID 1's start, network namespace). `None` where routectl keeps
    /// the record on this host (network namespaces): the read is then routes alone.
    pub record: Option<String>,
    /// The interface whose network-manager facts (networkd's link state and network file,
    /// NetworkManager's, ifupdown's) and routectl's files for them are wanted (`None`: none).
    pub facts_of: Option<String>,
    /// Also every interface with its addresses, and the route table in the snapshot format
    /// (what `show` reads and `show --save` stores).
    pub addresses: bool,
    /// Also the route table in the snapshot format (implied by `addresses`).
    pub snapshot: bool,
}

/// What a node answered to a [`ReadRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReply {
    /// What ran, for messages.
    pub argv: String,
    /// Every route, in the order the kernel dumps them; or why the answer could not be read
    /// ([`ParseError::Empty`]: nothing was printed, a read to try again).
    pub routes: Result<Vec<Route>, ParseError>,
    /// For a request with `addresses`: the interfaces and their addresses.
    pub links: Option<Vec<Link>>,
    /// For a request with `addresses` or `snapshot`: the route table in the snapshot format,
    /// what `ip -N -d -j route show table all` prints (see `docs/json.md`); empty otherwise.
    pub snapshot: Vec<u8>,
    /// The binding line (`boot=… pid1=… netns=…`) when anything of it could be told.
    pub binding: Option<String>,
    /// The record's bytes (empty: there is none, or none was asked for).
    pub record: Vec<u8>,
    /// For a request with `facts_of`: the facts, or why they are unknown; `None` when the
    /// answer holds none.
    pub facts: Option<Result<NodeFacts, String>>,
}

/// One ping of a path from inside a node (`check`'s probes, a canary's proofs): from an address
/// of the node to an address of another. The exec transports run `ping` in the node; host
/// access hands it to its exec transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRequest {
    /// The source address (an address of the node the ping runs in).
    pub from: IpAddr,
    /// The destination.
    pub to: IpAddr,
}

/// What a watch follows (`reconcile --watch`). Host access follows a node's changes over
/// netlink in its namespace; an exec transport starts a long-running command for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchRequest {
    /// The route and address changes of one node, as they happen.
    Changes {
        /// The node's instance (container, namespace, host).
        instance: String,
    },
    /// The instance lifecycle events of every project of the daemon (LXD, Incus).
    Lifecycle,
}
