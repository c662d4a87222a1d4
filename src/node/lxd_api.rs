//! The LXD (or Incus) REST API over the daemon's unix socket, and the container init PIDs host
//! access needs to find a container's network namespace.
//!
//! `GET /1.0/instances?recursion=1` (about 3 ms) lists every instance of the default project
//! with its type and status: the authority on what exists, what is a VM and what runs. The PIDs
//! come from the host's process table: liblxc runs each container's init as the child of a
//! monitor process named `[lxc monitor] LXCPATH NAME` (LXD and Incus alike, each with its own
//! `LXCPATH`), which one scan of `/proc` finds for every container at once. Asking the API for them
//! instead (`recursion=2`, or `/1.0/instances/NAME/state`) makes the daemon gather the whole
//! state of each instance, about 8 ms apiece and 30 ms for the lab's five, serialised in the
//! daemon; that remains the fallback for a container the scan does not find. Either way host
//! access checks the namespace's inode at every use.
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
    /// `Running`, `Stopped`, `Frozen`, …
    pub status: String,
    /// The init process on the host (0 or absent when not running).
    pub pid: i64,
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
struct Answer {
    #[serde(default)]
    error: String,
    #[serde(default)]
    metadata: Option<Vec<RawInstance>>,
}

#[derive(Deserialize)]
struct RawInstance {
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    state: Option<RawState>,
}

#[derive(Deserialize)]
struct RawState {
    #[serde(default)]
    pid: i64,
}

/// Lists the instances of a project (`None`: the default one) as name -> instance, with the
/// init PIDs of the running containers.
pub fn instances(
    socket: &std::path::Path,
    project: Option<&str>,
    timeout: Duration,
) -> Result<HashMap<String, Instance>, String> {
    // A project name is checked by the topology (a plain token), so it needs no escaping.
    let query = project
        .filter(|p| *p != "default")
        .map(|p| format!("&project={p}"))
        .unwrap_or_default();
    let body = get(
        socket,
        &format!("/1.0/instances?recursion=1{query}"),
        timeout,
    )?;
    let mut list = parse_instances(&body)?;
    let inits = container_inits(&lxcpath(socket));
    for (name, i) in list.iter_mut() {
        if i.kind != "container" || i.status != "Running" {
            continue;
        }
        i.pid = match inits.get(&monitor_name(project, name)) {
            Some(pid) => *pid,
            None => {
                let state = format!("/1.0/instances/{name}/state");
                let body = get(
                    socket,
                    &match query.strip_prefix('&') {
                        Some(q) => format!("{state}?{q}"),
                        None => state,
                    },
                    timeout,
                )?;
                serde_json::from_slice::<StateAnswer>(&body)
                    .map(|a| a.metadata.pid)
                    .unwrap_or(0)
            }
        };
    }
    Ok(list)
}

/// The name liblxc's monitor gives an instance: `NAME` in the default project,
/// `PROJECT_NAME` in another.
fn monitor_name(project: Option<&str>, name: &str) -> String {
    match project {
        Some(p) if p != "default" => format!("{p}_{name}"),
        _ => name.to_string(),
    }
}

#[derive(Deserialize)]
struct StateAnswer {
    metadata: RawState,
}

/// The init of every container of one daemon: container name -> PID. liblxc runs each
/// container under a monitor process whose command line is `[lxc monitor] LXCPATH NAME`
/// (`LXCPATH` is the daemon's `containers` directory, `NAME` the instance, `PROJECT_NAME` outside
/// the default project); the container's init is the monitor's child in a `lxc.payload.*`
/// cgroup. Cgroup names alone are not enough: liblxc renames one that is taken (an Incus and an
/// LXD container both called `worker-0` get `lxc.payload.worker-0` and `lxc.payload.worker-0-1`).
pub fn container_inits(lxcpath: &std::path::Path) -> HashMap<String, i64> {
    let want = lxcpath.display().to_string();
    let mut monitors: HashMap<i64, String> = HashMap::new();
    let mut children: Vec<(i64, i64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if let Some((path, name)) = monitor_of(&cmdline) {
            if path == want {
                monitors.insert(pid, name);
            }
            continue;
        }
        let in_payload = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map(|cg| cgroup_name(&cg, "lxc.payload.").is_some())
            .unwrap_or(false);
        if !in_payload {
            continue;
        }
        if let Some(ppid) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| parent_pid(&s))
        {
            children.push((pid, ppid));
        }
    }
    children
        .into_iter()
        .filter_map(|(pid, ppid)| monitors.get(&ppid).map(|name| (name.clone(), pid)))
        .collect()
}

