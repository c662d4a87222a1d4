//! What every test module shares: the one way to run the binary ([`Routectl`], [`Run`]), the
//! one fake `lxc`/`incus` ([`fake::Fake`]), the labs behind one trait ([`lab::Lab`]: network
//! namespaces, LXD), the in-memory kernel model of the property tests, and small helpers.

pub mod cluster;
pub mod fake;
pub mod incus;
pub mod lab;
pub mod labs;
pub mod lxd;
pub mod model;
pub mod netns;
pub mod ssh;
pub mod systemd_lab;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ipnet::IpNet;

/// A plan document without each node's `manager`: only a live read can tell what manages an
/// interface, so a plan from snapshots says `unknown` where a live plan names it.
pub fn without_manager(mut plan: serde_json::Value) -> serde_json::Value {
    if let Some(nodes) = plan["nodes"].as_array_mut() {
        for n in nodes {
            if let Some(n) = n.as_object_mut() {
                n.remove("manager");
            }
        }
    }
    plan
}

/// A live plan document without how each node was reached (`access`, `access_fallback`,
/// `location`), which a plan from snapshots does not say; each node must have said it.
pub fn without_access(mut plan: serde_json::Value) -> serde_json::Value {
    if let Some(nodes) = plan["nodes"].as_array_mut() {
        for n in nodes {
            let n = n.as_object_mut().expect("a node entry");
            assert!(
                n.remove("access").is_some(),
                "a live plan says each node's access"
            );
            n.remove("access_fallback");
            n.remove("location");
        }
    }
    plan
}

/// Takes a shared lab across processes: an exclusive `flock` on `path`, held until the file is
/// closed (a killed test process releases it). A mutex only serializes the tests of one
/// process; the test processes of every checkout on the machine share the labs.
pub fn lock_across_processes(path: &str) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    f.lock()
        .unwrap_or_else(|e| panic!("cannot lock {path}: {e}"));
    f
}

