//! The only code that spawns processes: commands inside nodes (`lxc exec`, `incus exec`,
//! network namespaces, `ssh`) and the few local commands routectl needs (`lxc list`).
//!
//! Arguments are always argv elements, never a shell string. Every command has a timeout after
//! which its process group is killed. stdin is written from its own thread and stdout/stderr are
//! drained by their own threads, so a large batch can never deadlock.
//!
//! ssh is the one exception it cannot avoid: ssh hands the remote side one command line, which
//! the remote user's shell splits again. routectl's remote commands are fixed `ip`/`ping`
//! arguments and validated addresses, and each word is quoted for a POSIX shell
//! ([`remote_command`]), so the remote side sees exactly the argv routectl meant.
//!
//! ssh runs with `BatchMode=yes` (never a prompt) and routectl's own connection sharing
//! (`ControlMaster=auto`, `ControlPersist`, a `ControlPath` in its private runtime directory), so
//! that one handshake per node serves plan, apply and the plan after it. Host-key checking is
//! never touched: the user's ssh configuration decides, and a changed key is an error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::core::topology::Topology;
use crate::core::topology::TransportKind;
use crate::error::{CommandError, SshFailure};

/// A command to run inside a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program inside the node (`ip`, `ping`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Bytes for its stdin (stdin is closed when `None`).
    pub stdin: Option<Vec<u8>>,
}

impl Invocation {
    /// `ip ARGS…`.
    pub fn ip(args: Vec<String>) -> Invocation {
        Invocation {
            program: "ip".to_string(),
            args,
            stdin: None,
        }
    }

    /// Adds stdin.
    pub fn with_stdin(mut self, stdin: Vec<u8>) -> Invocation {
        self.stdin = Some(stdin);
        self
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The full command line, for messages.
    pub argv: String,
    /// Exit status (`None` when killed by a signal).
    pub status: Option<i32>,
    /// stdout.
    pub stdout: Vec<u8>,
    /// stderr (lossily decoded).
    pub stderr: String,
}

impl Output {
    /// The output, or a [`CommandError::Status`] when the command did not exit 0.
    pub fn success(self) -> Result<Output, CommandError> {
        if self.status == Some(0) {
            Ok(self)
        } else {
            Err(CommandError::Status {
                argv: self.argv,
                status: self.status,
                stderr: self.stderr,
            })
        }
    }

    /// The [`CommandError::Status`] that describes this output (for one that did not exit 0).
    pub fn status_error(&self) -> CommandError {
        CommandError::Status {
            argv: self.argv.clone(),
            status: self.status,
            stderr: self.stderr.clone(),
        }
    }
}

/// Runs commands inside nodes. The real implementation is [`Process`]; tests use fakes.
pub trait Transport: Sync {
    /// Runs `inv` inside the node addressed as `instance`. A non-zero exit is returned as an
    /// [`Output`], not an error: `ip -batch -force` exits 1 yet prints its read-back.
    fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError>;

    /// How many commands this transport has run.
    fn commands_run(&self) -> usize {
        0
    }

    /// Whether commands run in the node's own system (its own /run, /etc and /proc), so that a
    /// read can also tell what manages its interfaces. False for network namespaces, which share
    /// the host's files and have no network manager of their own.
    fn sees_node_files(&self) -> bool {
        false
    }

    /// Whether routectl keeps a node's last-applied record on this host rather than in the
    /// node: true for network namespaces, which share this host's /run. The read is then `ip`
    /// alone, and [`Transport::host_record`] reads the record and its binding without a process.
    fn records_on_host(&self) -> bool {
        false
    }

    /// The last-applied record at `record_path` on this host and the binding of `instance`, for
    /// a transport whose [`Transport::records_on_host`] is true.
    fn host_record(&self, _instance: &str, _record_path: &str) -> HostRecord {
        HostRecord {
            binding: None,
            record: Ok(Vec::new()),
        }
    }
}

/// A node's last-applied record as kept on this host, and what binds it to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    /// What the node is now (see [`netns_record`]); `None` when that cannot be told.
    pub binding: Option<String>,
    /// The record's bytes (empty: there is none), or why it could not be read.
    pub record: Result<Vec<u8>, String>,
}

