//! Reading what nodes have: one `ip` process per node (both families, every table), retried
//! when a transport returns nothing, diagnosed when `ip` is too old. Also reads snapshots saved
//! by `routectl show --save`, so plans can be made offline.

use std::path::Path;
use std::time::Duration;

use crate::core::plan::Observed;
use crate::core::record::{self, LastApplied};
use crate::core::route::Route;
use crate::core::show::Observation;
use crate::core::topology::Node;
use crate::error::ParseError;
use crate::error::{CommandError, NodeError};
use crate::node::iproute;
use crate::node::transport::{Invocation, Output, Transport};

/// The line between the parts of a read's output (no `ip -j` output contains it).
pub const SEPARATOR: &str = "--routectl-read-part--";

/// The one read script: `ip ARGS…` (given as its arguments after the record's path: the routes,
/// or the show batch on stdin), then the binding
/// of the last-applied record (`lo`'s alias), then the record itself (nothing when there is
/// none), separated by [`SEPARATOR`] lines. `$1` is the record's path; values reach the script
/// only as arguments. `ip`'s status is the script's. Beyond `ip` it forks nothing (`read` and
/// `printf` are shell builtins): measured on the LXD lab, it costs what `ip` alone does.
pub const READ_SCRIPT: &str = "f=$1; shift; \"$@\" || exit; a=; \
{ IFS= read -r a; } 2>/dev/null </sys/class/net/lo/ifalias; \
echo; echo --routectl-read-part--; printf %s \"$a\"; echo; echo --routectl-read-part--; \
if [ -r \"$f\" ]; then while IFS= read -r l || [ -n \"$l\" ]; do printf %s \"$l\"; echo; done <\"$f\"; fi; \
exit 0";

/// The command that reads a node: `ip_args` in one `sh -c` with the record's read.
pub fn script_invocation(node: &Node, ip_args: Vec<String>) -> Invocation {
    let mut args = vec![
        "-c".to_string(),
        READ_SCRIPT.to_string(),
        "sh".to_string(),
        record::record_path(&node.instance),
        "ip".to_string(),
    ];
    args.extend(ip_args);
    Invocation {
        program: "sh".to_string(),
        args,
        stdin: None,
    }
}

/// A read's output split into `ip`'s part, the record's binding, and the record's bytes. An
/// output without separators (a read that is `ip` alone) is all `ip`'s.
pub fn split_read(stdout: &[u8]) -> (&[u8], Option<String>, &[u8]) {
    let marker = format!("\n{SEPARATOR}\n");
    let find = |hay: &[u8]| {
        hay.windows(marker.len())
            .position(|w| w == marker.as_bytes())
    };
    let Some(first) = find(stdout) else {
        return (stdout, None, &[]);
    };
    let ip = &stdout[..first];
    let rest = &stdout[first + marker.len()..];
    // The binding is one line (possibly empty), then the second separator.
    let (binding, record) = match rest
        .windows(SEPARATOR.len() + 1)
        .position(|w| w == format!("{SEPARATOR}\n").as_bytes())
    {
        Some(i) => (&rest[..i], &rest[i + SEPARATOR.len() + 1..]),
        None => (rest, &[][..]),
    };
    let binding = String::from_utf8_lossy(binding).trim().to_string();
    (ip, (!binding.is_empty()).then_some(binding), record)
}

/// The command that reads a node's routes (and its last-applied record).
pub fn read_invocation(node: &Node) -> Invocation {
    script_invocation(node, iproute::read_args())
}

/// How often a read that printed nothing is tried (a known `lxc exec` fault under load).
pub const READ_ATTEMPTS: usize = 3;

/// When a read is run again. Every read of a node (the plan's route read, the combined read of
/// `show` and `check`, the read-back after an apply) goes through [`run_read`], so they cannot
/// drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all when a read exits 0 but prints nothing (never an empty table).
    pub empty_attempts: usize,
    /// Extra tries after a read timed out: a read is safe to repeat, and an `lxc exec` that
    /// hangs under load (seen with many at once) usually answers the second time.
    pub timeout_retries: usize,
    /// The pause before trying again after an empty read.
    pub pause: Duration,
}

