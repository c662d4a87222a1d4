//! Spawning: the one place where routectl starts a process. Every child gets its own process
//! group (killed on timeout, on SIGINT/SIGTERM to routectl, or when a stream is dropped), stdin
//! written from its own thread, stdout and stderr drained by their own threads with a bound, so
//! a large batch can never deadlock and a runaway child cannot fill memory; its exit is waited
//! for through a pidfd.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::Output;
use crate::error::CommandError;

mod held;
pub use held::{Held, Ready, Started, release_all, start_held};

/// A long-running child whose stdout is read line by line; its process group is killed when
/// the `Stream` is dropped. stdin is closed and stderr discarded, so it can never block on them.
#[derive(Debug)]
pub struct Stream {
    /// The command line, for messages.
    pub argv: String,
    child: std::process::Child,
    stdout: Option<LineReader<std::process::ChildStdout>>,
    alive: std::sync::Arc<std::sync::Mutex<bool>>,
    /// The child's group in the registry of live children, so a SIGINT/SIGTERM to routectl
    /// reaches it too; left when the `Stream` is dropped (after [`Stream::stop`]).
    _live: Option<Registered>,
}

/// The longest line a [`Stream`] returns; a longer one is [`Line::TooLong`].
pub const MAX_LINE: usize = 64 * 1024;

/// What [`Stream::read_line`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line, without its newline and trailing white space (invalid UTF-8 replaced).
    Text(String),
    /// [`MAX_LINE`] bytes without a newline: dropped, and so is the rest of that line. An
    /// endless line gives one `TooLong` per [`MAX_LINE`] bytes, so every call returns.
    TooLong,
}

/// Reads lines into one buffer of [`MAX_LINE`] bytes made once: a line that does not fit is
/// reported and discarded as it comes, never stored, whatever the writer sends.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Within a line already reported as too long: its bytes up to the newline are dropped.
    discarding: bool,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    /// A reader of `inner` with a buffer of [`MAX_LINE`] bytes.
    pub fn new(inner: R) -> LineReader<R> {
        LineReader::with_capacity(inner, MAX_LINE)
    }

    /// A reader whose lines are at most `capacity - 1` bytes (plus the newline).
    pub fn with_capacity(inner: R, capacity: usize) -> LineReader<R> {
        LineReader {
            inner,
            buf: vec![0; capacity.max(2)].into_boxed_slice(),
            start: 0,
            end: 0,
            discarding: false,
            eof: false,
        }
    }

    /// The next line; `None` at the end of input or on a read error. Reads at most the
    /// buffer's size before returning a line or [`Line::TooLong`].
    pub fn read_line(&mut self) -> Option<Line> {
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line = &pending[..i];
                let text = (!self.discarding).then(|| text(line));
                self.start += i + 1;
                self.discarding = false;
                match text {
                    Some(t) => return Some(Line::Text(t)),
                    // The tail of a line reported as too long.
                    None => continue,
                }
            }
            if self.eof {
                let last = (self.start < self.end && !self.discarding)
                    .then(|| Line::Text(text(&self.buf[self.start..self.end])));
                self.start = self.end;
                return last;
            }
            if self.end - self.start == self.buf.len() {
                // Full without a newline: drop it all, and the rest of the line as it comes.
                self.start = 0;
                self.end = 0;
                self.discarding = true;
                return Some(Line::TooLong);
            }
            if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
        }
    }
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).trim_end().to_string()
}

/// Kills a [`Stream`]'s process group from another thread (a reader blocked on its stdout
/// returns at once). Never signals a group that was already reaped.
#[derive(Debug, Clone)]
pub struct Killer {
    pgid: Option<Pid>,
    alive: std::sync::Arc<std::sync::Mutex<bool>>,
}

impl Killer {
    /// Whether the child has not been reaped yet.
    pub fn is_alive(&self) -> bool {
        *self.alive.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Kills the group if its leader has not been reaped yet.
    pub fn kill(&self) {
        let alive = self.alive.lock().unwrap_or_else(|p| p.into_inner());
        if *alive {
            kill_group(self.pgid, Signal::KILL);
        }
    }
}

impl Stream {
    /// The next line of stdout (without its newline); `None` at the end (the child exited).
    /// An over-long line is skipped (see [`Stream::read_line`] to be told about it).
    pub fn next_line(&mut self) -> Option<String> {
        loop {
            match self.read_line()? {
                Line::Text(t) => return Some(t),
                Line::TooLong => {}
            }
        }
    }

