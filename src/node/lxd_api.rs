//! The LXD (or Incus) REST API over the daemon's unix socket: which instances exist, where
//! they run, and the init PID of a container, which host access needs to find its network
//! namespace.
//!
//! The daemon is the only authority on a container's identity. `GET /1.0/instances?recursion=1`
//! (a few ms, from the daemon's database) lists every instance of a project with its type,
//! status and location (the cluster member that runs it); `GET /1.0` names the member the socket
//! belongs to. A container's init PID comes from `GET /1.0/instances/NAME/state`, asked only for
//! running containers located on this member: on a cluster, another member's PID is a process
//! number on another machine. Nothing is taken from process names, which any container can
//! forge (see [`crate::node::host`] for the checks made on the PID the daemon gives).
//!
//! A tiny HTTP/1.0 client: one request per connection, the daemon closes it after the answer,
//! so there is no chunked encoding to undo.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::core::topology::TransportKind;

/// The most read from one answer (an instance with state is about 5 KiB).
const MAX_ANSWER: u64 = 64 << 20;

/// What host access needs to know of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `container` or `virtual-machine`.
    pub kind: String,
    /// `Running`, `Stopped`, `Frozen`, `Error` (its member is unreachable), …
    pub status: String,
    /// The cluster member that runs it (empty or `none` outside a cluster).
    pub location: String,
}

/// The daemon behind a socket: its member name on a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Server {
    /// Whether the daemon is a member of a cluster.
    pub clustered: bool,
    /// Its member name (`environment.server_name`).
    pub name: String,
}

impl Server {
    /// Whether an instance at `location` runs on this daemon's own machine.
    pub fn hosts(&self, location: &str) -> bool {
        !self.clustered || location.is_empty() || location == "none" || location == self.name
    }
}

/// The daemon's socket for a transport: `$LXD_DIR/unix.socket` (`$INCUS_DIR` for Incus), else
/// the snap's, else the package's.
pub fn socket_path(kind: TransportKind) -> PathBuf {
    let (var, dirs): (&str, &[&str]) = match kind {
        TransportKind::Incus => ("INCUS_DIR", &["/var/lib/incus"]),
        _ => ("LXD_DIR", &["/var/snap/lxd/common/lxd", "/var/lib/lxd"]),
    };
    if let Some(d) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("unix.socket");
    }
    for d in dirs {
        let p = PathBuf::from(d).join("unix.socket");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(dirs[dirs.len() - 1]).join("unix.socket")
}

#[derive(Deserialize)]
struct Answer<T> {
    #[serde(default)]
    error: String,
    #[serde(default)]
    metadata: Option<T>,
}

#[derive(Deserialize, Default)]
struct RawInstance {
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    location: String,
}

#[derive(Deserialize, Default)]
struct RawState {
    #[serde(default)]
    pid: i64,
}

#[derive(Deserialize, Default)]
struct RawServer {
    #[serde(default)]
    environment: RawEnvironment,
}

#[derive(Deserialize, Default)]
struct RawEnvironment {
    #[serde(default)]
    server_clustered: bool,
    #[serde(default)]
    server_name: String,
}

/// The `project=` query of a project (`None` and `default`: none).
fn project_query(project: Option<&str>) -> String {
    // A project name is checked by the topology (a plain token), so it needs no escaping.
    project
        .filter(|p| *p != "default")
        .map(|p| format!("project={p}"))
        .unwrap_or_default()
}

fn with_query(path: &str, query: &str) -> String {
    match (query.is_empty(), path.contains('?')) {
        (true, _) => path.to_string(),
        (false, true) => format!("{path}&{query}"),
        (false, false) => format!("{path}?{query}"),
    }
}

/// Lists the instances of a project (`None`: the default one) as name -> instance: one request.
pub fn instances(
    socket: &std::path::Path,
    project: Option<&str>,
    timeout: Duration,
) -> Result<HashMap<String, Instance>, String> {
    let path = with_query("/1.0/instances?recursion=1", &project_query(project));
    parse_instances(&get(socket, &path, timeout)?)
}

/// The daemon behind `socket`: whether it is clustered and its member name.
pub fn server(socket: &std::path::Path, timeout: Duration) -> Result<Server, String> {
    let body = get(socket, "/1.0", timeout)?;
    let a: Answer<RawServer> = serde_json::from_slice(&body)
        .map_err(|e| format!("the daemon's answer to /1.0 is not a server: {e}"))?;
    let env = a.metadata.unwrap_or_default().environment;
    Ok(Server {
        clustered: env.server_clustered,
        name: env.server_name,
    })
}