/// The policy of every read.
pub const RETRY: RetryPolicy = RetryPolicy {
    empty_attempts: READ_ATTEMPTS,
    timeout_retries: 1,
    pause: Duration::from_millis(20),
};

/// Runs a read on a node under [`RETRY`] and returns its output when it exited 0 and printed
/// something. A non-zero exit is returned as [`CommandError::Status`] at once (not retried: the
/// caller diagnoses it); a timeout is retried once, an empty read up to
/// [`READ_ATTEMPTS`] times in all.
pub fn run_read(t: &dyn Transport, node: &Node, inv: &Invocation) -> Result<Output, NodeError> {
    run_with(t, node, inv, &RETRY)
}

fn run_with(
    t: &dyn Transport,
    node: &Node,
    inv: &Invocation,
    policy: &RetryPolicy,
) -> Result<Output, NodeError> {
    let mut timeouts = 0;
    let mut empties = 0;
    loop {
        let out = match t.run(&node.instance, inv) {
            Err(CommandError::Timeout { .. }) if timeouts < policy.timeout_retries => {
                timeouts += 1;
                continue;
            }
            other => other?,
        };
        if out.status != Some(0) {
            return Err(NodeError::Command(out.status_error()));
        }
        // The read script prints its separators always: what must not be empty is `ip`'s part.
        if !split_read(&out.stdout)
            .0
            .iter()
            .all(u8::is_ascii_whitespace)
        {
            return Ok(out);
        }
        empties += 1;
        if empties >= policy.empty_attempts {
            return Err(NodeError::EmptyRead {
                argv: out.argv,
                attempts: empties,
            });
        }
        std::thread::sleep(policy.pause);
    }
}

/// Reads every route of a node.
pub fn read_node(t: &dyn Transport, node: &Node) -> Result<Vec<Route>, NodeError> {
    read_observed(t, node).map(|o| o.routes)
}

/// Reads every route of a node and its last-applied record, in one command.
pub fn read_observed(t: &dyn Transport, node: &Node) -> Result<Observed, NodeError> {
    read_observed_raw(t, node).map(|(o, _)| o)
}

/// [`read_observed`], also returning the raw `ip` part of the output.
fn read_observed_raw(t: &dyn Transport, node: &Node) -> Result<(Observed, Vec<u8>), NodeError> {
    let out = read_raw(t, node)?;
    let (ip, binding, record) = split_read(&out.stdout);
    let routes = parse_bytes(t, node, &out.argv, ip)?;
    Ok((
        Observed {
            routes,
            last_applied: record::parse(record, binding.as_deref()),
            binding,
        },
        ip.to_vec(),
    ))
}

/// Runs the route read and returns its successful output (stdout not yet parsed); a failure
/// is diagnosed (a missing or old `ip` is named).
pub fn read_raw(t: &dyn Transport, node: &Node) -> Result<Output, NodeError> {
    run_read(t, node, &read_invocation(node)).map_err(|e| match e {
        NodeError::Command(CommandError::Status { .. }) => diagnose(t, node, e),
        other => other,
    })
}

/// Parses a read's stdout (its `ip` part); a refusal is checked against the node's iproute2
/// version.
pub fn parse_read(t: &dyn Transport, node: &Node, out: &Output) -> Result<Vec<Route>, NodeError> {
    parse_bytes(t, node, &out.argv, split_read(&out.stdout).0)
}

fn parse_bytes(
    t: &dyn Transport,
    node: &Node,
    argv: &str,
    ip: &[u8],
) -> Result<Vec<Route>, NodeError> {
    iproute::parse_routes(ip).map_err(|error| {
        diagnose(
            t,
            node,
            NodeError::Output {
                argv: argv.to_string(),
                error,
            },
        )
    })
}

