//! What a read tells beside the routes, taken by host access from a container's own files
//! (through [`NodeFiles`], in its root): the binding of the last-applied record, the record,
//! and the network-manager facts of the route interface, as typed values. Each is what the
//! read script ([`crate::node::transport::read_script`]) prints for the exec transports, once
//! parsed: the same tests, the same files, the same limits; a test runs both on this machine
//! and compares the values.

use crate::core::persist::{self, NodeFacts};
use crate::node::transport::read_script::{
    binding_line, binding_of, first_field_line, whole_lines,
};

/// A node's files as the read script sees them. Paths are absolute paths in the node. A file
/// that cannot be read, or is not a regular file, is `None`, as the script's `[ -f ]` and
/// `2>/dev/null` treat it.
pub trait NodeFiles {
    /// A file's bytes (at most `limit`; more is an error), `Ok(None)` when it cannot be read.
    fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String>;
    /// `[ -e PATH ]`: it exists (through symbolic links).
    fn exists(&self, path: &str) -> bool;
    /// `[ -L PATH ]`: it is a symbolic link.
    fn is_link(&self, path: &str) -> bool;
    /// `[ -f PATH ]`: it is a regular file (through symbolic links).
    fn is_file(&self, path: &str) -> bool;
    /// The contents of `/proc/[0-9]*/comm`, one per process that could be read.
    fn process_names(&self) -> Vec<Vec<u8>>;
}

/// The most read of the record or of a drop-in or hook.
pub const MAX_FILE: u64 = crate::node::transport::MAX_RECORD_BYTES;

/// What a read tells beside the routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beside {
    /// The binding line, when anything of it could be told.
    pub binding: Option<String>,
    /// The record's bytes, ending in a newline (empty: none).
    pub record: Vec<u8>,
    /// The facts of the interface asked about.
    pub facts: Option<NodeFacts>,
}

/// Reads the binding, the record at `record` and, for `iface`, the facts. `Err` where the
/// script fails (a hook or drop-in that exists but cannot be read) or a file is larger than
/// [`MAX_FILE`].
pub fn read_beside(
    files: &dyn NodeFiles,
    record: &str,
    iface: Option<&str>,
) -> Result<Beside, String> {
    let read = |path: &str| files.read(path, MAX_FILE);
    let boot = read("/proc/sys/kernel/random/boot_id")?.unwrap_or_default();
    let stat = read("/proc/1/stat")?.unwrap_or_default();
    let binding = binding_of(binding_line(&boot, &stat).as_bytes());
    // Every line, the last one given its newline (`while IFS= read -r l || [ -n "$l" ]`).
    let mut bytes = read(record)?.unwrap_or_default();
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    let facts = match iface.filter(|i| !i.is_empty()) {
        Some(i) => Some(node_facts(files, i)?),
        None => None,
    };
    Ok(Beside {
        binding,
        record: bytes,
        facts,
    })
}

/// A value of a `KEY=VALUE` line as the facts parser keeps it (`str::lines` drops a `\r`
/// before the newline): `None` when empty.
fn line_value(v: &[u8]) -> Option<String> {
    let v = String::from_utf8_lossy(v);
    let v = v.strip_suffix('\r').unwrap_or(&v);
    (!v.is_empty()).then(|| v.to_string())
}

/// The facts of `iface`: networkd's state for the link, the managers running, NetworkManager's
/// and ifupdown's state for it, and routectl's files for them.
pub fn node_facts(files: &dyn NodeFiles, iface: &str) -> Result<NodeFacts, String> {
    let read = |path: &str| files.read(path, MAX_FILE);
    let mut f = NodeFacts {
        interface: iface.to_string(),
        ..NodeFacts::default()
    };
    let index = read(&format!("/sys/class/net/{iface}/ifindex"))?
        .map(|b| first_field_line(&b))
        .unwrap_or_default();
    // The network file the drop-in goes beside: the last `NETWORK_FILE=` line, empty or not.
    let mut network_file = String::new();
    if !index.is_empty()
        && let Some(links) = read(&format!("/run/systemd/netif/links/{index}"))?
    {
        for l in whole_lines(&links) {
            if let Some(v) = l.strip_prefix(b"NETWORK_FILE=") {
                network_file = String::from_utf8_lossy(v).into_owned();
                f.network_file = line_value(v).or(f.network_file);
            } else if let Some(v) = l.strip_prefix(b"ADMIN_STATE=") {
                f.admin_state = line_value(v).or(f.admin_state);
            }
        }
    }
    let names = files.process_names();
    let running = |name: &[u8]| names.iter().any(|n| first_field_line(n).as_bytes() == name);
    f.networkd_running = running(b"systemd-network");
    f.networkmanager_running = running(b"NetworkManager");
    let device = format!("/run/NetworkManager/devices/{index}");
    if !index.is_empty() && files.exists(&device) {
        let state = read(&device)?.unwrap_or_default();
        f.networkmanager_device = !whole_lines(&state).contains(&&b"managed=false"[..]);
    }
    f.networkmanager_netplan = files.exists(&format!(
        "/run/NetworkManager/system-connections/netplan-{iface}.nmconnection"
    ));
    f.ifupdown = files.exists(&format!("/run/network/ifstate.{iface}"));
    f.nm_hook = own_file(files, persist::NM_HOOK_PATH)?;
    f.ifupdown_hook = own_file(files, persist::IFUPDOWN_HOOK_PATH)?;
    if !network_file.is_empty() {
        let base = network_file.rsplit('/').next().unwrap_or_default();
        let dir = format!("{}/{base}.d", persist::DROPIN_ROOT);
        let dropin = format!("{dir}/{}", persist::DROPIN_NAME);
        if files.is_link(&dir) || files.is_link(&dropin) {
            f.dropin = Some(persist::LINK_PLACEHOLDER.to_string());
        } else {
            f.dropin = own_file(files, &dropin)?;
        }
    }
    Ok(f)
}