/// One instance as the daemon reports it (`GET /1.0/instances/NAME`); on a cluster the
/// daemon asks the member that runs it.
pub fn instance(
    socket: &std::path::Path,
    project: Option<&str>,
    name: &str,
    timeout: Duration,
) -> Result<Instance, String> {
    // An instance name is checked by the topology (a plain token).
    let path = with_query(&format!("/1.0/instances/{name}"), &project_query(project));
    let a: Answer<RawInstance> = serde_json::from_slice(&get(socket, &path, timeout)?)
        .map_err(|e| format!("the daemon's answer for `{name}` is not an instance: {e}"))?;
    let r = a.metadata.unwrap_or_default();
    Ok(Instance {
        kind: r.kind,
        status: r.status,
        location: r.location,
    })
}

/// The members of a cluster that the daemon does not count as online, with their status
/// (`Offline`, `Evacuated`, …): `GET /1.0/cluster/members?recursion=1`, from its database.
pub fn members_not_online(
    socket: &std::path::Path,
    timeout: Duration,
) -> Result<HashMap<String, String>, String> {
    let body = get(socket, "/1.0/cluster/members?recursion=1", timeout)?;
    parse_members(&body)
}

#[derive(Deserialize, Default)]
struct RawMember {
    #[serde(default)]
    server_name: String,
    #[serde(default)]
    status: String,
}

/// Parses the answer of `GET /1.0/cluster/members?recursion=1`: the members not `Online`.
pub fn parse_members(body: &[u8]) -> Result<HashMap<String, String>, String> {
    let a: Answer<Vec<RawMember>> = serde_json::from_slice(body)
        .map_err(|e| format!("the daemon's answer is not a member list: {e}"))?;
    Ok(a.metadata
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.status != "Online")
        .map(|m| (m.server_name, m.status))
        .collect())
}

/// The init PID the daemon reports for a running container (`GET /1.0/instances/NAME/state`).
pub fn init_pid(
    socket: &std::path::Path,
    project: Option<&str>,
    name: &str,
    timeout: Duration,
) -> Result<i64, String> {
    // An instance name is checked by the topology (a plain token).
    let path = with_query(
        &format!("/1.0/instances/{name}/state"),
        &project_query(project),
    );
    let body = get(socket, &path, timeout)?;
    let a: Answer<RawState> = serde_json::from_slice(&body)
        .map_err(|e| format!("the daemon's state of `{name}` is unreadable: {e}"))?;
    Ok(a.metadata.map_or(0, |s| s.pid))
}

/// The cgroup liblxc runs a container's processes in: `lxc.payload.NAME` in the default project,
/// `lxc.payload.PROJECT_NAME` in another (liblxc appends `-N` when the name is taken, as it is
/// when an LXD and an Incus container share a name).
pub fn payload_cgroup(project: Option<&str>, name: &str) -> String {
    match project {
        Some(p) if p != "default" => format!("lxc.payload.{p}_{name}"),
        _ => format!("lxc.payload.{name}"),
    }
}