/// The largest last-applied record read (a record lists one node's routes).
pub const MAX_RECORD_BYTES: u64 = 4 << 20;

/// Where the kernel tells its boot id.
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Where `ip netns` keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// The record of network namespace `name` and its binding, read on this host without a
/// process: the boot id (in `boot_id`) and the identity of `netns_dir/name`, the namespace's
/// file (its inode and ctime: a namespace deleted and created again under the same name is
/// another file, even where the kernel reuses the inode number). The record is read without
/// following a symbolic link, and at most [`MAX_RECORD_BYTES`].
pub fn netns_record(netns_dir: &Path, boot_id: &Path, name: &str, record: &Path) -> HostRecord {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string(boot_id).unwrap_or_default();
    let binding = std::fs::metadata(netns_dir.join(name)).ok().map(|m| {
        format!(
            "boot={} netns={} ctime={}.{:09}",
            boot.trim(),
            m.ino(),
            m.ctime(),
            m.ctime_nsec()
        )
    });
    HostRecord {
        binding,
        record: read_record(record),
    }
}

fn read_record(path: &Path) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(format!(
            "{} is larger than {MAX_RECORD_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

/// How long an idle ssh connection master stays up for the next command (Ansible's default).
pub const SSH_CONTROL_PERSIST_SECS: u64 = 60;

/// What the real transport needs to know besides its kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// ssh: the client configuration file (`ssh -F FILE`); ssh's defaults without it.
    pub ssh_config: Option<PathBuf>,
    /// ssh: the private directory of connection masters; `None` runs without sharing.
    pub control_dir: Option<PathBuf>,
    /// lxc/incus: the project of every instance that has one (`--project`).
    pub projects: BTreeMap<String, String>,
}

impl Reach {
    /// The projects of a topology's nodes (the ssh settings are added by the caller, which
    /// knows where the topology file is and owns the runtime directory).
    pub fn projects_of(t: &Topology) -> BTreeMap<String, String> {
        t.nodes
            .iter()
            .filter_map(|n| n.project.clone().map(|p| (n.instance.clone(), p)))
            .collect()
    }
}

/// The real transport: spawns `lxc`, `incus`, `ip` or `ssh` found on PATH.
/// A boxed transport (what `--access` picks at run time) is a transport.
impl<T: Transport + ?Sized> Transport for Box<T> {
    fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        (**self).run(instance, inv)
    }

    fn commands_run(&self) -> usize {
        (**self).commands_run()
    }

    fn sees_node_files(&self) -> bool {
        (**self).sees_node_files()
    }

    fn records_on_host(&self) -> bool {
        (**self).records_on_host()
    }

    fn host_record(&self, instance: &str, record_path: &str) -> HostRecord {
        (**self).host_record(instance, record_path)
    }
}

/// The real transport: spawns `lxc`, `incus` or `ip` found on PATH.
#[derive(Debug)]
pub struct Process {
    kind: TransportKind,
    timeout: Duration,
    verbose: bool,
    reach: Reach,
    count: AtomicUsize,
}

impl Process {
    /// A transport of a kind, with a per-command timeout; `verbose` prints every command.
    pub fn new(kind: TransportKind, timeout: Duration, verbose: bool) -> Process {
        Process {
            kind,
            timeout,
            verbose,
            reach: Reach::default(),
            count: AtomicUsize::new(0),
        }
    }

    /// The same transport with projects and ssh settings.
    pub fn with_reach(mut self, reach: Reach) -> Process {
        self.reach = reach;
        self
    }

