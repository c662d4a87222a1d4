//! Reading what nodes have: one typed [`ReadRequest`] per node (both families, every table,
//! and the node's last-applied record and network-manager facts in the same round trip),
//! carried out by the transport ([`Transport::read`]: the read script for the exec transports,
//! netlink and the container's files for host access), retried when a transport returns
//! nothing, diagnosed when `ip` is too old. Also parses snapshots saved by `routectl show
//! --save`, so plans can be made offline.

use std::path::Path;
use std::time::Duration;

use crate::core::persist::{self, NodeFacts};
use crate::core::plan::Observed;
use crate::core::record::{self, LastApplied};
use crate::core::route::Route;
use crate::core::show::Observation;
use crate::core::topology::Node;
use crate::error::ParseError;
use crate::error::{CommandError, NodeError};
use crate::node::iproute;
use crate::node::request::{ReadReply, ReadRequest};
use crate::node::transport::{HostRecord, Invocation, Transport};
use crate::node::transport::{commands, read_script};

mod write;

pub use crate::node::transport::read_script::{
    READ_SCRIPT, ReadParts, SEPARATOR, SHOW_SCRIPT, binding_line, binding_of, split_read,
};
pub use write::{record_bytes, write_record};

/// What a read of `node` through `t` asks for: every route; with `addresses`, the interfaces
/// and the route table in the snapshot format; with `snapshot`, that table alone. Where the
/// record is kept in the node, the record and its binding, and, where the transport sees the
/// node's own files, the facts of its route interface (an ssh node without a declared
/// interface: none is asked for). Where the record is kept on this host: routes alone.
pub fn read_request(
    t: &dyn Transport,
    node: &Node,
    addresses: bool,
    snapshot: bool,
) -> ReadRequest {
    let in_node = !t.records_on_host();
    ReadRequest {
        record: in_node.then(|| record::record_path(&node.instance)),
        facts_of: node
            .interface
            .clone()
            .filter(|i| in_node && t.sees_node_files() && !i.is_empty()),
        addresses,
        snapshot,
    }
}

/// The network-manager facts of a read; for a transport that cannot see the node's files,
/// those of a node that no network manager manages; `Err` says why they are unknown.
fn facts_of(
    t: &dyn Transport,
    node: &Node,
    facts: Option<Result<NodeFacts, String>>,
) -> Result<NodeFacts, String> {
    if !t.sees_node_files() {
        return Ok(NodeFacts {
            interface: node.interface.clone().unwrap_or_default(),
            ..NodeFacts::default()
        });
    }
    if node.interface.is_none() {
        return Err(
            "the node declares no route interface (an ssh node without `interface`), so what \
             manages it is not read"
                .to_string(),
        );
    }
    facts.unwrap_or_else(|| Err("the read printed no network-manager facts".to_string()))
}

/// A read's routes with what the read tells beside them: the record (checked against the
/// binding), the binding, and the facts. Where the transport keeps records on this host, the
/// record and the binding are read there.
fn observed(t: &dyn Transport, node: &Node, reply: ReadReply, routes: Vec<Route>) -> Observed {
    let facts = facts_of(t, node, reply.facts);
    let (binding, record) = if t.records_on_host() {
        let HostRecord { binding, record } =
            t.host_record(&node.instance, &record::record_path(&node.instance));
        (binding, record)
    } else {
        (reply.binding, Ok(reply.record))
    };
    let last_applied = record
        .map_err(|why| format!("the last-applied record could not be read ({why}); ignored"))
        .and_then(|bytes| record::parse(&bytes, binding.as_deref()));
    Observed {
        routes,
        last_applied,
        binding,
        facts,
    }
}

