//! Reading what nodes have: one `ip` process per node (both families, every table), retried
//! when a transport returns nothing, diagnosed when `ip` is too old. Also reads snapshots saved
//! by `routectl show --save`, so plans can be made offline.

use std::path::Path;
use std::time::Duration;

use crate::core::persist::{self, NodeFacts, NodeRead};
use crate::core::route::Route;
use crate::core::show::Observation;
use crate::core::topology::Node;
use crate::error::ParseError;
use crate::error::{CommandError, NodeError};
use crate::node::iproute;
use crate::node::transport::{Invocation, Output, Transport};

/// The command that reads a node's routes.
pub fn read_invocation() -> Invocation {
    Invocation::ip(iproute::read_args())
}

/// The fixed script that wraps a read on a node whose own files the transport sees: it runs the
/// `ip` command given after the interface (`sh -c SCRIPT sh IFACE ip ARGS...`; stdin goes to
/// `ip`), exits with `ip`'s status if that fails, and otherwise prints, after a line
/// [`persist::FACTS_MARKER`], what tells who manages IFACE: networkd's `NETWORK_FILE=` and
/// `ADMIN_STATE=` for the link, whether networkd or NetworkManager run, NetworkManager's and
/// ifupdown's state for the link, and routectl's drop-in for the network file (after
/// [`persist::DROPIN_MARKER`], to the end; a symbolic link there is reported, never followed).
/// Values reach it only as positional parameters; it
/// uses nothing but shell built-ins and `cat`. One line, so that logs of argv stay one line.
pub const FACTS_SCRIPT: &str = concat!(
    r#"i=$1; shift; "$@" || exit; echo; echo '#routectl-facts 1'; x=; nf=; "#,
    r#"if [ -r "/sys/class/net/$i/ifindex" ]; then read -r x < "/sys/class/net/$i/ifindex"; fi; "#,
    r#"f="/run/systemd/netif/links/$x"; if [ -n "$x" ] && [ -r "$f" ]; then "#,
    r#"while IFS= read -r l; do case $l in NETWORK_FILE=*) nf=${l#NETWORK_FILE=}; echo "$l";; "#,
    r#"ADMIN_STATE=*) echo "$l";; esac; done < "$f"; fi; nd=; nm=; "#,
    r#"for c in /proc/[0-9]*/comm; do n=; { read -r n < "$c"; } 2>/dev/null; case $n in "#,
    r#"systemd-network) nd=1;; NetworkManager) nm=1;; esac; done; "#,
    r#"[ -z "$nd" ] || echo proc=systemd-networkd; [ -z "$nm" ] || echo proc=NetworkManager; "#,
    r#"if [ -n "$x" ] && [ -e "/run/NetworkManager/devices/$x" ]; then echo nm_device=1; fi; "#,
    r#"if [ -e "/run/network/ifstate.$i" ]; then echo ifupdown=1; fi; "#,
    r#"if [ -n "$nf" ]; then e="/etc/systemd/network/${nf##*/}.d"; d="$e/50-routectl.conf"; "#,
    r#"if [ -L "$e" ] || [ -L "$d" ]; then echo dropin_link=1; "#,
    r#"elif [ -f "$d" ]; then echo '#routectl-dropin'; cat -- "$d" || exit 1; fi; fi; exit 0"#
);

/// `inv` wrapped in [`FACTS_SCRIPT`] for `node`'s route interface when the transport sees the
/// node's own files; `inv` unchanged otherwise.
pub fn with_facts(t: &dyn Transport, node: &Node, inv: Invocation) -> Invocation {
    if !t.sees_node_files() {
        return inv;
    }
    let mut args = vec![
        "-c".to_string(),
        FACTS_SCRIPT.to_string(),
        "sh".to_string(),
        node.interface.clone(),
        inv.program,
    ];
    args.extend(inv.args);
    Invocation {
        program: "sh".to_string(),
        args,
        stdin: inv.stdin,
    }
}

