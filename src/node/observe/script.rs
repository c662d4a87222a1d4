//! The read script: the one fixed `sh` script a read runs in the node (its `ip` part, the
//! last-applied record, the binding and the network-manager facts in one process, arguments
//! as positional parameters), the request it carries, its Rust twin for host access
//! ([`script_tail`]), and the split of its output into parts.

use crate::core::persist;
use crate::core::record;
use crate::core::topology::Node;
use crate::node::transport::{Invocation, Transport};

/// The line between the parts of a read's output (no `ip -j` output contains it).
pub const SEPARATOR: &str = "--routectl-read-part--";

/// The one read script, for nodes with a system of their own (LXD/Incus instances): run as
/// `sh -c READ_SCRIPT sh RECORD IFACE ip ARGS…` (stdin goes to `ip`). It runs `ip ARGS…` (the
/// routes, or the show batch on stdin) and exits with `ip`'s status if that fails; otherwise it
/// prints, each part after a [`SEPARATOR`] line:
///
/// 1. the last-applied record's binding, computed and never written: the boot id the node sees
///    (`/proc/sys/kernel/random/boot_id`; LXD gives each container start its own), the start
///    time of the node's PID 1 (field 22 of `/proc/1/stat`, counted after the last `)` since
///    the command name may hold spaces) and the network namespace (`readlink
///    /proc/self/ns/net`): a restarted or recreated node has another;
/// 2. the record at RECORD (nothing when there is none, or when it is not a regular file: a
///    FIFO or a terminal planted there is never opened);
/// 3. unless IFACE is empty, what tells who manages IFACE: [`persist::FACTS_MARKER`], then
///    networkd's `NETWORK_FILE=` and `ADMIN_STATE=` for the link, whether networkd or
///    NetworkManager run, NetworkManager's state for the link (unless it marks it unmanaged),
///    whether netplan wrote NetworkManager's connection for it, ifupdown's state for it,
///    routectl's NetworkManager dispatcher script and ifupdown hook (`KEY=` their bytes in
///    base64 on one line), and routectl's networkd drop-in for the network file (after
///    [`persist::DROPIN_MARKER`], to the end). A symbolic link at any of routectl's files is
///    reported, never followed.
///
/// Values reach it only as positional parameters. Beyond `ip` it forks `readlink`, `base64` per
/// hook and `cat` when a drop-in exists; everything else is a shell builtin. One line without backslashes, so
/// that logs of argv stay one line.
pub const READ_SCRIPT: &str = concat!(
    r#"r=$1; i=$2; shift 2; "$@" || exit; b=; p=; "#,
    r#"{ read -r b </proc/sys/kernel/random/boot_id; } 2>/dev/null; "#,
    r#"{ read -r p </proc/1/stat; } 2>/dev/null; p=${p##*")"}; set -- $p; p=${20:-}; "#,
    r#"n=$(readlink /proc/self/ns/net 2>/dev/null); echo; echo --routectl-read-part--; "#,
    r#"printf 'boot=%s pid1=%s netns=%s' "$b" "$p" "$n"; echo; echo --routectl-read-part--; "#,
    r#"if [ -f "$r" ]; then while IFS= read -r l || [ -n "$l" ]; do printf %s "$l"; echo; "#,
    r#"done <"$r"; fi; [ -n "$i" ] || exit 0; echo --routectl-read-part--; "#,
    r#"echo '#routectl-facts 1'; x=; nf=; "#,
    r#"if [ -f "/sys/class/net/$i/ifindex" ]; then read -r x < "/sys/class/net/$i/ifindex"; fi; "#,
    r#"f="/run/systemd/netif/links/$x"; if [ -n "$x" ] && [ -f "$f" ]; then "#,
    r#"while IFS= read -r l; do case $l in NETWORK_FILE=*) nf=${l#NETWORK_FILE=}; echo "$l";; "#,
    r#"ADMIN_STATE=*) echo "$l";; esac; done < "$f"; fi; nd=; nm=; "#,
    r#"for c in /proc/[0-9]*/comm; do n=; { read -r n < "$c"; } 2>/dev/null; case $n in "#,
    r#"systemd-network) nd=1;; NetworkManager) nm=1;; esac; done; "#,
    r#"[ -z "$nd" ] || echo proc=systemd-networkd; [ -z "$nm" ] || echo proc=NetworkManager; "#,
    r#"v="/run/NetworkManager/devices/$x"; if [ -n "$x" ] && [ -e "$v" ]; then m=1; "#,
    r#"if [ -r "$v" ]; then while IFS= read -r l; do [ "$l" != managed=false ] || m=; "#,
    r#"done < "$v"; fi; [ -z "$m" ] || echo nm_device=1; fi; "#,
    r#"if [ -e "/run/NetworkManager/system-connections/netplan-$i.nmconnection" ]; then "#,
    r#"echo nm_netplan=1; fi; if [ -e "/run/network/ifstate.$i" ]; then echo ifupdown=1; fi; "#,
    r#"for h in nm_hook:/etc/NetworkManager/dispatcher.d/90-routectl "#,
    r#"ifupdown_hook:/etc/network/if-up.d/routectl; do k=${h%%:*}; v=${h#*:}; "#,
    r#"if [ -L "$v" ]; then echo "${k}_link=1"; elif [ -f "$v" ]; then printf %s= "$k"; "#,
    r#"base64 -w0 -- "$v" || exit 1; echo; fi; done; "#,
    r#"if [ -n "$nf" ]; then e="/etc/systemd/network/${nf##*/}.d"; d="$e/50-routectl.conf"; "#,
    r#"if [ -L "$e" ] || [ -L "$d" ]; then echo dropin_link=1; "#,
    r#"elif [ -f "$d" ]; then echo '#routectl-dropin'; cat -- "$d" || exit 1; fi; fi; exit 0"#
);