/// The daemon's `containers` directory (liblxc's lxcpath): beside its unix socket.
pub fn lxcpath(socket: &std::path::Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or(std::path::Path::new("/"))
        .join("containers")
}

/// `[lxc monitor] LXCPATH NAME` (NUL-separated or space-separated) -> (LXCPATH, NAME).
fn monitor_of(cmdline: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(cmdline).replace('\0', " ");
    let rest = text.strip_prefix("[lxc monitor] ")?;
    let mut words = rest.split_whitespace();
    let (path, name) = (words.next()?, words.next()?);
    Some((path.to_string(), name.to_string()))
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

/// The parent PID from a `/proc/PID/stat` line (the field after the state, past the name).
fn parent_pid(stat: &str) -> Option<i64> {
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Parses the answer of `GET /1.0/instances?recursion=1` (or `=2`, which adds the PIDs).
pub fn parse_instances(body: &[u8]) -> Result<HashMap<String, Instance>, String> {
    let a: Answer = serde_json::from_slice(body)
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
                    pid: r.state.map(|s| s.pid).unwrap_or(0),
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
        let why = serde_json::from_slice::<Answer>(body)
            .map(|a| a.error)
            .unwrap_or_default();
        return Err(format!("HTTP status {status} {why}").trim_end().to_string());
    }
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_instances_and_http_answers() {
        let body = br#"{"type":"sync","status_code":200,"error":"","metadata":[
            {"name":"worker-0","type":"container","status":"Running","state":{"pid":4242}},
            {"name":"vm-0","type":"virtual-machine","status":"Running","state":{"pid":99}},
            {"name":"off","type":"container","status":"Stopped","state":{"pid":0}}]}"#;
        let m = parse_instances(body).unwrap();
        assert_eq!(m["worker-0"].pid, 4242);
        assert_eq!(m["vm-0"].kind, "virtual-machine");
        assert_eq!(m["off"].status, "Stopped");
        let ok = [
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n".as_ref(),
            body,
        ]
        .concat();
        assert_eq!(split_answer(&ok).unwrap(), body.to_vec());
        assert_eq!(
            cgroup_name(
                "1:cpu:/x\n0::/lxc.payload.worker-0/init.scope\n",
                "lxc.payload."
            ),
            Some("worker-0".to_string())
        );
        assert_eq!(
            cgroup_name("9:name=systemd:/lxc.monitor.w-1\n", "lxc.monitor."),
            Some("w-1".to_string())
        );
        assert_eq!(cgroup_name("0::/user.slice\n", "lxc.payload."), None);
        assert_eq!(parent_pid("42 (a (b) c) S 7 42 42 0"), Some(7));
        assert_eq!(
            monitor_of(b"[lxc monitor] /var/lib/lxd/containers worker-0\0"),
            Some(("/var/lib/lxd/containers".into(), "worker-0".into()))
        );
        assert_eq!(monitor_of(b"/usr/bin/lxd\0forkstart\0"), None);
        assert_eq!(
            lxcpath(std::path::Path::new("/var/lib/incus/unix.socket")),
            PathBuf::from("/var/lib/incus/containers")
        );
        let refused = b"HTTP/1.0 403 Forbidden\r\n\r\n{\"error\":\"not authorized\"}";
        assert_eq!(
            split_answer(refused).unwrap_err(),
            "HTTP status 403 not authorized"
        );
    }
}