/// Splits a read's stdout into what `ip` printed and the facts: `Ok` facts when the read had
/// them (or, for a transport that cannot see the node's files, the facts of a node that no
/// network manager manages); `Err` says why they are unknown.
pub fn split_facts<'a>(
    t: &dyn Transport,
    node: &Node,
    stdout: &'a [u8],
) -> (&'a [u8], Result<NodeFacts, String>) {
    if !t.sees_node_files() {
        return (
            stdout,
            Ok(NodeFacts {
                interface: node.interface.clone(),
                ..NodeFacts::default()
            }),
        );
    }
    let marker = format!("\n{}\n", persist::FACTS_MARKER);
    match find(stdout, marker.as_bytes()) {
        Some(at) => (
            &stdout[..at],
            Ok(NodeFacts::parse(
                &node.interface,
                &String::from_utf8_lossy(&stdout[at + marker.len()..]),
            )),
        ),
        None => (
            stdout,
            Err("the read printed no network-manager facts".to_string()),
        ),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
        if !out.stdout.iter().all(u8::is_ascii_whitespace) {
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
    read_node_full(t, node).map(|r| r.routes)
}

/// Reads every route of a node and, in the same command, what manages its route interface.
pub fn read_node_full(t: &dyn Transport, node: &Node) -> Result<NodeRead, NodeError> {
    let out = read_raw(t, node)?;
    let (routes, facts) = split_facts(t, node, &out.stdout);
    let parsed = Output {
        stdout: routes.to_vec(),
        ..out
    };
    Ok(NodeRead {
        routes: parse_read(t, node, &parsed)?,
        facts,
    })
}

/// Runs the route read and returns its successful output (stdout not yet parsed; with the facts
/// when the transport sees the node's files); a failure is diagnosed (a missing or old `ip` is
/// named).
pub fn read_raw(t: &dyn Transport, node: &Node) -> Result<Output, NodeError> {
    run_read(t, node, &with_facts(t, node, read_invocation())).map_err(|e| match e {
        NodeError::Command(CommandError::Status { .. }) => diagnose(t, node, e),
        other => other,
    })
}

/// Parses a read's stdout; a refusal is checked against the node's iproute2 version.
pub fn parse_read(t: &dyn Transport, node: &Node, out: &Output) -> Result<Vec<Route>, NodeError> {
    iproute::parse_routes(&out.stdout).map_err(|error| {
        diagnose(
            t,
            node,
            NodeError::Output {
                argv: out.argv.clone(),
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

/// Reads a node from a snapshot directory written by `routectl show --save DIR`.
pub fn read_saved(dir: &Path, node: &Node) -> Result<Vec<Route>, NodeError> {
    let path = snapshot_path(dir, node);
    let bytes = std::fs::read(&path).map_err(|e| NodeError::Snapshot {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    iproute::parse_routes(&bytes).map_err(|error| NodeError::Output {
        argv: format!("(snapshot {})", path.display()),
        error,
    })
}

/// Where a node's snapshot lives.
pub fn snapshot_path(dir: &Path, node: &Node) -> std::path::PathBuf {
    dir.join(format!("{}.json", node.name))
}

/// The `ip -batch` script of a show read: routes first (exactly the lone route read), then
/// addresses.
pub const SHOW_SCRIPT: &str = "route show table all\naddr show\n";

/// The command that reads a node's routes and addresses in one process.
pub fn show_invocation() -> Invocation {
    let mut args: Vec<String> = iproute::READ_OPTIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["-batch".to_string(), "-".to_string()]);
    Invocation::ip(args).with_stdin(SHOW_SCRIPT.as_bytes().to_vec())
}

/// Splits a show read's output into routes (parsed and raw) and interfaces (without facts).
pub fn parse_show(output: &[u8]) -> Result<Observation, ParseError> {
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
        facts: Err("not read".to_string()),
    })
}

/// Reads a node's routes and addresses with one command, under the same [`RETRY`] policy as
/// every read. When the combined read fails or prints something unreadable, the plain route
/// read of [`read_raw`] is tried instead: it names an old iproute2 when that is the cause, and
/// when it succeeds the routes are shown and only the address checks are lost.
pub fn read_show(t: &dyn Transport, node: &Node) -> Result<Observation, NodeError> {
    let why = match run_read(t, node, &with_facts(t, node, show_invocation())) {
        Ok(out) => {
            let (ip_out, facts) = split_facts(t, node, &out.stdout);
            match parse_show(ip_out) {
                Ok(obs) => return Ok(Observation { facts, ..obs }),
                Err(e) => format!("`{}`: {e}", out.argv),
            }
        }
        Err(NodeError::Command(e @ CommandError::Status { .. })) => e.to_string(),
        Err(other) => return Err(other),
    };
    let plain = read_raw(t, node)?;
    let (ip_out, facts) = split_facts(t, node, &plain.stdout);
    let plain = Output {
        stdout: ip_out.to_vec(),
        ..plain
    };
    let routes = parse_read(t, node, &plain)?;
    Ok(Observation {
        routes,
        raw_routes: plain.stdout,
        links: Err(why),
        facts,
    })
}

/// Stores a node's raw route read where `routectl plan --observed DIR` looks for it, replacing
/// any older snapshot atomically (written beside it, then renamed).
pub fn save_snapshot(dir: &Path, node: &Node, raw_routes: &[u8]) -> std::io::Result<()> {
    let path = snapshot_path(dir, node);
    let tmp = dir.join(format!(".{}.json.tmp", node.name));
    std::fs::write(&tmp, raw_routes)?;
    std::fs::rename(&tmp, &path)
}

/// Removes a node's snapshot, so that an unreadable node cannot be planned from an old one.
pub fn remove_snapshot(dir: &Path, node: &Node) -> std::io::Result<()> {
    match std::fs::remove_file(snapshot_path(dir, node)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
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

    /// A transport that runs nothing and says whether it sees the node's files.
    struct Sees(bool);

    impl Transport for Sees {
        fn run(&self, _: &str, _: &Invocation) -> Result<Output, CommandError> {
            unreachable!("not run in these tests")
        }
        fn sees_node_files(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn the_read_is_wrapped_only_where_the_node_has_files_of_its_own() {
        let n = node();
        let plain = with_facts(&Sees(false), &n, read_invocation());
        assert_eq!(plain, read_invocation());
        let wrapped = with_facts(&Sees(true), &n, read_invocation());
        assert_eq!(wrapped.program, "sh");
        assert_eq!(wrapped.args[0], "-c");
        assert_eq!(wrapped.args[1], FACTS_SCRIPT);
        assert_eq!(wrapped.args[2..4], ["sh", "eth1"]);
        assert_eq!(wrapped.args[4], "ip");
        assert_eq!(wrapped.args[5..], iproute::read_args());
        assert!(!FACTS_SCRIPT.contains('\n'));
    }

    /// The real script, run here with stand-ins for `ip`.
    fn run_script(cmd: &[&str]) -> std::process::Output {
        std::process::Command::new("sh")
            .args(["-c", FACTS_SCRIPT, "sh", "lo"])
            .args(cmd)
            .output()
            .unwrap()
    }

    #[test]
    fn the_script_passes_the_reads_failure_through_and_appends_facts_to_its_output() {
        let failed = run_script(&["sh", "-c", "echo nope >&2; exit 2"]);
        assert_eq!(failed.status.code(), Some(2));
        assert_eq!(failed.stdout, b"");
        assert_eq!(failed.stderr, b"nope\n");
        let ok = run_script(&["echo", "[]"]);
        assert_eq!(ok.status.code(), Some(0), "{ok:?}");
        let text = String::from_utf8(ok.stdout).unwrap();
        assert!(text.starts_with("[]\n\n#routectl-facts 1\n"), "{text}");
    }

    #[test]
    fn facts_are_split_from_the_ip_output_exactly() {
        let n = node();
        let out = b"[{\"dst\":\"10.0.2.0/24\"}]\n\n#routectl-facts 1\nNETWORK_FILE=/etc/systemd/network/10-eth1.network\nADMIN_STATE=configured\n#routectl-dropin\n[Route]\nDestination=10.1.0.0/24\n";
        let (ip, facts) = split_facts(&Sees(true), &n, out);
        assert_eq!(ip, b"[{\"dst\":\"10.0.2.0/24\"}]\n");
        let facts = facts.unwrap();
        assert_eq!(
            facts.network_file.as_deref(),
            Some("/etc/systemd/network/10-eth1.network")
        );
        assert_eq!(
            facts.dropin.as_deref(),
            Some("[Route]\nDestination=10.1.0.0/24\n")
        );
        // No facts in the output (a fake, an old wrapper): the routes are all of it.
        let (ip, facts) = split_facts(&Sees(true), &n, b"[]\n");
        assert_eq!(ip, b"[]\n");
        assert!(facts.is_err());
        // A namespace: nothing manages it.
        let (_, facts) = split_facts(&Sees(false), &n, b"[]\n");
        assert_eq!(
            facts.unwrap().manager(),
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