/// The command that reads a node: `ip ARGS…` alone where the transport keeps the record on this
/// host (network namespaces: the record and its binding are read there, without a process, and
/// no network manager of the node's own can be asked); otherwise `ip ARGS…` in [`READ_SCRIPT`],
/// with the facts of the route interface where the transport sees the node's own files.
pub fn script_invocation(t: &dyn Transport, node: &Node, ip_args: Vec<String>) -> Invocation {
    if t.records_on_host() {
        return Invocation::ip(ip_args);
    }
    let iface = if t.sees_node_files() {
        // An ssh node without a declared interface: no facts are read (none is asked for).
        node.interface.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let mut args = vec![
        "-c".to_string(),
        READ_SCRIPT.to_string(),
        "sh".to_string(),
        record::record_path(&node.instance),
        iface,
        "ip".to_string(),
    ];
    args.extend(ip_args);
    Invocation {
        program: "sh".to_string(),
        args,
        stdin: None,
        label: Some("read script"),
    }
}

/// What an invocation of [`READ_SCRIPT`] asks for, read back from it: the inverse of
/// [`script_invocation`], for a transport that answers the script itself (host access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRequest {
    /// RECORD: the last-applied record's path in the node.
    pub record: String,
    /// IFACE: the interface whose network-manager facts are asked for (empty: none).
    pub iface: String,
    /// `ip ARGS…`, with the script's stdin.
    pub ip: Invocation,
}

/// The request of a [`READ_SCRIPT`] invocation (`sh -c READ_SCRIPT sh RECORD IFACE ip ARGS…`);
/// `None` for any other invocation.
pub fn script_request(inv: &Invocation) -> Option<ScriptRequest> {
    match inv.args.as_slice() {
        [c, script, sh, record, iface, ip, ip_args @ ..]
            if inv.program == "sh"
                && c == "-c"
                && script == READ_SCRIPT
                && sh == "sh"
                && ip == "ip" =>
        {
            Some(ScriptRequest {
                record: record.clone(),
                iface: iface.clone(),
                ip: Invocation {
                    program: "ip".to_string(),
                    args: ip_args.to_vec(),
                    stdin: inv.stdin.clone(),
                    label: None,
                },
            })
        }
        _ => None,
    }
}

/// The node's files as [`READ_SCRIPT`] sees them, for [`script_tail`]. Paths are absolute paths
/// in the node. A file that cannot be read, or is not a regular file, is `None`, as the
/// script's `[ -f ]` and `2>/dev/null` treat it.
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
    /// What `readlink /proc/self/ns/net` prints in the node (`net:[4026532281]`).
    fn netns(&self) -> Option<String>;
}