/// One of routectl's files: a symbolic link is reported, never followed; a regular file is
/// its text; anything else is none.
fn own_file(files: &dyn NodeFiles, path: &str) -> Result<Option<String>, String> {
    if files.is_link(path) {
        return Ok(Some(persist::LINK_PLACEHOLDER.to_string()));
    }
    if !files.is_file(path) {
        return Ok(None);
    }
    let bytes = files
        .read(path, MAX_FILE)?
        .ok_or_else(|| format!("{path}: cannot be read"))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's files in memory: paths to contents, and the links among them.
    struct Files {
        files: std::collections::BTreeMap<&'static str, &'static [u8]>,
        links: Vec<&'static str>,
        procs: Vec<&'static [u8]>,
    }

    impl NodeFiles for Files {
        fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
            match self.files.get(path) {
                Some(b) if b.len() as u64 > limit => Err(format!("{path} is too large")),
                Some(b) => Ok(Some(b.to_vec())),
                None => Ok(None),
            }
        }
        fn exists(&self, path: &str) -> bool {
            self.files.contains_key(path) || self.links.contains(&path)
        }
        fn is_link(&self, path: &str) -> bool {
            self.links.contains(&path)
        }
        fn is_file(&self, path: &str) -> bool {
            self.files.contains_key(path)
        }
        fn process_names(&self) -> Vec<Vec<u8>> {
            self.procs.iter().map(|p| p.to_vec()).collect()
        }
    }

    /// A node that networkd manages, with a drop-in of routectl's and a record without its
    /// last newline.
    #[test]
    fn the_binding_record_and_facts_are_read_from_the_nodes_files() {
        let mut files = Files {
            files: [
                ("/proc/sys/kernel/random/boot_id", &b"b00t\n"[..]),
                (
                    "/proc/1/stat",
                    &b"1 (sys temd) S 0 1 1 0 -1 4194560 1 2 0 0 0 0 0 0 20 0 1 0 4242 1 2\n"[..],
                ),
                ("/r.json", &b"{\"v\":2}"[..]),
                ("/sys/class/net/eth1/ifindex", &b"7\n"[..]),
                (
                    "/run/systemd/netif/links/7",
                    &b"# x\nADMIN_STATE=configured\nNETWORK_FILE=/run/systemd/network/10-netplan-eth1.network\nOPER_STATE=routable"[..],
                ),
                (
                    "/etc/systemd/network/10-netplan-eth1.network.d/50-routectl.conf",
                    &b"[Route]\nDestination=10.1.1.0/24\n"[..],
                ),
                ("/etc/network/if-up.d/routectl", &b"#!/bin/sh\n"[..]),
            ]
            .into_iter()
            .collect(),
            links: vec!["/etc/NetworkManager/dispatcher.d/90-routectl"],
            procs: vec![b"init\n", b"systemd-network\n"],
        };
        let b = read_beside(&files, "/r.json", Some("eth1")).unwrap();
        assert_eq!(b.binding.as_deref(), Some("boot=b00t pid1=4242"));
        assert_eq!(b.record, b"{\"v\":2}\n");
        let facts = b.facts.unwrap();
        assert_eq!(
            facts.network_file.as_deref(),
            Some("/run/systemd/network/10-netplan-eth1.network")
        );
        assert_eq!(facts.admin_state.as_deref(), Some("configured"));
        assert!(facts.networkd_running && !facts.networkmanager_running);
        assert_eq!(
            facts.dropin.as_deref(),
            Some("[Route]\nDestination=10.1.1.0/24\n")
        );
        assert_eq!(facts.nm_hook.as_deref(), Some(persist::LINK_PLACEHOLDER));
        assert_eq!(facts.ifupdown_hook.as_deref(), Some("#!/bin/sh\n"));
        // A link where the drop-in's directory is: reported, not followed.
        files
            .links
            .push("/etc/systemd/network/10-netplan-eth1.network.d");
        let facts = node_facts(&files, "eth1").unwrap();
        assert_eq!(facts.dropin.as_deref(), Some(persist::LINK_PLACEHOLDER));
        // No interface asked for: no facts; no record: nothing.
        let b = read_beside(&files, "/none.json", None).unwrap();
        assert_eq!((b.record, b.facts), (Vec::new(), None));
    }
}