    /// The ssh options routectl always passes (before the destination).
    fn ssh_options(&self) -> Vec<String> {
        let mut argv = Vec::with_capacity(16);
        if let Some(f) = &self.reach.ssh_config {
            argv.push("-F".to_string());
            argv.push(f.display().to_string());
        }
        let connect = self.timeout.as_secs().max(1);
        let mut opt = |o: String| {
            argv.push("-o".to_string());
            argv.push(o);
        };
        opt("BatchMode=yes".to_string());
        opt(format!("ConnectTimeout={connect}"));
        match &self.reach.control_dir {
            Some(dir) => {
                opt("ControlMaster=auto".to_string());
                opt(format!("ControlPersist={SSH_CONTROL_PERSIST_SECS}"));
                // %C: a hash of local host, remote host, port and user (short, no path tricks).
                opt(format!("ControlPath={}/%C", dir.display()));
            }
            None => opt("ControlMaster=no".to_string()),
        }
        argv.push("-T".to_string());
        argv
    }

    /// The argv that runs `inv` inside `instance`.
    pub fn argv(&self, instance: &str, inv: &Invocation) -> Vec<String> {
        let mut argv: Vec<String> = Vec::with_capacity(inv.args.len() + 6);
        match self.kind {
            TransportKind::Lxc | TransportKind::Incus => {
                argv.push(self.kind.name().to_string());
                argv.push("exec".to_string());
                if let Some(p) = self.reach.projects.get(instance) {
                    argv.push("--project".to_string());
                    argv.push(p.clone());
                }
                argv.extend(
                    [instance, "--force-noninteractive", "--"]
                        .iter()
                        .map(|s| s.to_string()),
                );
                argv.push(inv.program.clone());
            }
            TransportKind::Ssh => {
                argv.push("ssh".to_string());
                argv.extend(self.ssh_options());
                argv.push("--".to_string());
                argv.push(instance.to_string());
                argv.push(remote_command(&inv.program, &inv.args));
                return argv;
            }
            // `ip -n NS` costs one exec less than `ip netns exec NS ip`.
            TransportKind::Netns if inv.program == "ip" => {
                argv.extend(["ip", "-n", instance].iter().map(|s| s.to_string()));
            }
            TransportKind::Netns => {
                argv.extend(
                    ["ip", "netns", "exec", instance]
                        .iter()
                        .map(|s| s.to_string()),
                );
                argv.push(inv.program.clone());
            }
        }
        argv.extend(inv.args.iter().cloned());
        argv
    }
}