    /// The next line of stdout, or word that a line is longer than [`MAX_LINE`]; `None` at the
    /// end (the child exited). Memory is fixed: see [`LineReader`].
    pub fn read_line(&mut self) -> Option<Line> {
        self.stdout.as_mut()?.read_line()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A handle that kills the child from another thread.
    pub fn killer(&self) -> Killer {
        Killer {
            pgid: child_pid(&self.child),
            alive: self.alive.clone(),
        }
    }

    /// Kills the child's process group and reaps it.
    pub fn stop(&mut self) {
        let mut alive = self.alive.lock().unwrap_or_else(|p| p.into_inner());
        if *alive {
            kill_group(child_pid(&self.child), Signal::KILL);
            let _ = self.child.wait();
            *alive = false;
        }
        self.stdout = None;
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a local long-running command (`lxc monitor --type=lifecycle --format=json`).
pub fn spawn_stream(argv: &[String]) -> Result<Stream, CommandError> {
    let line = argv.join(" ");
    let mut child = start(argv, &line, Stdio::null(), Stdio::null())?;
    let stdout = child.stdout.take().map(LineReader::new);
    let live = child_pid(&child).map(Registered::new);
    Ok(Stream {
        argv: line,
        child,
        stdout,
        alive: std::sync::Arc::new(std::sync::Mutex::new(true)),
        _live: live,
    })
}

/// Runs a local command (for example `lxc list --format json`) with a timeout.
pub fn run_local(argv: &[String], timeout: Duration) -> Result<Output, CommandError> {
    run_process(argv, None, timeout)
}

/// [`run_shown`], the command line shown as it is.
pub(super) fn run_process(
    argv: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, CommandError> {
    run_shown(argv, &argv.join(" "), stdin, timeout)
}

/// Spawns `argv` in its own process group, feeds stdin, collects stdout and stderr, and kills
/// the group when `timeout` passes; `line` is the command line messages show.
pub(super) fn run_shown(
    argv: &[String],
    line: &str,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, CommandError> {
    let line = line.to_string();
    let input = if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = start(argv, &line, input, Stdio::piped())?;
    let pid = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
    let _live = pid.map(Registered::new);

    let writer = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => {
            let bytes = bytes.to_vec();
            // A child that exits early closes the pipe: that is its answer, not our error.
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_reader = std::thread::spawn(move || read_bounded(out_pipe.as_mut(), MAX_OUTPUT));
    let err_reader = std::thread::spawn(move || read_bounded(err_pipe.as_mut(), MAX_OUTPUT));
    let exit = Exit::watch(child);

    let (timed_out, interrupted) = watch_child(&exit, pid, timeout);
    let status = exit.status();
    if timed_out || interrupted {
        // Descendants may still hold the pipes: make sure the group is gone before joining.
        kill_group(pid, Signal::KILL);
    }
    let (stdout, out_cut) = out_reader.join().unwrap_or_default();
    let (stderr, err_cut) = err_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    if let Some(w) = writer {
        let _ = w.join();
    }
    let end = if timed_out {
        End::TimedOut(timeout)
    } else if out_cut || err_cut {
        End::Cut
    } else {
        End::Exited(status)
    };
    end.output(line, stdout, stderr)
}

/// How a child's run ended, in the order it is judged: its timeout, then the output cap, then
/// its exit status.
enum End {
    TimedOut(Duration),
    Cut,
    Exited(Option<std::process::ExitStatus>),
}

impl End {
    /// The child's [`Output`], or the error its end is.
    fn output(self, line: String, stdout: Vec<u8>, stderr: String) -> Result<Output, CommandError> {
        match self {
            End::TimedOut(timeout) => Err(CommandError::Timeout {
                argv: line,
                millis: timeout.as_millis() as u64,
                attempts: 1,
            }),
            End::Cut => Err(CommandError::OutputTooLarge {
                argv: line,
                limit_mib: MAX_OUTPUT >> 20,
            }),
            End::Exited(None) => Err(CommandError::Spawn {
                argv: line,
                message: "could not wait for the process".to_string(),
            }),
            End::Exited(Some(status)) => Ok(Output {
                argv: line,
                status: status.code(),
                stdout,
                stderr,
            }),
        }
    }
}

/// Starts `argv` in its own process group (stdout piped; `line` is the command line messages
/// show), unless a SIGINT/SIGTERM stops new commands: the one preamble of every spawn.
fn start(argv: &[String], line: &str, stdin: Stdio, stderr: Stdio) -> Result<Child, CommandError> {
    if !crate::interrupt::may_start() {
        return Err(CommandError::Interrupted {
            argv: line.to_string(),
            signal: crate::interrupt::signal_name().to_string(),
        });
    }
    let Some((program, args)) = argv.split_first() else {
        return Err(CommandError::Spawn {
            argv: line.to_string(),
            message: "empty command".to_string(),
        });
    };
    Command::new(program)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| CommandError::Spawn {
            argv: line.to_string(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("`{program}` was not found on PATH")
            } else {
                e.to_string()
            },
        })
}

/// Waits for the child's `exit`, in short steps: a SIGINT/SIGTERM to
/// routectl is passed on to the child's group (also here, in case it came between spawn and
/// registration) and the child gets `interrupt::GRACE` to end before SIGKILL; at `timeout` the
/// group gets SIGTERM, then SIGKILL. routectl never leaves a child running behind. Returns
/// whether it timed out and whether it was interrupted.
fn watch_child(exit: &Exit, pid: Option<Pid>, timeout: Duration) -> (bool, bool) {
    let started = Instant::now();
    let mut interrupted_at: Option<Instant> = None;
    loop {
        if exit.within(Duration::from_millis(50)) {
            break;
        }
        if let Some(sig) = crate::interrupt::signal() {
            match interrupted_at {
                None => {
                    if let Some(sig) = Signal::from_named_raw(sig) {
                        kill_group(pid, sig);
                    }
                    interrupted_at = Some(Instant::now());
                }
                Some(at) if at.elapsed() >= crate::interrupt::GRACE => {
                    kill_group(pid, Signal::KILL);
                }
                Some(_) => {}
            }
        }
        if started.elapsed() >= timeout && interrupted_at.is_none() {
            kill_group(pid, Signal::TERM);
            if !exit.within(Duration::from_millis(500)) {
                kill_group(pid, Signal::KILL);
            }
            return (true, false);
        }
    }
    (false, interrupted_at.is_some())
}

/// A child's exit, waited for in steps: through a pidfd (readable once the child exits), or,
/// where the kernel has none, from a thread blocked in `wait`.
enum Exit {
    Pidfd(std::process::Child, std::os::fd::OwnedFd),
    Thread(
        std::thread::JoinHandle<std::io::Result<std::process::ExitStatus>>,
        mpsc::Receiver<()>,
    ),
    /// Reaped already (a held child once it is finished or released).
    Done,
}

impl Exit {
    fn watch(mut child: std::process::Child) -> Exit {
        let pidfd = child_pid(&child).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        match pidfd {
            // The child is not reaped until `status`, so its PID is still its own.
            Some(fd) => Exit::Pidfd(child, fd),
            None => {
                let (tx, rx) = mpsc::channel();
                let waiter = std::thread::spawn(move || {
                    let status = child.wait();
                    let _ = tx.send(());
                    status
                });
                Exit::Thread(waiter, rx)
            }
        }
    }

    /// Whether the child has exited, waiting at most `step` for it.
    fn within(&self, step: Duration) -> bool {
        match self {
            Exit::Pidfd(_, fd) => {
                use rustix::event::{PollFd, PollFlags, Timespec};
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                let t = Timespec {
                    tv_sec: step.as_secs() as i64,
                    tv_nsec: i64::from(step.subsec_nanos()),
                };
                // An interrupted poll (a signal to routectl) is a step without news.
                matches!(rustix::event::poll(&mut fds, Some(&t)), Ok(n) if n > 0)
            }
            Exit::Thread(_, rx) => matches!(
                rx.recv_timeout(step),
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected)
            ),
            Exit::Done => true,
        }
    }

    /// The child's exit status (reaping it; after a kill this returns once it is gone).
    fn status(self) -> Option<std::process::ExitStatus> {
        match self {
            Exit::Pidfd(mut child, _) => child.wait().ok(),
            Exit::Thread(waiter, _) => waiter.join().ok().and_then(|s| s.ok()),
            Exit::Done => None,
        }
    }
}

/// The most routectl reads from one command's stdout or stderr (a node with 100,000 routes
/// prints about 12 MiB).
pub const MAX_OUTPUT: usize = 256 << 20;

/// Reads a pipe to its end, keeping at most `limit` bytes (the rest is drained, so the child
/// never blocks on a full pipe); says whether anything was cut.
pub(super) fn read_bounded(pipe: Option<&mut impl Read>, limit: usize) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let Some(p) = pipe else {
        return (buf, false);
    };
    let _ = p.take(limit as u64).read_to_end(&mut buf);
    let rest = std::io::copy(p, &mut std::io::sink()).unwrap_or(0);
    (buf, rest > 0)
}

/// A child's pid, as a process group id.
fn child_pid(child: &std::process::Child) -> Option<Pid> {
    i32::try_from(child.id()).ok().and_then(Pid::from_raw)
}

/// The process groups of the children running now (each child leads its own group).
static LIVE: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// A child's group in [`LIVE`] while it runs.
#[derive(Debug)]
struct Registered(i32);

impl Registered {
    fn new(pid: Pid) -> Registered {
        let raw = pid.as_raw_nonzero().get();
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).insert(raw);
        Registered(raw)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// Sends signal number `signal` to the process group of every running child (see
/// [`crate::interrupt`]).
pub fn forward(signal: i32) {
    let Some(signal) = Signal::from_named_raw(signal) else {
        return;
    };
    let groups: Vec<i32> = LIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .collect();
    for raw in groups {
        kill_group(Pid::from_raw(raw), signal);
    }
}

/// How many children are running now.
pub fn live_children() -> usize {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Signals the process group made for a child (its pid is the group's id). The group may be
/// gone already: that is the goal, not an error.
fn kill_group(pid: Option<Pid>, signal: Signal) {
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes a call.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn all(data: &[u8], capacity: usize, step: usize) -> Vec<Line> {
        let mut r = LineReader::with_capacity(Trickle { data, step }, capacity);
        std::iter::from_fn(|| r.read_line()).collect()
    }

    fn t(s: &str) -> Line {
        Line::Text(s.to_string())
    }

    #[test]
    fn reads_lines_whatever_the_chunks() {
        let data = b"one\r\ntwo\n\nlast without newline";
        for step in [1, 3, 7, 100] {
            assert_eq!(
                all(data, 64, step),
                [t("one"), t("two"), t(""), t("last without newline")],
                "step {step}"
            );
        }
    }

    #[test]
    fn an_over_long_line_is_reported_and_dropped_to_its_newline() {
        // Capacity 8: lines of up to 7 bytes fit.
        let mut data = b"1234567\nab\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 30));
        data.extend(b"\nok\nxxxxxxxxxxxx");
        for step in [1, 5, 8, 100] {
            let got = all(&data, 8, step);
            let texts: Vec<&Line> = got.iter().filter(|l| **l != Line::TooLong).collect();
            assert_eq!(texts, [&t("1234567"), &t("ab"), &t("ok")], "step {step}");
            // One report per full buffer: 30 bytes, then 12 at the end.
            let too_long = got.iter().filter(|l| **l == Line::TooLong).count();
            assert_eq!(too_long, 3 + 1, "step {step}: {got:?}");
            assert_eq!(got[2], Line::TooLong);
        }
    }

    #[test]
    fn an_endless_line_returns_at_every_call_in_a_fixed_buffer() {
        let mut r = LineReader::with_capacity(std::io::repeat(b'x'), 1024);
        for _ in 0..10_000 {
            assert_eq!(r.read_line(), Some(Line::TooLong));
        }
        assert_eq!(r.buf.len(), 1024);
    }

    #[test]
    fn a_stream_of_an_endless_line_stays_small() {
        let mut s = spawn_stream(&[
            "sh".into(),
            "-c".into(),
            "head -c 50000000 /dev/zero; echo; echo after".into(),
        ])
        .unwrap();
        let mut too_long = 0;
        let after = loop {
            match s.read_line() {
                Some(Line::TooLong) => too_long += 1,
                Some(Line::Text(t)) => break t,
                None => panic!("no line after the long one"),
            }
        };
        assert_eq!(after, "after");
        assert!(too_long >= 50_000_000 / MAX_LINE, "{too_long}");
        // The endless line was never kept: skipped by `next_line`, too.
        let mut s = spawn_stream(&[
            "sh".into(),
            "-c".into(),
            "head -c 1000000 /dev/zero; echo; echo after".into(),
        ])
        .unwrap();
        assert_eq!(s.next_line().as_deref(), Some("after"));
    }
}
