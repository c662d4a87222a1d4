//! The live progress of reading nodes on a terminal: one line on stderr, rewritten in place,
//! that counts the nodes read and names those still awaited (and for how long), and a line of
//! its own when a node's read is tried again. The line disappears when the reads end.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::CommandError;
use crate::node::observe::RETRY;
use crate::node::request::{ApplyReply, ApplyRequest, ProbeRequest, ReadReply, ReadRequest};
use crate::node::transport::{HostRecord, Invocation, Output, Transport};

/// How long reads may take before the live line appears.
const QUIET_FOR: Duration = Duration::from_secs(1);
/// How many awaited nodes the line names.
const NAMED: usize = 3;

/// What the reads are at: nodes started and not finished, nodes finished, notes to print.
#[derive(Default)]
pub(crate) struct Progress {
    state: Mutex<State>,
    finished: AtomicBool,
    /// Node names by instance (what a transport is given).
    names: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    awaited: BTreeMap<String, Instant>,
    done: usize,
    notes: Vec<String>,
    timeouts: BTreeMap<String, usize>,
}

impl Progress {
    /// The progress of reading `nodes`.
    pub(crate) fn new<'a>(
        nodes: impl IntoIterator<Item = &'a crate::core::topology::Node>,
    ) -> Self {
        Progress {
            names: nodes
                .into_iter()
                .map(|n| (n.instance.clone(), n.name.clone()))
                .collect(),
            ..Progress::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A node's read starts.
    pub(crate) fn start(&self, node: &str) {
        self.lock().awaited.insert(node.to_string(), Instant::now());
    }

    /// A node's read ended (well or not).
    pub(crate) fn end(&self, node: &str) {
        let mut s = self.lock();
        s.awaited.remove(node);
        s.done += 1;
    }

    /// A command on `instance` timed out: a read is tried again ([`RETRY`]), which is said.
    fn timed_out(&self, instance: &str, millis: u64) {
        let name = self.names.get(instance).map_or(instance, String::as_str);
        let mut s = self.lock();
        let n = s.timeouts.entry(instance.to_string()).or_insert(0);
        *n += 1;
        if *n <= RETRY.timeout_retries {
            let note = format!(
                "routectl: {} did not answer within {} s; trying again",
                crate::core::text::escape(name),
                millis as f64 / 1000.0
            );
            s.notes.push(note);
        }
    }

    /// The live line: `routectl: read 3/4 nodes; waiting for worker-1 (12 s)`.
    fn line(&self, total: usize) -> (String, Vec<String>) {
        let mut s = self.lock();
        let notes = std::mem::take(&mut s.notes);
        let mut waiting: Vec<(&String, &Instant)> = s.awaited.iter().collect();
        waiting.sort_by_key(|(_, at)| **at);
        let mut line = format!("routectl: read {}/{total} nodes", s.done);
        if let Some((_, oldest)) = waiting.first() {
            let names: Vec<String> = waiting
                .iter()
                .take(NAMED)
                .map(|(n, _)| crate::core::text::escape(n).into_owned())
                .collect();
            let more = waiting.len().saturating_sub(NAMED);
            line.push_str(&format!(
                "; waiting for {}{} ({} s)",
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                },
                oldest.elapsed().as_secs()
            ));
        }
        (line, notes)
    }

    /// Paints the line every 100 ms once the reads take longer than [`QUIET_FOR`] (notes at
    /// once), until [`Progress::finish`]; then clears it.
    pub(crate) fn paint(&self, total: usize) {
        let started = Instant::now();
        let mut shown = false;
        while !self.finished.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let (line, notes) = self.line(total);
            for n in notes {
                crate::console::err(&format!("\r\x1b[K{n}\n"));
            }
            if started.elapsed() > QUIET_FOR {
                crate::console::err(&format!("\r\x1b[K{line}"));
                shown = true;
            }
        }
        if shown {
            crate::console::err("\r\x1b[K");
        }
    }

    /// The reads are over.
    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }
}

/// A transport that tells [`Progress`] when a command timed out.
pub(crate) struct Watched<'a> {
    pub(crate) inner: &'a dyn Transport,
    pub(crate) progress: &'a Progress,
}

impl Transport for Watched<'_> {
    fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        let out = self.inner.run(instance, inv);
        if let Err(CommandError::Timeout { millis, .. }) = &out {
            self.progress.timed_out(instance, *millis);
        }
        out
    }

    fn commands_run(&self) -> usize {
        self.inner.commands_run()
    }

    fn sees_node_files(&self) -> bool {
        self.inner.sees_node_files()
    }

    fn records_on_host(&self) -> bool {
        self.inner.records_on_host()
    }

    fn host_record(&self, instance: &str, record_path: &str) -> HostRecord {
        self.inner.host_record(instance, record_path)
    }

    fn read(&self, instance: &str, req: &ReadRequest) -> Result<ReadReply, CommandError> {
        let reply = self.inner.read(instance, req);
        if let Err(CommandError::Timeout { millis, .. }) = &reply {
            self.progress.timed_out(instance, *millis);
        }
        reply
    }

    fn apply(&self, instance: &str, req: &ApplyRequest) -> Result<ApplyReply, CommandError> {
        self.inner.apply(instance, req)
    }

    fn probe(&self, instance: &str, req: &ProbeRequest) -> Result<Output, CommandError> {
        self.inner.probe(instance, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_nodes_awaited_longest_first() {
        let p = Progress::default();
        for n in ["w0", "w1", "w2", "w3", "w4"] {
            p.start(n);
        }
        p.end("w0");
        p.timed_out("w3", 10_000);
        p.timed_out("w3", 10_000);
        let (line, notes) = p.line(5);
        assert_eq!(
            line,
            "routectl: read 1/5 nodes; waiting for w1, w2, w3 and 1 more (0 s)"
        );
        // Only the first timeout is tried again, so only it is said.
        assert_eq!(
            notes,
            ["routectl: w3 did not answer within 10 s; trying again"]
        );
        assert!(p.line(5).1.is_empty());
    }
}