/// A command line for messages: routectl's own fixed scripts are named, not spelled out (`-v`
/// prints them in full).
fn shown(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a == crate::node::observe::READ_SCRIPT {
                "'<read script>'"
            } else if a == crate::node::observe::WRITE_SCRIPT {
                "'<record script>'"
            } else if a == crate::node::networkd::WRITE_SCRIPT {
                "'<drop-in script>'"
            } else if a == crate::node::networkd::REMOVE_SCRIPT {
                "'<drop-in removal script>'"
            } else {
                a.as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Transport for Process {
    fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        let argv = self.argv(instance, inv);
        if self.verbose {
            let mut msg = format!("+ {}\n", argv.join(" "));
            if let Some(stdin) = &inv.stdin {
                for line in String::from_utf8_lossy(stdin).lines() {
                    msg.push_str(&format!("  | {line}\n"));
                }
            }
            crate::console::err(&msg);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let out = run_process(&argv, inv.stdin.as_deref(), self.timeout)?;
        if self.kind == TransportKind::Ssh && out.status == Some(255) {
            // ssh's own failures exit 255 (so does `ip` for a bad argument, which routectl does
            // not write): the node is unknown, never an empty table.
            return Err(CommandError::Ssh {
                argv: out.argv,
                failure: SshFailure::classify(&out.stderr),
                stderr: out.stderr,
            });
        }
        Ok(out)
    }

    fn commands_run(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn sees_node_files(&self) -> bool {
        matches!(
            self.kind,
            TransportKind::Lxc | TransportKind::Incus | TransportKind::Ssh
        )
    }

    fn records_on_host(&self) -> bool {
        self.kind == TransportKind::Netns
    }

    fn host_record(&self, instance: &str, record_path: &str) -> HostRecord {
        netns_record(
            Path::new(NETNS_DIR),
            Path::new(BOOT_ID),
            instance,
            Path::new(record_path),
        )
    }
}

/// One remote command line for ssh: every word quoted for a POSIX shell unless it is made only
/// of characters no shell treats specially.
pub fn remote_command(program: &str, args: &[String]) -> String {
    let mut line = shell_word(program);
    for a in args {
        line.push(' ');
        line.push_str(&shell_word(a));
    }
    line
}

fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

impl Process {
    /// Starts `inv` inside `instance` as a long-running command whose stdout is read as it
    /// comes (`ip -j monitor route address` for `reconcile --watch`).
    pub fn stream(&self, instance: &str, inv: &Invocation) -> Result<Stream, CommandError> {
        let argv = self.argv(instance, inv);
        if self.verbose {
            eprintln!("+ {} (watching)", argv.join(" "));
        }
        spawn_stream(&argv)
    }
}

/// A long-running child whose stdout is read line by line; its process group is killed when
/// the `Stream` is dropped. stdin is closed and stderr discarded, so it can never block on them.
#[derive(Debug)]
pub struct Stream {
    /// The command line, for messages.
    pub argv: String,
    child: std::process::Child,
    stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
    alive: std::sync::Arc<std::sync::Mutex<bool>>,
    /// The child's group in the registry of live children, so a SIGINT/SIGTERM to routectl
    /// reaches it too; left when the `Stream` is dropped (after [`Stream::stop`]).
    _live: Option<Registered>,
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
    /// Lines are cut at 64 KiB, so a runaway child cannot fill memory.
    pub fn next_line(&mut self) -> Option<String> {
        use std::io::BufRead;
        let out = self.stdout.as_mut()?;
        let mut line = Vec::new();
        match out.by_ref().take(64 * 1024).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                if line.last() != Some(&b'\n') {
                    // Cut: drop the rest of the line.
                    let mut rest = Vec::new();
                    let _ = out.read_until(b'\n', &mut rest);
                }
                Some(String::from_utf8_lossy(&line).trim_end().to_string())
            }
        }
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
    if !crate::interrupt::may_start() {
        return Err(CommandError::Interrupted {
            argv: line,
            signal: crate::interrupt::signal_name().to_string(),
        });
    }
    let Some((program, args)) = argv.split_first() else {
        return Err(CommandError::Spawn {
            argv: line,
            message: "empty command".to_string(),
        });
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| CommandError::Spawn {
            argv: line.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("`{program}` was not found on PATH")
            } else {
                e.to_string()
            },
        })?;
    let stdout = child.stdout.take().map(std::io::BufReader::new);
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

/// Spawns `argv` in its own process group, feeds stdin, collects stdout and stderr, and kills
/// the group when `timeout` passes.
fn run_process(
    argv: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, CommandError> {
    let line = shown(argv);
    if !crate::interrupt::may_start() {
        return Err(CommandError::Interrupted {
            argv: line,
            signal: crate::interrupt::signal_name().to_string(),
        });
    }
    let Some((program, args)) = argv.split_first() else {
        return Err(CommandError::Spawn {
            argv: line,
            message: "empty command".to_string(),
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| CommandError::Spawn {
        argv: line.clone(),
        message: if e.kind() == std::io::ErrorKind::NotFound {
            format!("`{program}` was not found on PATH")
        } else {
            e.to_string()
        },
    })?;
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
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });

    // Wait in short steps: a SIGINT/SIGTERM to routectl is passed on to the child's group
    // (also here, in case it came between spawn and registration) and the child gets
    // `interrupt::GRACE` to end before SIGKILL. routectl never leaves a child running behind.
    let started = Instant::now();
    let mut interrupted_at: Option<Instant> = None;
    let mut timed_out = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
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
            if rx.recv_timeout(Duration::from_millis(500)).is_err() {
                kill_group(pid, Signal::KILL);
            }
            timed_out = true;
            break;
        }
    }
    let status = waiter.join().ok().and_then(|s| s.ok());
    if timed_out || interrupted_at.is_some() {
        // Descendants may still hold the pipes: make sure the group is gone before joining.
        kill_group(pid, Signal::KILL);
    }
    let (stdout, out_cut) = out_reader.join().unwrap_or_default();
    let (stderr, err_cut) = err_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    if let Some(w) = writer {
        let _ = w.join();
    }
    if timed_out {
        return Err(CommandError::Timeout {
            argv: line,
            millis: timeout.as_millis() as u64,
        });
    }
    if out_cut || err_cut {
        return Err(CommandError::OutputTooLarge {
            argv: line,
            limit_mib: MAX_OUTPUT >> 20,
        });
    }
    let status = status.ok_or_else(|| CommandError::Spawn {
        argv: line.clone(),
        message: "could not wait for the process".to_string(),
    })?;
    Ok(Output {
        argv: line,
        status: status.code(),
        stdout,
        stderr,
    })
}

/// The most routectl reads from one command's stdout or stderr (a node with 100,000 routes
/// prints about 12 MiB).
pub const MAX_OUTPUT: usize = 256 << 20;

/// Reads a pipe to its end, keeping at most `limit` bytes (the rest is drained, so the child
/// never blocks on a full pipe); says whether anything was cut.
fn read_bounded(pipe: Option<&mut impl Read>, limit: usize) -> (Vec<u8>, bool) {
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

    fn argv(kind: TransportKind, program: &str) -> String {
        let p = Process::new(kind, Duration::from_secs(1), false);
        let inv = Invocation {
            program: program.to_string(),
            args: vec!["-j".into(), "route".into()],
            stdin: None,
        };
        p.argv("worker-0", &inv).join(" ")
    }

    /// A namespace's binding comes from its file under /run/netns (a stand-in directory here):
    /// the same file gives the same binding, a file made again under the same name another;
    /// the record is read as it is, a missing one is none, a symbolic link is refused.
    #[test]
    fn a_namespace_is_bound_by_its_file_and_the_boot() {
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("netns");
        std::fs::create_dir(&ns).unwrap();
        let boot = dir.path().join("boot_id");
        std::fs::write(&boot, "b00t\n").unwrap();
        let rec = dir.path().join("w0.json");
        std::fs::write(ns.join("w0"), "").unwrap();
        let first = netns_record(&ns, &boot, "w0", &rec);
        assert_eq!(first.record, Ok(Vec::new()));
        let b = first.binding.clone().unwrap();
        assert!(b.starts_with("boot=b00t netns="), "{b}");
        assert_eq!(
            netns_record(&ns, &boot, "w0", &rec).binding,
            Some(b.clone())
        );
        std::fs::remove_file(ns.join("w0")).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        std::fs::write(ns.join("w0"), "").unwrap();
        assert_ne!(netns_record(&ns, &boot, "w0", &rec).binding, Some(b));
        assert_eq!(netns_record(&ns, &boot, "gone", &rec).binding, None);
        std::fs::write(&rec, "{}\n").unwrap();
        assert_eq!(
            netns_record(&ns, &boot, "w0", &rec).record,
            Ok(b"{}\n".to_vec())
        );
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&rec, &link).unwrap();
        assert!(netns_record(&ns, &boot, "w0", &link).record.is_err());
    }

    #[test]
    fn builds_argv_per_transport() {
        assert_eq!(
            argv(TransportKind::Lxc, "ip"),
            "lxc exec worker-0 --force-noninteractive -- ip -j route"
        );
        assert_eq!(
            argv(TransportKind::Incus, "ip"),
            "incus exec worker-0 --force-noninteractive -- ip -j route"
        );
        assert_eq!(argv(TransportKind::Netns, "ip"), "ip -n worker-0 -j route");
        assert_eq!(
            argv(TransportKind::Netns, "ping"),
            "ip netns exec worker-0 ping -j route"
        );
    }

    #[test]
    fn projects_and_ssh_options() {
        let inv = Invocation::ip(vec!["-j".into(), "route".into()]);
        let mut projects = BTreeMap::new();
        projects.insert("worker-0".to_string(), "team-a".to_string());
        let p = Process::new(TransportKind::Lxc, Duration::from_secs(5), false).with_reach(Reach {
            projects,
            ..Reach::default()
        });
        assert_eq!(
            p.argv("worker-0", &inv).join(" "),
            "lxc exec --project team-a worker-0 --force-noninteractive -- ip -j route"
        );
        assert_eq!(
            p.argv("worker-1", &inv).join(" "),
            "lxc exec worker-1 --force-noninteractive -- ip -j route"
        );
        let ssh =
            Process::new(TransportKind::Ssh, Duration::from_secs(5), false).with_reach(Reach {
                ssh_config: Some("/lab/ssh_config".into()),
                control_dir: Some("/run/routectl/ssh".into()),
                ..Reach::default()
            });
        assert_eq!(
            ssh.argv("root@10.0.4.20", &inv).join(" "),
            "ssh -F /lab/ssh_config -o BatchMode=yes -o ConnectTimeout=5 -o ControlMaster=auto \
             -o ControlPersist=60 -o ControlPath=/run/routectl/ssh/%C -T -- root@10.0.4.20 \
             ip -j route"
        );
        let plain = Process::new(TransportKind::Ssh, Duration::from_millis(300), false);
        assert_eq!(
            plain.argv("n0", &inv).join(" "),
            "ssh -o BatchMode=yes -o ConnectTimeout=1 -o ControlMaster=no -T -- n0 ip -j route"
        );
    }

    #[test]
    fn remote_words_are_quoted_for_the_remote_shell() {
        assert_eq!(
            remote_command("ip", &["-batch".into(), "-".into()]),
            "ip -batch -"
        );
        assert_eq!(
            remote_command(
                "echo",
                &["a b".into(), "it's".into(), "".into(), "$x;y".into()]
            ),
            "echo 'a b' 'it'\\''s' '' '$x;y'"
        );
    }

    #[test]
    fn runs_feeds_stdin_and_reports_status() {
        let out = run_process(
            &[
                "sh".into(),
                "-c".into(),
                "cat; echo oops >&2; exit 3".into(),
            ],
            Some(b"hello"),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr.trim(), "oops");
        assert_eq!(out.status, Some(3));
        assert!(matches!(
            out.success(),
            Err(CommandError::Status {
                status: Some(3),
                ..
            })
        ));
    }

    #[test]
    fn large_stdin_and_stderr_do_not_deadlock() {
        let input = vec![b'x'; 4 << 20];
        let out = run_process(
            &["sh".into(), "-c".into(), "cat >&2; echo done".into()],
            Some(&input),
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(out.stderr.len(), input.len());
    }

    #[test]
    fn kills_on_timeout() {
        let started = std::time::Instant::now();
        let err = run_process(
            &["sh".into(), "-c".into(), "sleep 30 & sleep 30".into()],
            None,
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn output_beyond_the_limit_is_cut_and_drained() {
        let mut big = std::io::Cursor::new(vec![b'x'; 10]);
        assert_eq!(read_bounded(Some(&mut big), 4), (b"xxxx".to_vec(), true));
        let mut small = std::io::Cursor::new(vec![b'x'; 4]);
        assert_eq!(read_bounded(Some(&mut small), 4), (b"xxxx".to_vec(), false));
    }

    #[test]
    fn streams_lines_and_kills_the_group_when_dropped() {
        let mut s = spawn_stream(&[
            "sh".into(),
            "-c".into(),
            "echo one; echo two; sleep 30".into(),
        ])
        .unwrap();
        assert_eq!(s.next_line().as_deref(), Some("one"));
        assert_eq!(s.next_line().as_deref(), Some("two"));
        let pid = s.pid();
        drop(s);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists() || {
                // Reaped: a zombie would still show; a fresh PID reuse is not possible this fast.
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_err()
            }
        );
    }

    #[test]
    fn missing_program_is_named() {
        let err = run_process(
            &["routectl-no-such-program".into()],
            None,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`routectl-no-such-program` was not found on PATH"),
            "{err}"
        );
    }
}