/// Whether `/proc/PID/cgroup` text places a process in the container cgroup `payload` (or in
/// liblxc's renamed `payload-N`), below the root of the hierarchy. A process in a container can
/// only move within its own cgroup subtree, so the top-level name is liblxc's.
pub fn in_payload_cgroup(cgroup: &str, payload: &str) -> bool {
    let Some(name) = cgroup_name(cgroup, "lxc.payload.") else {
        return false;
    };
    let want = payload.strip_prefix("lxc.payload.").unwrap_or(payload);
    name == want
        || name
            .strip_prefix(want)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a `/proc/PID/cgroup` places a process under a cgroup starting with `prefix`
/// (`lxc.payload.`), from the unified (`0::`) line or else any line; the name after it.
fn cgroup_name(cgroup: &str, prefix: &str) -> Option<String> {
    let mut lines: Vec<&str> = cgroup.lines().collect();
    lines.sort_by_key(|l| !l.starts_with("0::"));
    lines.into_iter().find_map(|l| {
        let path = l.splitn(3, ':').nth(2)?;
        let rest = path.strip_prefix('/')?.strip_prefix(prefix)?;
        let name = rest.split('/').next()?;
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// Parses the answer of `GET /1.0/instances?recursion=1`.
pub fn parse_instances(body: &[u8]) -> Result<HashMap<String, Instance>, String> {
    let a: Answer<Vec<RawInstance>> = serde_json::from_slice(body)
        .map_err(|e| format!("the daemon's answer is not an instance list: {e}"))?;
    if !a.error.is_empty() {
        return Err(format!("the daemon refused: {}", a.error));
    }
    Ok(a.metadata
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                r.name,
                Instance {
                    kind: r.kind,
                    status: r.status,
                    location: r.location,
                },
            )
        })
        .collect())
}

/// `GET path` over the unix socket; the body of a 200 answer.
fn get(socket: &std::path::Path, path: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    let at = socket.display();
    let mut s = UnixStream::connect(socket).map_err(|e| format!("cannot connect to {at}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|_| s.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .map_err(|e| format!("cannot send to {at}: {e}"))?;
    let mut answer = Vec::new();
    s.take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(|e| format!("cannot read the answer of {at}: {e}"))?;
    split_answer(&answer).map_err(|e| format!("{at}: {e}"))
}

/// Whether an error of a request came from the daemon's answer (an HTTP status other than 200)
/// rather than from a request that could not be made or was not answered in time.
pub fn answered(error: &str) -> bool {
    error.contains(ANSWERED)
}

/// What [`split_answer`] says of an answer with a status other than 200.
const ANSWERED: &str = "HTTP status ";

/// Splits an HTTP answer into status and body; only 200 is a success.
fn split_answer(answer: &[u8]) -> Result<Vec<u8>, String> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err("the answer has no HTTP header".into());
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let body = &answer[end + 4..];
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if status != "200" {
        let why = serde_json::from_slice::<Answer<serde_json::Value>>(body)
            .map(|a| a.error)
            .unwrap_or_default();
        return Err(format!("{ANSWERED}{status} {why}").trim_end().to_string());
    }
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_instances_servers_and_http_answers() {
        let body = br#"{"type":"sync","status_code":200,"error":"","metadata":[
            {"name":"worker-0","type":"container","status":"Running","location":"m1"},
            {"name":"vm-0","type":"virtual-machine","status":"Running","location":"none"},
            {"name":"off","type":"container","status":"Error"}]}"#;
        let m = parse_instances(body).unwrap();
        assert_eq!(m["worker-0"].location, "m1");
        assert_eq!(m["vm-0"].kind, "virtual-machine");
        assert_eq!(m["off"].status, "Error");
        let members = br#"{"metadata":[{"server_name":"m0","status":"Online"},
            {"server_name":"m2","status":"Offline"}]}"#;
        let down = parse_members(members).unwrap();
        assert_eq!(down.len(), 1);
        assert_eq!(down["m2"], "Offline");
        let ok = [
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n".as_ref(),
            body,
        ]
        .concat();
        assert_eq!(split_answer(&ok).unwrap(), body.to_vec());
        let refused = b"HTTP/1.0 403 Forbidden\r\n\r\n{\"error\":\"not authorized\"}";
        assert_eq!(
            split_answer(refused).unwrap_err(),
            "HTTP status 403 not authorized"
        );
        assert!(answered(&split_answer(refused).unwrap_err()));
        assert!(!answered(&split_answer(b"HTTP/1.0 200").unwrap_err()));
        let missing = std::path::Path::new("/nonexistent/unix.socket");
        let unanswered = get(missing, "/1.0", std::time::Duration::from_millis(100)).unwrap_err();
        assert!(!answered(&unanswered), "{unanswered}");
        let lone = Server::default();
        assert!(lone.hosts("none") && lone.hosts("") && lone.hosts("m1"));
        let m0 = Server {
            clustered: true,
            name: "m0".into(),
        };
        assert!(m0.hosts("m0") && !m0.hosts("m1"));
        assert_eq!(
            with_query("/1.0/instances?recursion=1", &project_query(Some("t"))),
            "/1.0/instances?recursion=1&project=t"
        );
        assert_eq!(
            with_query("/1.0/instances/w/state", &project_query(Some("default"))),
            "/1.0/instances/w/state"
        );
    }

    /// The cgroup check: only liblxc's top-level payload cgroup of that very instance (or its
    /// renamed `-N` twin) passes; another instance's, a prefix of the name, or a host cgroup
    /// does not.
    #[test]
    fn a_pid_must_live_in_the_instance_s_own_payload_cgroup() {
        let w0 = payload_cgroup(None, "worker-0");
        assert_eq!(w0, "lxc.payload.worker-0");
        assert_eq!(payload_cgroup(Some("team-a"), "w"), "lxc.payload.team-a_w");
        assert!(in_payload_cgroup(
            "0::/lxc.payload.worker-0/init.scope\n",
            &w0
        ));
        assert!(in_payload_cgroup("0::/lxc.payload.worker-0\n", &w0));
        assert!(in_payload_cgroup("0::/lxc.payload.worker-0-1\n", &w0));
        assert!(!in_payload_cgroup("0::/lxc.payload.worker-1\n", &w0));
        assert!(!in_payload_cgroup("0::/lxc.payload.worker-0x\n", &w0));
        assert!(!in_payload_cgroup("0::/lxc.payload.worker-0-a\n", &w0));
        assert!(!in_payload_cgroup(
            "0::/user.slice/lxc.payload.worker-0\n",
            &w0
        ));
        assert!(!in_payload_cgroup("0::/lxc.monitor.worker-0\n", &w0));
        assert!(in_payload_cgroup(
            "1:cpu:/x\n0::/lxc.payload.worker-0/init.scope\n",
            &w0
        ));
    }
}