/// Waits (at most 60 s) until a container answers `CLI exec NODE` and carries `ip`.
pub fn wait_until_container_has(cli: &str, node: &str, ip: &str) {
    let started = std::time::Instant::now();
    loop {
        let out = Command::new(cli)
            .args(["exec", node, "--", "ip", "-o", "addr", "show"])
            .stdin(Stdio::null())
            .output();
        if let Ok(o) = out
            && String::from_utf8_lossy(&o.stdout).contains(&format!(" {ip}/"))
        {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{node} did not come back with {ip}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Runs routectl with a topology and extra environment.
pub fn routectl_with(topology: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    Routectl::new()
        .topology(topology)
        .args(args)
        .envs(env)
        .run()
}

/// Runs one of the lab scripts (`scripts/NAME ARGS…`), returning its stdout; panics (the lab
/// is required) when it fails.
pub fn run_lab_script(name: &str, args: &[&str]) -> String {
    let out = Command::new(repo().join("scripts").join(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/{name}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{name} {args:?} failed (the lab is required):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs one of the lab scripts where a failure is no test's concern (putting a lab back when a
/// test ends): its output is dropped; tells whether it succeeded.
pub fn run_lab_script_best_effort(name: &str, args: &[&str]) -> bool {
    Command::new(repo().join("scripts").join(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The repository (where Cargo.toml is).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the repository, by its path relative to the repository.
pub fn repo_file(rel: &str) -> PathBuf {
    repo().join(rel)
}

/// topology.example.toml's text.
pub fn example_topology() -> String {
    std::fs::read_to_string(repo_file("topology.example.toml")).expect("topology.example.toml")
}

/// Runs a command on the test host, panicking with its stderr when it fails.
pub fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip -batch -` in a namespace, panicking when a line fails.
pub fn ip_batch(ns: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the batch");
    let out = child.wait_with_output().expect("ip");
    assert!(
        out.status.success(),
        "ip -n {ns} -batch failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first host address of a prefix (the pod gateway).
pub fn first_host(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4((u32::from(n.network()) + 1).into()),
        IpNet::V6(n) => IpAddr::V6((u128::from(n.network()) + 1).into()),
    }
}

/// Writes an executable script.
pub fn write_script(path: &Path, text: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------------
// Running the binary.

/// The routectl binary the tests run: this build's, or the one `ROUTECTL_TEST_BIN` names (to see
/// a test fail against another build, e.g. one from before a fix).
pub fn bin() -> PathBuf {
    std::env::var_os("ROUTECTL_TEST_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_routectl")))
}

/// Runs a command (from [`Routectl::command`]) to its end within `secs` seconds, stdin
/// /dev/null, stdout and stderr captured: a hang is a test failure (the child is killed), not a
/// hung suite.
#[track_caller]
pub fn run_within(cmd: &mut Command, secs: u64) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start routectl");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait for routectl").is_none() {
        if started.elapsed() > std::time::Duration::from_secs(secs) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait for routectl");
            panic!(
                "{cmd:?} did not finish within {secs} s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Run::from_output(child.wait_with_output().expect("wait for routectl"))
}

/// One run of the routectl binary, built step by step: arguments, environment, stdin,
/// directories put first on PATH (where the fakes are), working directory. The child starts
/// from an empty environment (only `PATH`, and what the test sets), so nothing of the
/// developer's shell (`ROUTECTL_*`, `NO_COLOR`, `TERM`, …) leaks into a test.
///
/// ```ignore
/// let run = Routectl::new().topology(&path).args(["plan", "--detailed-exitcode"]).run();
/// run.code(3).stdout_has("Plan: 9 to add");
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct Routectl {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    path_first: Vec<PathBuf>,
    stdin: Option<Vec<u8>>,
    dir: Option<PathBuf>,
}

impl Routectl {
    /// A run with no arguments yet.
    pub fn new() -> Routectl {
        Routectl::default()
    }

    /// `-f FILE`.
    pub fn topology(self, file: impl AsRef<Path>) -> Routectl {
        self.arg("-f").arg(file.as_ref())
    }

    /// `--lock-file FILE`.
    pub fn lock_file(self, file: impl AsRef<Path>) -> Routectl {
        self.arg("--lock-file").arg(file.as_ref())
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Routectl {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Routectl
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Routectl {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Routectl {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Puts a directory (of fakes) first on the child's PATH.
    pub fn path_first(mut self, dir: impl AsRef<Path>) -> Routectl {
        self.path_first.push(dir.as_ref().to_owned());
        self
    }

    /// What the child reads on stdin (nothing, by default: stdin is /dev/null).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Routectl {
        self.stdin = Some(bytes.into());
        self
    }

    /// The child's working directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Routectl {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// The run as a [`Command`], for a test that wires the child itself (stdout into a pipe it
    /// reads, stderr to /dev/full, a signal it sends): the binary, the arguments, an
    /// environment of `PATH` and what was set, the working directory.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(&self.args).env_clear();
        let mut path: Vec<PathBuf> = self.path_first.iter().rev().cloned().collect();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        cmd.env("PATH", std::env::join_paths(path).expect("PATH"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(d) = &self.dir {
            cmd.current_dir(d);
        }
        cmd
    }

    /// Runs the binary to its end within `secs` seconds (see [`run_within`]); stdin is
    /// /dev/null.
    #[track_caller]
    pub fn run_within(&self, secs: u64) -> Run {
        run_within(&mut self.command(), secs)
    }

    /// Starts the binary as a background service of a test: stdin and stdout /dev/null,
    /// stderr into `log` (a file the test reads).
    pub fn spawn_logged(&self, log: &Path) -> Child {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("the log file"))
            .spawn()
            .expect("start routectl")
    }

    /// Starts the binary with no output kept: stdin, stdout and stderr are /dev/null.
    pub fn spawn_quiet(&self) -> Child {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start routectl")
    }

    /// Runs the binary to its end.
    pub fn run(&self) -> Run {
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = match &self.stdin {
            None => cmd.stdin(Stdio::null()).output().expect("run routectl"),
            Some(bytes) => {
                let mut child = cmd.stdin(Stdio::piped()).spawn().expect("run routectl");
                let mut stdin = child.stdin.take().expect("stdin");
                let bytes = bytes.clone();
                let writer = std::thread::spawn(move || stdin.write_all(&bytes));
                let out = child.wait_with_output().expect("run routectl");
                // routectl may stop reading early (a refused input): a broken pipe is fine.
                let _ = writer.join().expect("stdin writer");
                out
            }
        };
        Run {
            code: out
                .status
                .code()
                .unwrap_or_else(|| panic!("routectl was killed by a signal ({})", out.status)),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Starts the binary as a service manager does: through `setsid`, so that it leads a
    /// session of its own and has no controlling terminal; stdin and stdout are /dev/null,
    /// stderr goes to `log`.
    pub fn spawn_session_leader(&self, log: &Path) -> Child {
        let inner = self.command();
        let mut cmd = Command::new("/usr/bin/setsid");
        cmd.arg(inner.get_program())
            .args(inner.get_args())
            .env_clear();
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        if let Some(d) = inner.get_current_dir() {
            cmd.current_dir(d);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("the log file"))
            .spawn()
            .expect("start routectl through setsid")
    }

    /// Starts the binary (for `reconcile`): stdin and stdout are /dev/null, stderr is piped.
    pub fn spawn(&self) -> Child {
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start routectl")
    }
}

/// The outcome of one run of the binary. The checks return the run, so they chain:
/// `run.code(1).stderr_has("…")`.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

/// Asserts a run's exit code, showing its output when it differs.
#[track_caller]
pub fn assert_code(run: &Run, code: i32) {
    run.code(code);
}

impl Run {
    /// The outcome of a child that a test started itself (from [`Routectl::command`]); output
    /// that is not UTF-8 is shown with replacement characters.
    #[track_caller]
    pub fn from_output(out: std::process::Output) -> Run {
        Run {
            code: out
                .status
                .code()
                .unwrap_or_else(|| panic!("routectl was killed by a signal ({})", out.status)),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(self.code, expected, "exit status\n{self:?}");
        self
    }

    /// Asserts stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self:?}"
        );
        self
    }

    /// Asserts stdout does not contain `needle`.
    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Run {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}\n{self:?}"
        );
        self
    }

    /// Asserts stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self:?}"
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self:?}"))
    }

    /// The first line of stdout that starts with `prefix` (after indentation).
    #[track_caller]
    pub fn line(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix:?}:\n{}", self.stdout))
    }

    /// The last line of stdout that starts with `prefix` (apply prints the plan, then the
    /// report).
    #[track_caller]
    pub fn last_line(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix:?}:\n{}", self.stdout))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