/// The most [`script_tail`] reads of the record or of the drop-in.
pub const MAX_TAIL_FILE: u64 = crate::node::transport::MAX_RECORD_BYTES;

/// The first line of `bytes` as `read -r v` leaves it in `v`: without the newline, and with
/// leading and trailing blanks (IFS white space) trimmed.
fn first_field_line(bytes: &[u8]) -> String {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line)
        .trim_matches(|c| c == ' ' || c == '\t')
        .to_string()
}

/// The complete lines of `bytes` (`while IFS= read -r l`: a last line without its newline is
/// not read).
fn whole_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    lines.pop(); // after the last newline: empty, or an unterminated line
    lines
}

/// The binding line [`READ_SCRIPT`] prints: `boot=B pid1=P netns=N`, from the first line of the
/// boot id file, the first line of `/proc/1/stat` (its 22nd field, counted after the last
/// `)`), and the namespace link.
pub fn binding_line(boot_id: &[u8], pid1_stat: &[u8], netns: &str) -> String {
    let boot = first_field_line(boot_id);
    let stat = first_field_line(pid1_stat);
    let after = stat.rsplit(')').next().unwrap_or_default();
    let start = after.split_whitespace().nth(19).unwrap_or_default();
    format!("boot={boot} pid1={start} netns={netns}")
}

/// Everything [`READ_SCRIPT`] prints after `ip`'s output, computed from `files`: the Rust twin
/// of the script, kept beside it so that the two cannot drift apart (host access serves the
/// script with it; a test runs both on the same machine and compares the bytes). `Err` where
/// the script would fail (its `cat` of the drop-in), or a file is larger than
/// [`MAX_TAIL_FILE`].
// Over 80 lines: to be split with the rework of this file.
#[allow(clippy::too_many_lines)]
pub fn script_tail(files: &dyn NodeFiles, record: &str, iface: &str) -> Result<Vec<u8>, String> {
    let read = |path: &str| files.read(path, MAX_TAIL_FILE);
    let mut out = Vec::new();
    out.extend_from_slice(format!("\n{SEPARATOR}\n").as_bytes());
    let boot = read("/proc/sys/kernel/random/boot_id")?.unwrap_or_default();
    let stat = read("/proc/1/stat")?.unwrap_or_default();
    let netns = files.netns().unwrap_or_default();
    out.extend_from_slice(binding_line(&boot, &stat, &netns).as_bytes());
    out.extend_from_slice(format!("\n{SEPARATOR}\n").as_bytes());
    // `while IFS= read -r l || [ -n "$l" ]; do printf %s "$l"; echo; done`: every line, the
    // last one given its newline.
    if let Some(bytes) = read(record)?
        && !bytes.is_empty()
    {
        out.extend_from_slice(&bytes);
        if !bytes.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    if iface.is_empty() {
        return Ok(out);
    }
    out.extend_from_slice(format!("{SEPARATOR}\n{}\n", persist::FACTS_MARKER).as_bytes());
    let index = read(&format!("/sys/class/net/{iface}/ifindex"))?
        .map(|b| first_field_line(&b))
        .unwrap_or_default();
    let mut network_file = String::new();
    if !index.is_empty()
        && let Some(links) = read(&format!("/run/systemd/netif/links/{index}"))?
    {
        for l in whole_lines(&links) {
            if let Some(v) = l.strip_prefix(b"NETWORK_FILE=") {
                network_file = String::from_utf8_lossy(v).into_owned();
            }
            if l.starts_with(b"NETWORK_FILE=") || l.starts_with(b"ADMIN_STATE=") {
                out.extend_from_slice(l);
                out.push(b'\n');
            }
        }
    }
    let names = files.process_names();
    let running = |name: &[u8]| names.iter().any(|n| first_field_line(n).as_bytes() == name);
    if running(b"systemd-network") {
        out.extend_from_slice(b"proc=systemd-networkd\n");
    }
    if running(b"NetworkManager") {
        out.extend_from_slice(b"proc=NetworkManager\n");
    }
    let device = format!("/run/NetworkManager/devices/{index}");
    if !index.is_empty() && files.exists(&device) {
        let state = read(&device)?.unwrap_or_default();
        if !whole_lines(&state).contains(&&b"managed=false"[..]) {
            out.extend_from_slice(b"nm_device=1\n");
        }
    }
    let netplan = format!("/run/NetworkManager/system-connections/netplan-{iface}.nmconnection");
    if files.exists(&netplan) {
        out.extend_from_slice(b"nm_netplan=1\n");
    }
    if files.exists(&format!("/run/network/ifstate.{iface}")) {
        out.extend_from_slice(b"ifupdown=1\n");
    }
    for (key, path) in [
        ("nm_hook", persist::NM_HOOK_PATH),
        ("ifupdown_hook", persist::IFUPDOWN_HOOK_PATH),
    ] {
        if files.is_link(path) {
            out.extend_from_slice(format!("{key}_link=1\n").as_bytes());
        } else if files.is_file(path) {
            let bytes = read(path)?.ok_or_else(|| format!("base64: {path}: cannot be read"))?;
            let line = format!("{key}={}\n", persist::encode_base64(&bytes));
            out.extend_from_slice(line.as_bytes());
        }
    }
    if !network_file.is_empty() {
        let base = network_file.rsplit('/').next().unwrap_or_default();
        let dir = format!("{}/{base}.d", persist::DROPIN_ROOT);
        let dropin = format!("{dir}/{}", persist::DROPIN_NAME);
        if files.is_link(&dir) || files.is_link(&dropin) {
            out.extend_from_slice(b"dropin_link=1\n");
        } else if files.is_file(&dropin) {
            let bytes = read(&dropin)?.ok_or_else(|| format!("cat: {dropin}: cannot be read"))?;
            out.extend_from_slice(format!("{}\n", persist::DROPIN_MARKER).as_bytes());
            out.extend_from_slice(&bytes);
        }
    }
    Ok(out)
}

/// A read's output in its parts. An output without separators (a read that is `ip` alone) is
/// all `ip`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadParts<'a> {
    /// What `ip` printed.
    pub ip: &'a [u8],
    /// The binding line (possibly empty).
    pub binding: Option<&'a [u8]>,
    /// The record's bytes (empty: none).
    pub record: &'a [u8],
    /// What follows the third separator: the network-manager facts.
    pub facts: Option<&'a [u8]>,
}