/// The command an exec transport runs for the plan's read of a node (routes, record, facts).
pub fn read_invocation(t: &dyn Transport, node: &Node) -> Invocation {
    read_script::read_invocation(&read_request(t, node, false, false))
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

/// Carries out a read of a node under [`RETRY`] and returns the reply when its routes part is
/// not empty (it may still be unreadable: the caller diagnoses that). A failure is returned at
/// once as [`CommandError::Status`] (not retried: the caller diagnoses it); a timeout is
/// retried once, an empty read up to [`READ_ATTEMPTS`] times in all.
pub fn run_read(t: &dyn Transport, node: &Node, req: &ReadRequest) -> Result<ReadReply, NodeError> {
    run_with(t, node, req, &RETRY)
}

fn run_with(
    t: &dyn Transport,
    node: &Node,
    req: &ReadRequest,
    policy: &RetryPolicy,
) -> Result<ReadReply, NodeError> {
    let mut timeouts = 0;
    let mut empties = 0;
    loop {
        let reply = match t.read(&node.instance, req) {
            Err(CommandError::Timeout { .. }) if timeouts < policy.timeout_retries => {
                timeouts += 1;
                continue;
            }
            Err(CommandError::Timeout { argv, millis, .. }) => {
                return Err(NodeError::Command(CommandError::Timeout {
                    argv,
                    millis,
                    attempts: u32::try_from(timeouts + 1).unwrap_or(u32::MAX),
                }));
            }
            other => other?,
        };
        // The read script prints its separators always: what must not be empty is `ip`'s part.
        if reply.routes != Err(ParseError::Empty) {
            return Ok(reply);
        }
        empties += 1;
        if empties >= policy.empty_attempts {
            return Err(NodeError::EmptyRead {
                argv: reply.argv,
                attempts: empties,
            });
        }
        std::thread::sleep(policy.pause);
    }
}

/// Reads every route of a node.
pub fn read_node(t: &dyn Transport, node: &Node) -> Result<Vec<Route>, NodeError> {
    read_plain(t, node, false).map(|(_, routes)| routes)
}

/// Reads every route of a node, its last-applied record and what manages its route interface,
/// in one round trip.
pub fn read_observed(t: &dyn Transport, node: &Node) -> Result<Observed, NodeError> {
    let (reply, routes) = read_plain(t, node, false)?;
    Ok(observed(t, node, reply, routes))
}

/// The plan's read of a node (with the route table in the snapshot format when `snapshot`):
/// the reply and its routes; a failure, or routes that cannot be read, is diagnosed (a missing
/// or old `ip` is named).
fn read_plain(
    t: &dyn Transport,
    node: &Node,
    snapshot: bool,
) -> Result<(ReadReply, Vec<Route>), NodeError> {
    let mut reply =
        run_read(t, node, &read_request(t, node, false, snapshot)).map_err(|e| match e {
            NodeError::Command(CommandError::Status { .. }) => diagnose(t, node, e),
            other => other,
        })?;
    let routes = std::mem::replace(&mut reply.routes, Ok(Vec::new()));
    match routes {
        Ok(routes) => Ok((reply, routes)),
        Err(error) => Err(diagnose(
            t,
            node,
            NodeError::Output {
                argv: reply.argv,
                error,
            },
        )),
    }
}

/// When `ip` failed or printed garbage, asks for its version: an old iproute2 is the likely
/// cause and deserves a message that says so.
fn diagnose(t: &dyn Transport, node: &Node, err: NodeError) -> NodeError {
    if let NodeError::Command(c @ CommandError::Status { argv, stderr, .. }) = &err
        && let Some(hint) = instance_hint(node, argv, stderr)
    {
        return NodeError::Instance {
            error: Box::new(c.clone()),
            hint: Box::new(hint),
        };
    }
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
        .run(&node.instance, &commands::ip_version_invocation())
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

/// What LXD's or Incus's client said of the instance when it could not run a command there:
/// missing, or stopped (`None` for anything else, and for other transports).
fn instance_hint(node: &Node, argv: &str, stderr: &str) -> Option<crate::error::InstanceHint> {
    let program = argv.split_whitespace().next()?;
    let client = match program.rsplit('/').next()? {
        "lxc" => "lxc",
        "incus" => "incus",
        _ => return None,
    };
    let (instance, project) = (node.instance.clone(), node.project.clone());
    if stderr.contains("Instance not found") {
        Some(crate::error::InstanceHint::Missing {
            instance,
            project,
            client,
        })
    } else if stderr.contains("Instance is not running") {
        Some(crate::error::InstanceHint::Stopped {
            instance,
            project,
            client,
        })
    } else {
        None
    }
}

/// Reads a node from the bytes of its snapshot (written by `routectl show --save DIR`; the
/// files are read, bounded, by `local::files`): its routes, and its last-applied record when the
/// snapshot has one (`record`: the record file's path and bytes). What manages the node's
/// interface is not in a snapshot ([`persist::FROM_SNAPSHOT`]).
pub fn parse_saved(
    path: &Path,
    bytes: &[u8],
    record: Option<(&Path, &[u8])>,
) -> Result<Observed, NodeError> {
    let routes = iproute::parse_routes(bytes).map_err(|error| NodeError::Output {
        argv: format!("(snapshot {})", path.display()),
        error,
    })?;
    let last_applied = match record {
        // The record was checked against the node when the snapshot was taken.
        Some((record_path, b)) => serde_json::from_slice::<LastApplied>(b)
            .map(Some)
            .map_err(|e| {
                format!(
                    "snapshot `{}` is damaged ({e}); ignored",
                    record_path.display()
                )
            }),
        None => Ok(None),
    };
    Ok(Observed {
        routes,
        last_applied,
        binding: None,
        facts: Err(persist::FROM_SNAPSHOT.to_string()),
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

/// A read with addresses, as `show` judges it: routes (parsed, and the table as the snapshot
/// stores it) and interfaces; the record and the facts are filled in by [`read_show`].
pub fn parse_show(output: &[u8]) -> Result<Observation, ParseError> {
    let (routes, raw_routes, links) = read_script::parse_show_part(output)?;
    Ok(Observation {
        routes,
        raw_routes,
        links: Ok(links),
        last_applied: Ok(None),
        facts: Err("not read".to_string()),
    })
}

/// Reads a node's routes, addresses, record and facts in one round trip, under the same
/// [`RETRY`] policy as every read. When that read fails or answers something unreadable, the
/// plain route read of [`read_node`] is tried instead: it names an old iproute2 when that is
/// the cause, and when it succeeds the routes are shown and only the address checks are lost.
pub fn read_show(t: &dyn Transport, node: &Node) -> Result<Observation, NodeError> {
    let why = match run_read(t, node, &read_request(t, node, true, true)) {
        Ok(mut reply) => match std::mem::replace(&mut reply.routes, Ok(Vec::new())) {
            Ok(routes) => {
                let links = reply.links.take().unwrap_or_default();
                let raw_routes = std::mem::take(&mut reply.snapshot);
                let beside = observed(t, node, reply, Vec::new());
                return Ok(Observation {
                    routes,
                    raw_routes,
                    links: Ok(links),
                    last_applied: beside.last_applied,
                    facts: beside.facts,
                });
            }
            Err(e) => format!("`{}`: {e}", reply.argv),
        },
        Err(NodeError::Command(e @ CommandError::Status { .. })) => e.to_string(),
        Err(other) => return Err(other),
    };
    let (mut reply, routes) = read_plain(t, node, true)?;
    let raw_routes = std::mem::take(&mut reply.snapshot);
    let plain = observed(t, node, reply, routes);
    Ok(Observation {
        routes: plain.routes,
        raw_routes,
        links: Err(why),
        last_applied: plain.last_applied,
        facts: plain.facts,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::core::topology::parse;
    use crate::node::transport::Output;

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
            attempts: 1,
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
            // The message says the wait was doubled.
            assert!(err.to_string().ends_with("was killed (2 tries)"), "{err}");
            assert_eq!(t.runs().len(), 2);
        }
    }

    #[test]
    fn a_missing_or_stopped_instance_is_named_with_its_project() {
        let mut n = node();
        n.instance = "wroker-3".into();
        n.project = Some("newbie".into());
        let hint = instance_hint(
            &n,
            "lxc exec --project newbie wroker-3 -- sh",
            "Error: Instance not found\n",
        );
        assert_eq!(
            hint.unwrap().to_string(),
            "no instance `wroker-3` in project newbie (`lxc list --project newbie` lists them; is \
             `instance` or `name` mistyped?)"
        );
        let hint = instance_hint(
            &n,
            "/usr/bin/incus exec wroker-3 -- sh",
            "Error: Instance is not running",
        );
        assert_eq!(
            hint.unwrap().to_string(),
            "instance `wroker-3` is stopped: start it with `incus start --project newbie wroker-3`"
        );
        assert_eq!(
            instance_hint(&n, "ip netns exec x ip", "Instance not found"),
            None
        );
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
    fn the_read_script_prints_the_separators_split_read_looks_for() {
        assert_eq!(READ_SCRIPT.matches(SEPARATOR).count(), 3);
        assert!(READ_SCRIPT.contains(persist::FACTS_MARKER));
        assert!(READ_SCRIPT.contains(persist::DROPIN_MARKER));
        // One line without backslashes, as `-v` and the fakes (`echo`) log it.
        assert!(!READ_SCRIPT.contains('\n') && !READ_SCRIPT.contains('\\'));
        // routectl changes nothing in the node but its routes and its own files.
        for script in [
            READ_SCRIPT,
            crate::node::transport::apply_script::APPLY_SCRIPT,
        ] {
            assert!(!script.contains("ip link"), "{script}");
            assert!(!script.contains("alias"), "{script}");
        }
    }

    #[test]
    fn a_read_splits_into_routes_binding_record_and_facts() {
        let out = b"[{\"dst\":\"10.1.1.0/24\"}]\n\n--routectl-read-part--\nboot=b pid1=7 netns=net:[1]\n--routectl-read-part--\n{\"x\":1}\n--routectl-read-part--\n#routectl-facts 1\nproc=systemd-networkd\n";
        let p = split_read(out);
        assert_eq!(p.ip, b"[{\"dst\":\"10.1.1.0/24\"}]\n");
        assert_eq!(
            p.binding.and_then(binding_of).as_deref(),
            Some("boot=b pid1=7 netns=net:[1]")
        );
        assert_eq!(p.record, b"{\"x\":1}\n");
        assert_eq!(
            p.facts,
            Some(&b"#routectl-facts 1\nproc=systemd-networkd\n"[..])
        );
        // No record, no facts asked for; a binding nothing of which could be read.
        let p = split_read(
            b"[]\n\n--routectl-read-part--\nboot= pid1= netns=\n--routectl-read-part--\n",
        );
        assert_eq!((p.ip, p.record, p.facts), (&b"[]\n"[..], &b""[..], None));
        assert_eq!(p.binding.and_then(binding_of), None);
        // No record, then facts: the separators follow each other.
        let p = split_read(b"[]\n\n--routectl-read-part--\nboot=b pid1=1 netns=\n--routectl-read-part--\n--routectl-read-part--\n#routectl-facts 1\n");
        assert_eq!(p.record, b"");
        assert_eq!(p.facts, Some(&b"#routectl-facts 1\n"[..]));
        // `ip` alone (netns, an older fake, a snapshot): all routes.
        let p = split_read(b"[]");
        assert_eq!((p.ip, p.binding), (&b"[]"[..], None));
    }

    /// The scripts run in the real shell: the record is written (by the apply script), read
    /// back in the same command as the routes, and removed; nothing is written through a
    /// planted link.
    #[test]
    fn scripts_write_and_read_a_record_in_a_private_directory() {
        use crate::node::request::{ApplyRequest, FileChange};
        use crate::node::transport::apply_script::{APPLY_SCRIPT, apply_invocation};
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("routectl/last-applied/n.json");
        let fs = f.to_str().unwrap();
        let write = |path: &str, change: FileChange| {
            let inv = apply_invocation(
                &ApplyRequest {
                    record: Some((path.to_string(), change)),
                    ..ApplyRequest::default()
                },
                path,
            );
            assert_eq!(inv.args[1], APPLY_SCRIPT);
            let args: Vec<&str> = inv.args[3..].iter().map(String::as_str).collect();
            run_sh(APPLY_SCRIPT, &args, inv.stdin.as_deref().unwrap())
        };
        let out = write(fs, FileChange::Write(b"{\"a\":1}\n".to_vec()));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&f).unwrap(), b"{\"a\":1}\n");
        let out = run_sh(READ_SCRIPT, &[fs, "", "echo", "[]"], b"");
        let p = split_read(&out.stdout);
        assert_eq!(p.ip, b"[]\n");
        assert_eq!(p.record, b"{\"a\":1}\n");
        assert_eq!(p.facts, None);
        let out = write(fs, FileChange::Remove);
        assert!(out.status.success());
        assert!(!f.exists());
        // A directory that is a symlink is refused.
        let evil = tempfile::tempdir().unwrap();
        let d2 = dir.path().join("other");
        std::fs::create_dir(&d2).unwrap();
        std::os::unix::fs::symlink(evil.path(), d2.join("last-applied")).unwrap();
        let f2 = d2.join("last-applied/n.json");
        let out = write(f2.to_str().unwrap(), FileChange::Write(b"{}".to_vec()));
        assert!(!out.status.success());
        assert_eq!(std::fs::read_dir(evil.path()).unwrap().count(), 0);
    }

    /// Runs `script` in the real shell with `args`, `stdin` on its stdin.
    fn run_sh(script: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
        let mut c = std::process::Command::new("sh");
        c.arg("-c").arg(script).arg("sh").args(args);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(stdin);
        child.wait_with_output().unwrap()
    }

    /// The binding is computed from what the node is, never stored: the same process tree
    /// gives the same binding every time, and PID 1's start time is taken after the last `)`.
    #[test]
    fn the_binding_is_the_boot_and_pid_1s_start() {
        let once = run_sh(READ_SCRIPT, &["/nonexistent", "", "echo", "[]"], b"");
        let again = run_sh(READ_SCRIPT, &["/nonexistent", "", "echo", "[]"], b"");
        let b = split_read(&once.stdout)
            .binding
            .and_then(binding_of)
            .unwrap();
        assert_eq!(
            Some(b.clone()),
            split_read(&again.stdout).binding.and_then(binding_of)
        );
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        assert!(b.starts_with(&format!("boot={} pid1=", boot.trim())), "{b}");
        // A command name with spaces and parentheses does not shift the fields.
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        std::fs::write(
            &stat,
            "1 (a) b (c d) S 0 1 1 0 -1 4194560 1 2 0 0 0 0 0 0 20 0 1 0 98765 1 2 3\n",
        )
        .unwrap();
        let script = READ_SCRIPT.replace("/proc/1/stat", stat.to_str().unwrap());
        let out = run_sh(&script, &["/nonexistent", "", "echo", "[]"], b"");
        let b = split_read(&out.stdout)
            .binding
            .and_then(binding_of)
            .unwrap();
        assert!(b.ends_with(" pid1=98765"), "{b}");
    }

    /// A transport that runs nothing and says what it can see.
    struct Sees {
        files: bool,
        on_host: bool,
    }

    impl Transport for Sees {
        fn run(&self, _: &str, _: &Invocation) -> Result<Output, CommandError> {
            unreachable!("not run in these tests")
        }
        fn sees_node_files(&self) -> bool {
            self.files
        }
        fn records_on_host(&self) -> bool {
            self.on_host
        }
    }

    #[test]
    fn the_read_is_a_script_only_where_the_record_is_in_the_node() {
        let n = node();
        // A network namespace: `ip` alone (its record is read on this host).
        let netns = Sees {
            files: false,
            on_host: true,
        };
        assert_eq!(
            read_invocation(&netns, &n),
            Invocation::ip(iproute::read_args())
        );
        // An LXD/Incus instance: the script, with the facts of the route interface.
        let lxd = Sees {
            files: true,
            on_host: false,
        };
        let wrapped = read_invocation(&lxd, &n);
        assert_eq!(wrapped.program, "sh");
        assert_eq!(wrapped.args[0], "-c");
        assert_eq!(wrapped.args[1], READ_SCRIPT);
        assert_eq!(
            wrapped.args[2..6],
            ["sh", "/run/routectl/last-applied/w0.json", "eth1", "ip"]
        );
        assert_eq!(wrapped.args[6..], iproute::read_args());
        // A transport that sees no files of the node: the script without facts.
        let bare = Sees {
            files: false,
            on_host: false,
        };
        assert_eq!(read_invocation(&bare, &n).args[4], "");
    }

    #[test]
    fn the_script_passes_the_reads_failure_through_and_appends_facts_to_its_output() {
        let failed = run_sh(
            READ_SCRIPT,
            &["/nonexistent", "lo", "sh", "-c", "echo nope >&2; exit 2"],
            b"",
        );
        assert_eq!(failed.status.code(), Some(2));
        assert_eq!(failed.stdout, b"");
        assert_eq!(failed.stderr, b"nope\n");
        let ok = run_sh(READ_SCRIPT, &["/nonexistent", "lo", "echo", "[]"], b"");
        assert_eq!(ok.status.code(), Some(0), "{ok:?}");
        let p = split_read(&ok.stdout);
        assert_eq!(p.ip, b"[]\n");
        let facts = String::from_utf8(p.facts.unwrap().to_vec()).unwrap();
        assert!(facts.starts_with("#routectl-facts 1\n"), "{facts}");
    }

    #[test]
    fn facts_are_split_from_the_ip_output_exactly() {
        let n = node();
        let lxd = Sees {
            files: true,
            on_host: false,
        };
        let out = b"[{\"dst\":\"10.0.2.0/24\"}]\n\n--routectl-read-part--\nboot=b pid1=1 netns=n\n--routectl-read-part--\n--routectl-read-part--\n#routectl-facts 1\nNETWORK_FILE=/etc/systemd/network/10-eth1.network\nADMIN_STATE=configured\n#routectl-dropin\n[Route]\nDestination=10.1.0.0/24\n";
        let req = read_request(&lxd, &n, false, false);
        let reply = |stdout: &[u8]| {
            read_script::parse_reply(
                &req,
                Output {
                    argv: "sh".into(),
                    status: Some(0),
                    stdout: stdout.to_vec(),
                    stderr: String::new(),
                },
            )
        };
        let r = reply(out);
        assert_eq!(r.routes.as_ref().map(Vec::len), Ok(1));
        let facts = facts_of(&lxd, &n, r.facts).unwrap();
        assert_eq!(
            facts.network_file.as_deref(),
            Some("/etc/systemd/network/10-eth1.network")
        );
        assert_eq!(
            facts.dropin.as_deref(),
            Some("[Route]\nDestination=10.1.0.0/24\n")
        );
        // No facts in the output (a fake, an old wrapper): unknown, with the reason.
        assert!(facts_of(&lxd, &n, reply(b"[]\n").facts).is_err());
        // A namespace: nothing manages it.
        let netns = Sees {
            files: false,
            on_host: true,
        };
        assert_eq!(
            facts_of(&netns, &n, None).unwrap().manager(),
            crate::core::persist::Manager::Nothing
        );
    }
}

#[cfg(test)]
mod show_reads {
    //! `show`'s judgement of real reads: the show read of the LXD lab parsed by [`parse_show`],
    //! then marked by [`crate::core::show::view`].

    use super::*;
    use crate::core::plan::Plan;
    use crate::core::show::{Mark, NodeView, view};
    use crate::core::topology::fixtures::lab;
    use crate::core::topology::parse;

    /// Captured on the LXD lab before any route was added (see iproute's tests).
    const WORKER_0: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lab/worker-0.show.json"
    ));
    const CONTROLLER_0: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lab/controller-0.show.json"
    ));

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
            crate::core::topology::fixtures::LAB
                .replace("internal_ip = \"10.0.2.20\"", "internal_ip = \"10.0.2.30\"")
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
