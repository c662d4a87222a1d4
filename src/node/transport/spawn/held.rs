//! A child held open between two requests: started with its stdin open, read until its output
//! says it is ready for more (a read is complete), then either given the rest of its input and
//! waited for (the write that follows the read, in the same process), or released: its stdin is
//! closed, and a script that reads EOF where it waited for a request does nothing more.
//!
//! The same bounds hold as for any child: its own process group, registered so that a
//! SIGINT/SIGTERM reaches it, a timeout for each of the two phases (none while routectl itself
//! is planning between them), stdout and stderr drained by their own threads and cut at
//! [`MAX_OUTPUT`], stdin written from its own thread.

use std::io::{Read, Write};
use std::process::{ChildStdin, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::{End, Exit, MAX_OUTPUT, Registered, kill_group, start, watch_child};
use crate::error::CommandError;
use crate::node::transport::Output;

/// What the stdout reader thread passes on.
enum Chunk {
    Data(Vec<u8>),
    /// More than [`MAX_OUTPUT`] bytes came: the rest is drained and dropped.
    Cut,
}

/// How a held child says its first part is complete.
#[derive(Debug, Clone, Copy)]
pub enum Ready {
    /// It prints this line (a newline, the text, a newline); the first part is what came
    /// before that newline.
    Marker(&'static str),
    /// It has printed this many lines; they are the first part.
    Lines(usize),
}

/// Looks for the end of the first part as stdout comes, each byte examined once (a read of a
/// large table comes in many chunks).
struct Scan {
    ready: Ready,
    scanned: usize,
    lines: usize,
}

impl Scan {
    /// `(end, rest)`: the first part is `out[..end]`, the second starts at `out[rest..]`.
    fn find(&mut self, out: &[u8]) -> Option<(usize, usize)> {
        let found = match self.ready {
            Ready::Marker(m) => {
                let marker = format!("\n{m}\n");
                let from = self.scanned.saturating_sub(marker.len() - 1);
                out[from..]
                    .windows(marker.len())
                    .position(|w| w == marker.as_bytes())
                    .map(|at| (from + at, from + at + marker.len()))
            }
            Ready::Lines(n) => {
                let mut found = None;
                for (i, b) in out[self.scanned..].iter().enumerate() {
                    if *b == b'\n' {
                        self.lines += 1;
                        if self.lines == n {
                            let end = self.scanned + i + 1;
                            found = Some((end, end));
                            break;
                        }
                    }
                }
                found
            }
        };
        self.scanned = out.len();
        found
    }
}

/// How a held child's first phase ended.
pub enum Started {
    /// It exited (or failed) before it was ready: its whole output, as for any command.
    Done(Output),
    /// It is ready for more: the read's output (status 0), and the child.
    Held(Output, Held),
}

/// A child waiting for the rest of its input.
pub struct Held {
    line: String,
    pid: Option<Pid>,
    exit: Exit,
    stdin: Option<ChildStdin>,
    out: mpsc::Receiver<Chunk>,
    /// stdout received after the read's part.
    pending: Vec<u8>,
    err: Arc<Mutex<Vec<u8>>>,
    err_seen: usize,
    err_reader: Option<std::thread::JoinHandle<bool>>,
    _live: Option<Registered>,
}

/// Starts `argv` (`line` is what messages show), writes `first` to its stdin and keeps stdin
/// open; reads its stdout until `ready` finds the end of the first part, or the child ends, or
/// `timeout` passes (the group is then killed: [`CommandError::Timeout`]).
pub fn start_held(
    argv: &[String],
    line: &str,
    first: &[u8],
    ready: Ready,
    timeout: Duration,
) -> Result<Started, CommandError> {
    let mut child = start(argv, line, Stdio::piped(), Stdio::piped())?;
    let pid = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
    let live = pid.map(Registered::new);
    let mut stdin = child.stdin.take();
    let (tx, out) = mpsc::channel();
    let stdout = child.stdout.take();
    std::thread::spawn(move || read_chunks(stdout, &tx));
    let err = Arc::new(Mutex::new(Vec::new()));
    let err_reader = {
        let err = Arc::clone(&err);
        let pipe = child.stderr.take();
        std::thread::spawn(move || read_shared(pipe, &err))
    };
    // A first part larger than a pipe holds would block here on a child that does not read
    // it; routectl's first parts are a few lines.
    if let Some(p) = stdin.as_mut()
        && !first.is_empty()
    {
        let _ = p.write_all(first);
    }
    let held = Held {
        line: line.to_string(),
        pid,
        exit: Exit::watch(child),
        stdin,
        out,
        pending: Vec::new(),
        err,
        err_seen: 0,
        err_reader: Some(err_reader),
        _live: live,
    };
    held.first_phase(ready, timeout)
}

impl Held {
    /// Reads until the first part is complete (see [`start_held`]).
    fn first_phase(mut self, ready: Ready, timeout: Duration) -> Result<Started, CommandError> {
        let started = Instant::now();
        let mut scan = Scan {
            ready,
            scanned: 0,
            lines: 0,
        };
        loop {
            if let Some((end, rest)) = scan.find(&self.pending) {
                let stdout = self.pending[..end].to_vec();
                self.pending.drain(..rest);
                let stderr = self.stderr_so_far();
                let out = Output {
                    argv: self.line.clone(),
                    status: Some(0),
                    stdout,
                    stderr,
                };
                return Ok(Started::Held(out, self));
            }
            if let Some(sig) = crate::interrupt::signal() {
                if let Some(s) = Signal::from_named_raw(sig) {
                    kill_group(self.pid, s);
                }
                let line = self.line.clone();
                self.kill();
                return Err(CommandError::Interrupted {
                    argv: line,
                    signal: crate::interrupt::signal_name().to_string(),
                });
            }
            let Some(left) = timeout.checked_sub(started.elapsed()) else {
                let line = self.line.clone();
                self.kill();
                return Err(CommandError::Timeout {
                    argv: line,
                    millis: timeout.as_millis() as u64,
                    attempts: 1,
                });
            };
            match self.out.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(Chunk::Data(d)) => self.pending.extend_from_slice(&d),
                // More than MAX_OUTPUT before the read even ended: the rest is drained unseen,
                // so the end would never be found; the child is ended now, not at the timeout.
                Ok(Chunk::Cut) => {
                    let line = self.line.clone();
                    self.kill();
                    return Err(CommandError::OutputTooLarge {
                        argv: line,
                        limit_mib: MAX_OUTPUT >> 20,
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // stdout closed before the child was ready: it is ending; its whole output.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let left = timeout.saturating_sub(started.elapsed());
                    return self.finish_with(&[], left).map(Started::Done);
                }
            }
        }
    }

    /// Gives the child the rest of its input (`input`, then EOF) and waits at most `timeout`
    /// for it to end: the output of this second part, as for any command.
    pub fn finish(self, input: &[u8], timeout: Duration) -> Result<Output, CommandError> {
        self.finish_with(input, timeout)
    }

    fn finish_with(mut self, input: &[u8], timeout: Duration) -> Result<Output, CommandError> {
        let writer = self.stdin.take().map(|mut pipe| {
            let bytes = input.to_vec();
            // A child that exits early closes the pipe: that is its answer, not our error.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            })
        });
        let (timed_out, interrupted) = watch_child(&self.exit, self.pid, timeout);
        if timed_out || interrupted {
            kill_group(self.pid, Signal::KILL);
        }
        // Every chunk until the stdout pipe closes (all of the group is gone or done).
        let mut cut = false;
        while let Ok(chunk) = self.out.recv() {
            match chunk {
                Chunk::Data(d) => self.pending.extend_from_slice(&d),
                Chunk::Cut => cut = true,
            }
        }
        let err_cut = self
            .err_reader
            .take()
            .map(|h| h.join().unwrap_or(false))
            .unwrap_or(false);
        let stderr = self.stderr_so_far();
        if let Some(w) = writer {
            let _ = w.join();
        }
        let line = std::mem::take(&mut self.line);
        let end = if timed_out {
            End::TimedOut(timeout)
        } else if cut || err_cut {
            End::Cut
        } else {
            End::Exited(std::mem::replace(&mut self.exit, Exit::Done).status())
        };
        end.output(line, std::mem::take(&mut self.pending), stderr)
    }

    /// The stderr not yet returned.
    fn stderr_so_far(&mut self) -> String {
        let err = self.err.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(err.get(self.err_seen..).unwrap_or_default());
        self.err_seen = err.len();
        text.into_owned()
    }

    /// Ends the child at once (its whole group), and reaps it.
    fn kill(&mut self) {
        self.stdin = None;
        kill_group(self.pid, Signal::KILL);
        let exit = std::mem::replace(&mut self.exit, Exit::Done);
        let _ = exit.status();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !matches!(self.exit, Exit::Done) {
            self.kill();
        }
    }
}

/// Releases held children: closes every stdin first (each child then ends on its own), then
/// waits for them together, at most `timeout` in all; a child still running then has its group
/// killed.
pub fn release_all(held: Vec<Held>, timeout: Duration) {
    let mut held = held;
    for h in &mut held {
        h.stdin = None;
    }
    let deadline = Instant::now() + timeout;
    for mut h in held {
        let left = deadline.saturating_duration_since(Instant::now());
        let (timed_out, _) = watch_child(&h.exit, h.pid, left.max(Duration::from_millis(1)));
        if timed_out {
            kill_group(h.pid, Signal::KILL);
        }
        let exit = std::mem::replace(&mut h.exit, Exit::Done);
        let _ = exit.status();
    }
}

/// Passes a pipe's bytes on as they come, at most [`MAX_OUTPUT`] of them (the rest drained).
fn read_chunks(pipe: Option<impl Read>, tx: &mpsc::Sender<Chunk>) {
    let Some(mut p) = pipe else {
        return;
    };
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match p.read(&mut buf) {
            Ok(0) => return,
            Ok(n) if total + n <= MAX_OUTPUT => {
                total += n;
                if tx.send(Chunk::Data(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Ok(_) => {
                let _ = tx.send(Chunk::Cut);
                let _ = std::io::copy(&mut p, &mut std::io::sink());
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Collects a pipe into `into`, at most [`MAX_OUTPUT`] bytes; whether anything was cut.
fn read_shared(pipe: Option<impl Read>, into: &Mutex<Vec<u8>>) -> bool {
    let Some(mut p) = pipe else {
        return false;
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match p.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let mut v = into.lock().unwrap_or_else(|e| e.into_inner());
                if v.len() + n > MAX_OUTPUT {
                    drop(v);
                    let _ = std::io::copy(&mut p, &mut std::io::sink());
                    return true;
                }
                v.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: Ready = Ready::Marker("--ready--");

    fn scan(ready: Ready, chunks: &[&[u8]]) -> Option<(usize, usize)> {
        let mut s = Scan {
            ready,
            scanned: 0,
            lines: 0,
        };
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(c);
            if let Some(f) = s.find(&out) {
                return Some(f);
            }
        }
        None
    }

    #[test]
    fn the_end_of_the_first_part_is_found_across_chunks_and_only_there() {
        let m = Ready::Marker("--routectl-held--");
        assert_eq!(scan(m, &[b"abc\n--routectl-held--\nrest"]), Some((3, 22)));
        assert_eq!(
            scan(m, &[b"abc\n--routec", b"tl-held--", b"\nx"]),
            Some((3, 22))
        );
        assert_eq!(scan(m, &[b"abc\n\n--routectl-held--\n"]), Some((4, 23)));
        assert_eq!(scan(m, &[b"abc\n--routectl-held--"]), None);
        assert_eq!(scan(Ready::Lines(1), &[b"[]", b"\n[{}]\n"]), Some((3, 3)));
        assert_eq!(scan(Ready::Lines(2), &[b"[]\n[", b"{}]\n"]), Some((8, 8)));
        assert_eq!(scan(Ready::Lines(2), &[b"[]\n[{}"]), None);
    }

    fn sh(script: &str) -> Vec<String> {
        ["sh", "-c", script].iter().map(|s| s.to_string()).collect()
    }

    const ECHO: &str = "read -r first; echo \"read $first\"; printf '\\n--ready--\\n'; \
                        IFS= read -r a || { echo released >&2; exit 0; }; echo \"got $a\"; cat; exit 3";

    #[test]
    fn a_held_child_answers_its_first_part_then_takes_the_rest() {
        let t = Duration::from_secs(5);
        let Ok(Started::Held(out, held)) = start_held(&sh(ECHO), "echo", b"one\n", MARKER, t)
        else {
            panic!("not held");
        };
        assert_eq!(out.stdout, b"read one\n");
        assert_eq!(out.status, Some(0));
        let rest = held.finish(b"two\nthree\n", t).unwrap();
        assert_eq!(rest.stdout, b"got two\nthree\n");
        assert_eq!(rest.status, Some(3));
    }

    #[test]
    fn a_released_child_ends_on_its_own_and_one_that_does_not_is_killed() {
        let t = Duration::from_secs(5);
        let Ok(Started::Held(_, held)) = start_held(&sh(ECHO), "echo", b"one\n", MARKER, t) else {
            panic!("not held");
        };
        let deaf = "echo x; printf '\\n--ready--\\n'; exec sleep 60";
        let Ok(Started::Held(_, stubborn)) = start_held(&sh(deaf), "deaf", b"", MARKER, t) else {
            panic!("not held");
        };
        let started = Instant::now();
        release_all(vec![held, stubborn], Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_child_that_ends_or_hangs_before_it_is_ready_is_a_plain_result_or_a_timeout() {
        let t = Duration::from_millis(400);
        match start_held(&sh("echo nope >&2; exit 7"), "fails", b"", MARKER, t) {
            Ok(Started::Done(out)) => {
                assert_eq!(out.status, Some(7));
                assert_eq!(out.stderr, "nope\n");
            }
            _ => panic!("expected the child's own end"),
        }
        let started = Instant::now();
        let r = start_held(&sh("exec sleep 60"), "hangs", b"", MARKER, t);
        assert!(matches!(r, Err(CommandError::Timeout { .. })));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