/// Where the next [`SEPARATOR`] line starts in `hay` (at its start or after a newline), and
/// where the line after it starts.
fn next_separator(hay: &[u8]) -> Option<(usize, usize)> {
    let sep = SEPARATOR.as_bytes();
    let mut from = 0;
    while let Some(i) = hay
        .get(from..)
        .and_then(|h| h.windows(sep.len()).position(|w| w == sep))
        .map(|i| i + from)
    {
        let end = i + sep.len();
        let at_line_start = i == 0 || hay.get(i - 1) == Some(&b'\n');
        match hay.get(end) {
            Some(b'\n') if at_line_start => return Some((i, end + 1)),
            None if at_line_start => return Some((i, end)),
            _ => from = i + 1,
        }
    }
    None
}

/// Splits a read's output into its parts (see [`READ_SCRIPT`]).
pub fn split_read(stdout: &[u8]) -> ReadParts<'_> {
    let marker = format!("\n{SEPARATOR}\n");
    let Some(first) = stdout
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
    else {
        return ReadParts {
            ip: stdout,
            binding: None,
            record: &[],
            facts: None,
        };
    };
    let ip = &stdout[..first];
    let rest = &stdout[first + marker.len()..];
    let (binding, rest) = match next_separator(rest) {
        Some((i, next)) => (&rest[..i], &rest[next..]),
        None => (rest, &[][..]),
    };
    let (record, facts) = match next_separator(rest) {
        Some((i, next)) => (&rest[..i], Some(&rest[next..])),
        None => (rest, None),
    };
    ReadParts {
        ip,
        binding: Some(binding),
        record,
        facts,
    }
}

/// A binding as printed (`key=value …`): `None` when no value is known.
pub fn binding_of(line: &[u8]) -> Option<String> {
    let line = String::from_utf8_lossy(line).trim().to_string();
    line.split_whitespace()
        .any(|kv| kv.split_once('=').is_none_or(|(_, v)| !v.is_empty()))
        .then_some(line)
}
