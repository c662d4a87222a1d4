//! Reaching nodes: commands inside nodes (`lxc exec`, `incus exec`, network namespaces, `ssh`)
//! and the few local commands routectl needs (`lxc list`). Their processes are started by
//! `spawn/`, the only code in routectl that spawns one.
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

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::core::topology::Topology;
use crate::core::topology::TransportKind;
use crate::error::CommandError;
use crate::node::request::{
    ApplyReply, ApplyRequest, FileChange, ProbeRequest, ReadReply, ReadRequest, WatchRequest,
};

pub mod apply_script;
pub mod commands;
pub mod held;
pub mod read_script;
mod spawn;

#[cfg(test)]
use spawn::read_bounded;
#[cfg(test)]
use spawn::run_process;
use spawn::run_shown;
pub use spawn::{
    Killer, Line, LineReader, MAX_LINE, MAX_OUTPUT, Stream, forward, live_children, run_local,
    spawn_stream,
};

/// A command to run inside a node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invocation {
    /// The program inside the node (`ip`, `ping`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Bytes for its stdin (stdin is closed when `None`).
    pub stdin: Option<Vec<u8>>,
    /// For `sh -c SCRIPT …`: what the script is called in messages (`read script`); `-v`
    /// prints it in full.
    pub label: Option<&'static str>,
}