/// When `ip` failed or printed garbage, asks for its version: an old iproute2 is the likely
/// cause and deserves a message that says so.
fn diagnose(t: &dyn Transport, node: &Node, err: NodeError) -> NodeError {
    let argv = match &err {
        // 127: the program is missing (LXD prints "Error: Command not found").
        NodeError::Command(CommandError::Status {
            argv,
            status: Some(127),
            stderr,
        }) => {
            return NodeError::MissingIp {
                argv: argv.clone(),
                stderr: stderr.trim().to_string(),
            };
        }
        NodeError::Command(c) => c.argv().to_string(),
        NodeError::Output { argv, .. } => argv.clone(),
        _ => return err,
    };
    let version = t
        .run(&node.instance, &Invocation::ip(vec!["-V".to_string()]))
        .ok()
        .filter(|o| o.status == Some(0))
        .and_then(|o| iproute::parse_version(&String::from_utf8_lossy(&o.stdout)));
    match version {
        Some(v) if !v.is_supported() => NodeError::OldIproute {
            argv,
            version: v.to_string(),
        },
        _ => err,
    }
}

/// Reads a node from a snapshot directory written by `routectl show --save DIR`: its routes,
/// and its last-applied record when the snapshot has one.
pub fn read_saved(dir: &Path, node: &Node) -> Result<Observed, NodeError> {
    let path = snapshot_path(dir, node);
    let bytes = std::fs::read(&path).map_err(|e| NodeError::Snapshot {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let routes = iproute::parse_routes(&bytes).map_err(|error| NodeError::Output {
        argv: format!("(snapshot {})", path.display()),
        error,
    })?;
    let record_path = snapshot_record_path(dir, node);
    let last_applied = match std::fs::read(&record_path) {
        // The record was checked against the node when the snapshot was taken.
        Ok(b) => serde_json::from_slice::<LastApplied>(&b)
            .map(Some)
            .map_err(|e| {
                format!(
                    "snapshot `{}` is damaged ({e}); ignored",
                    record_path.display()
                )
            }),
        Err(_) => Ok(None),
    };
    Ok(Observed {
        routes,
        last_applied,
        binding: None,
    })
}

/// Where a node's snapshot lives.
pub fn snapshot_path(dir: &Path, node: &Node) -> std::path::PathBuf {
    dir.join(format!("{}.json", node.name))
}

/// Where a node's last-applied record is kept beside its snapshot.
pub fn snapshot_record_path(dir: &Path, node: &Node) -> std::path::PathBuf {
    dir.join(format!("{}.last-applied.json", node.name))
}

/// The `ip -batch` script of a show read: routes first (exactly the lone route read), then
/// addresses.
pub const SHOW_SCRIPT: &str = "route show table all\naddr show\n";

/// The command that reads a node's routes, addresses and last-applied record in one process.
pub fn show_invocation(node: &Node) -> Invocation {
    let mut args: Vec<String> = iproute::READ_OPTIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["-batch".to_string(), "-".to_string()]);
    script_invocation(node, args).with_stdin(SHOW_SCRIPT.as_bytes().to_vec())
}

/// Splits a show read's output into routes (parsed and raw), interfaces and the record.
pub fn parse_show(output: &[u8]) -> Result<Observation, ParseError> {
    let (output, binding, record) = split_read(output);
    let parts = iproute::split_stream(output)?;
    let [routes, addrs] = parts.as_slice() else {
        return Err(ParseError::Invalid {
            message: format!(
                "expected two JSON arrays (routes, then addresses), found {}",
                parts.len()
            ),
            excerpt: String::from_utf8_lossy(output.get(..80).unwrap_or(output)).into_owned(),
        });
    };
    Ok(Observation {
        routes: iproute::parse_routes(routes)?,
        raw_routes: [routes, &b"\n"[..]].concat(),
        links: Ok(iproute::parse_addrs(addrs)?),
        last_applied: record::parse(record, binding.as_deref()),
    })
}

/// Reads a node's routes and addresses with one command, under the same [`RETRY`] policy as
/// every read. When the combined read fails or prints something unreadable, the plain route
/// read of [`read_raw`] is tried instead: it names an old iproute2 when that is the cause, and
/// when it succeeds the routes are shown and only the address checks are lost.
pub fn read_show(t: &dyn Transport, node: &Node) -> Result<Observation, NodeError> {
    let why = match run_read(t, node, &show_invocation(node)) {
        Ok(out) => match parse_show(&out.stdout) {
            Ok(obs) => return Ok(obs),
            Err(e) => format!("`{}`: {e}", out.argv),
        },
        Err(NodeError::Command(e @ CommandError::Status { .. })) => e.to_string(),
        Err(other) => return Err(other),
    };
    let (plain, raw_routes) = read_observed_raw(t, node)?;
    Ok(Observation {
        routes: plain.routes,
        raw_routes,
        links: Err(why),
        last_applied: plain.last_applied,
    })
}

/// Stores a node's raw route read (and its last-applied record, if it has one) where
/// `routectl plan --observed DIR` looks for them, replacing any older snapshot atomically
/// (written beside it, then renamed).
pub fn save_snapshot(
    dir: &Path,
    node: &Node,
    raw_routes: &[u8],
    record: Option<&LastApplied>,
) -> std::io::Result<()> {
    let path = snapshot_path(dir, node);
    let tmp = dir.join(format!(".{}.json.tmp", node.name));
    std::fs::write(&tmp, raw_routes)?;
    std::fs::rename(&tmp, &path)?;
    match record {
        Some(r) => {
            let tmp = dir.join(format!(".{}.last-applied.json.tmp", node.name));
            std::fs::write(&tmp, serde_json::to_vec_pretty(r).unwrap_or_default())?;
            std::fs::rename(&tmp, snapshot_record_path(dir, node))
        }
        None => remove_if_present(&snapshot_record_path(dir, node)),
    }
}

/// Removes a node's snapshot, so that an unreadable node cannot be planned from an old one.
pub fn remove_snapshot(dir: &Path, node: &Node) -> std::io::Result<()> {
    remove_if_present(&snapshot_path(dir, node))?;
    remove_if_present(&snapshot_record_path(dir, node))
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The script that stores a node's last-applied record, given on stdin: `$1` the record's path,
/// `$2` a temporary name routectl chose (random), `$3` the binding to put in `lo`'s alias (left
/// alone when it holds something that is not routectl's). The directory must be a real
/// directory owned by the user the script runs as; the temporary file is created with O_EXCL
/// (`set -C`) and renamed over the record (removed on any failure). With no stdin content, the
/// record is removed.
pub const WRITE_SCRIPT: &str = "set -eu; f=$1; d=${f%/*}; t=$d/.$2; umask 077; \
for x in \"${d%/*}\" \"$d\"; do [ -d \"$x\" ] || mkdir -m 0700 \"$x\"; \
if [ -L \"$x\" ] || [ ! -O \"$x\" ]; then echo \"routectl: $x is not a directory of mine\" >&2; exit 1; fi; done; \
set -C; cat >\"$t\"; set +C; trap 'rm -f -- \"$t\"' EXIT; \
if [ ! -s \"$t\" ]; then rm -f -- \"$f\"; exit 0; fi; \
a=$(cat /sys/class/net/lo/ifalias 2>/dev/null || true); \
case $a in ''|routectl*) ip link set dev lo alias \"$3\" || echo \"routectl: lo's alias not set\" >&2 ;; esac; \
mv -f -- \"$t\" \"$f\"";

/// Stores `record` (or removes the node's record, with `None`) inside the node through the
/// transport: one command, the record as data on stdin.
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
    let binding = record.and_then(|r| r.binding.clone()).unwrap_or_default();
    let inv = Invocation {
        program: "sh".to_string(),
        args: vec![
            "-c".to_string(),
            WRITE_SCRIPT.to_string(),
            "sh".to_string(),
            record::record_path(&node.instance),
            format!("last-applied.{}", temp_suffix()),
            binding,
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

/// A fresh binding for a record: `routectl` and a random nonce, kept in `lo`'s alias, which
/// dies with the node's network namespace (and so with its routes).
pub fn new_binding() -> String {
    format!("routectl {}", temp_suffix())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::core::topology::parse;

    /// Answers each run with the next scripted answer, and counts runs.
    struct Scripted {
        answers: Mutex<Vec<Result<Output, CommandError>>>,
        runs: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(mut answers: Vec<Result<Output, CommandError>>) -> Scripted {
            answers.reverse();
            Scripted {
                answers: Mutex::new(answers),
                runs: Mutex::new(Vec::new()),
            }
        }

        fn runs(&self) -> Vec<String> {
            self.runs.lock().unwrap().clone()
        }
    }

    impl Transport for Scripted {
        fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
            self.runs
                .lock()
                .unwrap()
                .push(format!("{instance}: ip {}", inv.args.join(" ")));
            self.answers
                .lock()
                .unwrap()
                .pop()
                .expect("no more scripted answers")
        }
    }

    fn timeout() -> Result<Output, CommandError> {
        Err(CommandError::Timeout {
            argv: "lxc exec w0 -- ip ...".into(),
            millis: 500,
        })
    }

    fn ok(stdout: &str) -> Result<Output, CommandError> {
        Ok(Output {
            argv: "lxc exec w0 -- ip ...".into(),
            status: Some(0),
            stdout: stdout.as_bytes().to_vec(),
            stderr: String::new(),
        })
    }

    fn node() -> Node {
        let t = parse(
            b"[cluster]\ninterface = \"eth1\"\n[[nodes]]\nname = \"w0\"\ninternal_ip = \"10.0.2.20\"\n",
            "t.toml",
            None,
        )
        .unwrap();
        t.nodes[0].clone()
    }

    const ROUTES: &str = r#"[{"dst":"10.0.2.0/24","dev":"eth1","protocol":"kernel","scope":"link","prefsrc":"10.0.2.20","table":"main"}]"#;

    #[test]
    fn every_read_retries_a_timeout_once() {
        // The plan's read.
        let t = Scripted::new(vec![timeout(), ok(ROUTES)]);
        assert_eq!(read_node(&t, &node()).unwrap().len(), 1);
        assert_eq!(t.runs().len(), 2);
        // The read of show and check (it used not to retry, so a slow node failed show only).
        let t = Scripted::new(vec![timeout(), ok(&format!("{ROUTES}\n[]\n"))]);
        let obs = read_show(&t, &node()).unwrap();
        assert_eq!(obs.routes.len(), 1);
        assert!(obs.links.is_ok());
        assert_eq!(t.runs().len(), 2);
    }

    #[test]
    fn a_second_timeout_is_the_nodes_error() {
        for show in [false, true] {
            let t = Scripted::new(vec![timeout(), timeout()]);
            let err = if show {
                read_show(&t, &node()).unwrap_err()
            } else {
                read_node(&t, &node()).unwrap_err()
            };
            assert_eq!(err.kind(), "timeout", "{err}");
            assert_eq!(t.runs().len(), 2);
        }
    }

    #[test]
    fn empty_reads_are_tried_three_times_then_refused() {
        let t = Scripted::new(vec![ok(""), ok(" \n"), ok("")]);
        let err = read_show(&t, &node()).unwrap_err();
        assert_eq!(
            err,
            NodeError::EmptyRead {
                argv: "lxc exec w0 -- ip ...".into(),
                attempts: READ_ATTEMPTS
            }
        );
        let t = Scripted::new(vec![ok(""), timeout(), ok(ROUTES)]);
        assert_eq!(read_node(&t, &node()).unwrap().len(), 1);
        assert_eq!(t.runs().len(), 3);
    }

    #[test]
    fn the_read_script_prints_the_separator_split_read_looks_for() {
        assert_eq!(READ_SCRIPT.matches(SEPARATOR).count(), 2);
        // One line without backslashes, as `-v` and the fakes (`echo`) log it.
        assert!(!READ_SCRIPT.contains('\n') && !READ_SCRIPT.contains('\\'));
    }

    #[test]
    fn a_read_splits_into_routes_binding_and_record() {
        let out = b"[{\"dst\":\"10.1.1.0/24\"}]\n\n--routectl-read-part--\nroutectl ab12\n--routectl-read-part--\n{\"x\":1}\n";
        let (ip, binding, record) = split_read(out);
        assert_eq!(ip, b"[{\"dst\":\"10.1.1.0/24\"}]\n");
        assert_eq!(binding.as_deref(), Some("routectl ab12"));
        assert_eq!(record, b"{\"x\":1}\n");
        let (ip, binding, record) =
            split_read(b"[]\n\n--routectl-read-part--\n\n--routectl-read-part--\n");
        assert_eq!((ip, binding, record), (&b"[]\n"[..], None, &b""[..]));
        // `ip` alone (an older fake, a snapshot): all routes.
        assert_eq!(split_read(b"[]").0, b"[]");
    }

    /// The scripts run in the real shell: the record is written, read back in the same command
    /// as the routes, and removed; nothing is written through a planted link.
    #[test]
    fn scripts_write_and_read_a_record_in_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("routectl/last-applied/n.json");
        let run = |script: &str, args: &[&str], stdin: &[u8]| {
            let mut c = std::process::Command::new("sh");
            c.arg("-c").arg(script).arg("sh").args(args);
            c.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(stdin);
            child.wait_with_output().unwrap()
        };
        let fs = f.to_str().unwrap();
        // The alias write fails without root and outside a namespace: `set -e` must not stop
        // the record for that, so the test runs the script with `ip` replaced by `true`.
        let script = WRITE_SCRIPT.replace("ip link set", "true");
        let out = run(&script, &[fs, "t1", "routectl x"], b"{\"a\":1}\n");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&f).unwrap(), b"{\"a\":1}\n");
        let out = run(READ_SCRIPT, &[fs, "echo", "[]"], b"");
        let (ip, _, record) = split_read(&out.stdout);
        assert_eq!(ip, b"[]\n");
        assert_eq!(record, b"{\"a\":1}\n");
        let out = run(&script, &[fs, "t2", ""], b"");
        assert!(out.status.success());
        assert!(!f.exists());
        // A directory that is a symlink is refused.
        let evil = tempfile::tempdir().unwrap();
        let d2 = dir.path().join("other");
        std::fs::create_dir(&d2).unwrap();
        std::os::unix::fs::symlink(evil.path(), d2.join("last-applied")).unwrap();
        let f2 = d2.join("last-applied/n.json");
        let out = run(&script, &[f2.to_str().unwrap(), "t3", ""], b"{}");
        assert!(!out.status.success());
        assert_eq!(std::fs::read_dir(evil.path()).unwrap().count(), 0);
    }
}