impl Invocation {
    /// `ip ARGS…`.
    pub fn ip(args: Vec<String>) -> Invocation {
        Invocation {
            program: "ip".to_string(),
            args,
            ..Invocation::default()
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

    /// Carries out one read of a node in one round trip (see [`crate::node::request`]): for an
    /// exec transport, the read script run through [`Transport::run`] and its output parsed.
    fn read(&self, instance: &str, req: &ReadRequest) -> Result<ReadReply, CommandError> {
        read_script::read_by_exec(self, instance, req)
    }

    /// Carries out one write to a node in one round trip (see [`crate::node::request`]).
    fn apply(&self, instance: &str, req: &ApplyRequest) -> Result<ApplyReply, CommandError> {
        apply_script::apply_by_exec(self, instance, req)
    }

    /// Pings one path from inside a node: `ping` run through [`Transport::run`] (exit 0: a
    /// reply came).
    fn probe(&self, instance: &str, req: &ProbeRequest) -> Result<Output, CommandError> {
        self.run(instance, &commands::probe_invocation(req))
    }

    /// From now on, keeps each read's process waiting for the write that follows it (see
    /// [`held`]); a transport that cannot does nothing.
    fn hold_reads(&self) {}

    /// Stops holding reads and releases every held process but those of the instances in
    /// `keep`, which the next [`Transport::apply`] uses.
    fn release_held(&self, _keep: &[String]) {}
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
/// following a symbolic link, without becoming a controlling terminal or waiting (`O_NOCTTY`,
/// `O_NONBLOCK`), only when it is a regular file, and at most [`MAX_RECORD_BYTES`].
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
    use rustix::fs::OFlags;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    // Never through a symbolic link, never becoming this process's controlling terminal, never
    // waiting (a FIFO opens at once and is refused below).
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK).bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let kind = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(format!("{} is {what}, not a record", path.display()));
    }
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

/// Writes (or removes) a last-applied record kept on this host (a network namespace's): into a
/// fresh temporary file in its directory, renamed over it. The directory is made 0700 when
/// missing and must be a real directory (no symbolic link is followed); the file is never
/// followed either, since the rename replaces whatever name is there.
pub fn write_host_record(path: &Path, change: &FileChange) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    let Some(dir) = path.parent() else {
        return Err(std::io::Error::other("the record has no directory"));
    };
    for d in [dir.parent(), Some(dir)].into_iter().flatten() {
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is not a directory",
                    d.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new().mode(0o700).create(d)?;
            }
            Err(e) => return Err(e),
        }
    }
    match change {
        FileChange::Keep => Ok(()),
        FileChange::Remove => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        FileChange::Write(bytes) => {
            let mut tmp = tempfile::Builder::new()
                .prefix(".last-applied.")
                .tempfile_in(dir)?;
            tmp.write_all(bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(())
        }
    }
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

    fn read(&self, instance: &str, req: &ReadRequest) -> Result<ReadReply, CommandError> {
        (**self).read(instance, req)
    }

    fn probe(&self, instance: &str, req: &ProbeRequest) -> Result<Output, CommandError> {
        (**self).probe(instance, req)
    }

    fn apply(&self, instance: &str, req: &ApplyRequest) -> Result<ApplyReply, CommandError> {
        (**self).apply(instance, req)
    }

    fn hold_reads(&self) {
        (**self).hold_reads()
    }

    fn release_held(&self, keep: &[String]) {
        (**self).release_held(keep)
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
    sessions: held::Sessions,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.release(&[]);
    }
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
            sessions: held::Sessions::default(),
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

/// A command line for messages: a script of routectl's own is named by its label, not spelled
/// out (`-v` prints it in full).
fn shown(argv: &[String], inv: &Invocation) -> String {
    let script = match (inv.label, inv.args.as_slice()) {
        (Some(label), [c, script, ..]) if inv.program == "sh" && c == "-c" => Some((label, script)),
        _ => None,
    };
    argv.iter()
        .map(|a| match script {
            Some((label, s)) if a == s => format!("'<{label}>'"),
            _ => a.clone(),
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
        let out = run_shown(
            &argv,
            &shown(&argv, inv),
            inv.stdin.as_deref(),
            self.timeout,
        )?;
        // ssh's own failures exit 255 (so does `ip` for a bad argument, which routectl does
        // not write): the node is unknown, never an empty table.
        self.ssh_checked(out)
    }

    fn read(&self, instance: &str, req: &ReadRequest) -> Result<ReadReply, CommandError> {
        match self.read_held(instance, req) {
            Some(reply) => reply,
            None => read_script::read_by_exec(self, instance, req),
        }
    }

    fn apply(&self, instance: &str, req: &ApplyRequest) -> Result<ApplyReply, CommandError> {
        match self.apply_held(instance, req) {
            Some(reply) => reply,
            None => apply_script::apply_by_exec(self, instance, req),
        }
    }

    fn hold_reads(&self) {
        self.hold();
    }

    fn release_held(&self, keep: &[String]) {
        self.release(keep);
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
    /// Starts what `req` follows as a long-running command whose stdout is read as it comes
    /// (`reconcile --watch`): `ip -j monitor route address` inside the node, or the daemon's
    /// lifecycle monitor on this host.
    pub fn watch(&self, req: &WatchRequest) -> Result<Stream, CommandError> {
        let argv = match req {
            WatchRequest::Changes { instance } => {
                self.argv(instance, &commands::changes_invocation())
            }
            WatchRequest::Lifecycle => commands::lifecycle_argv(self.kind),
        };
        if self.verbose {
            eprintln!("+ {} (watching)", argv.join(" "));
        }
        spawn_stream(&argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO, a device or a directory where a namespace's record is kept is refused at once
    /// (never waited on, never opened as a terminal), and said to be what it is.
    #[test]
    fn a_record_that_is_no_regular_file_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.json");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = read_record(&fifo).unwrap_err();
        assert!(err.ends_with("is a FIFO, not a record"), "{err}");
        let err = read_record(Path::new("/dev/null")).unwrap_err();
        assert!(err.ends_with("is a device, not a record"), "{err}");
        let err = read_record(dir.path()).unwrap_err();
        assert!(
            err.ends_with("is not a regular file, not a record"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    fn argv(kind: TransportKind, program: &str) -> String {
        let p = Process::new(kind, Duration::from_secs(1), false);
        let inv = Invocation {
            program: program.to_string(),
            args: vec!["-j".into(), "route".into()],
            ..Invocation::default()
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