#[cfg(test)]
mod show_reads {
    //! `show`'s judgement of real reads: the show read of the LXD lab parsed by [`parse_show`],
    //! then marked by [`crate::core::show::view`].

    use super::*;
    use crate::core::plan::Plan;
    use crate::core::show::{Mark, NodeView, view};
    use crate::core::topology::{Topology, parse};

    const LAB: &str = r#"
[cluster]
interface = "eth1"
pod_cidr = "10.1.0.0/16"
[[nodes]]
name = "controller-0"
internal_ip = "10.0.2.10"
[[nodes]]
name = "worker-0"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/24"
[[nodes]]
name = "worker-1"
internal_ip = "10.0.2.21"
pod_cidr = "10.1.1.0/24"
[[nodes]]
name = "worker-2"
internal_ip = "10.0.2.22"
pod_cidr = "10.1.2.0/24"
"#;

    /// Captured on the LXD lab before any route was added (see iproute's tests).
    const WORKER_0: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lab/worker-0.show.json"
    ));
    const CONTROLLER_0: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lab/controller-0.show.json"
    ));

    fn lab() -> Topology {
        parse(LAB.as_bytes(), "t.toml", None).unwrap()
    }

    fn lines(v: &NodeView) -> Vec<String> {
        v.entries
            .iter()
            .map(|e| {
                let mut s = format!("{} {}", e.mark.name(), e.route);
                if let Some(n) = &e.note {
                    s.push_str(&format!(" # {n}"));
                }
                s
            })
            .collect()
    }

    #[test]
    fn a_fresh_lab_node_lacks_every_desired_route() {
        let t = lab();
        let obs = parse_show(WORKER_0).unwrap();
        let v = view(&t, &t.nodes[1], &Plan::policy(&t), obs);
        assert_eq!(
            lines(&v),
            [
                "kernel 10.0.2.0/24 dev eth1 proto kernel",
                "kernel 10.1.0.0/24 dev cnio0 proto kernel",
                "desired-missing 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
                "desired-missing 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211",
                "kernel fe80::/64 dev cnio0 proto kernel metric 256",
                "kernel fe80::/64 dev eth1 proto kernel metric 256",
            ]
        );
        assert!(v.warnings.is_empty(), "{:?}", v.warnings);
        assert!(v.checks.iter().all(|c| c.ok));
        assert_eq!(v.checks.len(), 2);
        assert_eq!(
            v.checks[1].message,
            "pod gateway 10.1.0.1 (10.1.0.0/24) is on cnio0"
        );
        assert!(v.other_tables > 0);
        assert!(v.raw_routes.starts_with(b"[{") && v.raw_routes.ends_with(b"]\n"));
    }

    #[test]
    fn owned_foreign_and_the_plans_verdict_are_marked() {
        let t = lab();
        let mut obs = parse_show(CONTROLLER_0).unwrap();
        obs.routes.extend(
            iproute::parse_routes(
                br#"[
            {"dst":"10.1.0.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":"211","table":"254"},
            {"dst":"10.1.1.0/24","gateway":"10.0.2.99","dev":"eth1","protocol":"211","table":"254"},
            {"dst":"10.1.2.0/24","gateway":"10.0.2.22","dev":"eth1","protocol":"3","table":"254"},
            {"dst":"10.1.9.0/24","gateway":"10.0.2.22","dev":"eth1","protocol":"211","table":"254"}
        ]"#,
            )
            .unwrap(),
        );
        let v = view(&t, &t.nodes[0], &Plan::policy(&t), obs);
        let l = lines(&v);
        assert_eq!(l[1], "owned 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211");
        assert_eq!(
            l[2],
            "owned 10.1.1.0/24 via 10.0.2.99 dev eth1 proto 211 # plan replaces it with `10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211`"
        );
        assert_eq!(
            l[3],
            "foreign 10.1.2.0/24 via 10.0.2.22 dev eth1 proto boot # identical to a desired route: `apply --adopt` takes it over"
        );
        assert_eq!(
            l[4],
            "owned 10.1.9.0/24 via 10.0.2.22 dev eth1 proto 211 # not desired: plan deletes it"
        );
        assert_eq!(v.count(Mark::DesiredMissing), 0);
    }

    #[test]
    fn a_conflict_shows_the_blocked_desired_route() {
        let t = lab();
        let mut obs = parse_show(CONTROLLER_0).unwrap();
        obs.routes.extend(
            iproute::parse_routes(
                br#"[{"dst":"10.1.2.0/24","gateway":"10.0.2.21","dev":"eth1","protocol":"3","table":"254"}]"#,
            )
            .unwrap(),
        );
        let v = view(&t, &t.nodes[0], &Plan::policy(&t), obs);
        let l = lines(&v);
        assert!(l.contains(&"foreign 10.1.2.0/24 via 10.0.2.21 dev eth1 proto boot # blocks desired `10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211`".to_string()), "{l:#?}");
        assert!(l.contains(&"desired-missing 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211 # blocked by a foreign route to the same destination".to_string()), "{l:#?}");
    }

    #[test]
    fn address_disagreements_are_warnings() {
        // worker-0's real addresses checked against a topology that has them wrong.
        let t = parse(
            LAB.replace("internal_ip = \"10.0.2.20\"", "internal_ip = \"10.0.2.30\"")
                .replace("\"10.1.0.0/24\"", "\"10.1.3.0/24\"")
                .as_bytes(),
            "t.toml",
            None,
        )
        .unwrap();
        let obs = parse_show(WORKER_0).unwrap();
        let v = view(&t, &t.nodes[1], &Plan::policy(&t), obs);
        assert_eq!(
            v.warnings,
            [
                "internal_ip 10.0.2.30 is on no interface of the node (eth1 has 10.0.2.20/24)",
                "pod gateway 10.1.3.1 (first host of pod_cidr 10.1.3.0/24) is on no interface of the node: is the pod bridge up, and is pod_cidr right?",
                "address 10.1.0.1/24 on cnio0 lies in the cluster pod_cidr 10.1.0.0/16, outside the node's pod_cidr 10.1.3.0/24",
            ]
        );
    }

    #[test]
    fn a_show_read_must_hold_routes_then_addresses() {
        assert!(matches!(
            parse_show(b"[]\n"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_show(b"[]\n[]\n[]\n"),
            Err(ParseError::Invalid { .. })
        ));
        assert_eq!(parse_show(b""), Err(ParseError::Empty));
        let o = parse_show(b"[]\n[]\n").unwrap();
        assert_eq!(o.raw_routes, b"[]\n");
    }
}
