//! The read script: how the exec transports carry out a [`ReadRequest`]. One fixed `sh`
//! script runs in the node (its `ip` part, the last-applied record, the binding and the
//! network-manager facts in one process, values as positional parameters), and its one output
//! is split into parts and parsed into a [`ReadReply`]. A read that needs no file of the node
//! (a network namespace, whose record routectl keeps on this host) is `ip` alone.

use crate::core::link::Link;
use crate::core::persist::{self, NodeFacts};
use crate::core::route::Route;
use crate::error::{CommandError, ParseError};
use crate::node::iproute;
use crate::node::request::{ReadReply, ReadRequest};

use super::{Invocation, Output, Transport};

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
///    the command name may hold spaces): a restarted or recreated node has another (its
///    network namespace lives and dies with its PID 1, so naming it would add nothing but a
///    process);
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
/// Values reach it only as positional parameters. Beyond `ip` it forks `base64` per
/// hook and `cat` when a drop-in exists; everything else is a shell builtin. One line without backslashes, so
/// that logs of argv stay one line.
pub const READ_SCRIPT: &str = concat!(
    r#"r=$1; i=$2; shift 2; "$@" || exit; b=; p=; "#,
    r#"{ read -r b </proc/sys/kernel/random/boot_id; } 2>/dev/null; "#,
    r#"{ read -r p </proc/1/stat; } 2>/dev/null; p=${p##*")"}; set -- $p; p=${20:-}; "#,
    r#"echo; echo --routectl-read-part--; "#,
    r#"printf 'boot=%s pid1=%s' "$b" "$p"; echo; echo --routectl-read-part--; "#,
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

/// The first line of `bytes` as `read -r v` leaves it in `v`: without the newline, and with
/// leading and trailing blanks (IFS white space) trimmed.
pub fn first_field_line(bytes: &[u8]) -> String {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line)
        .trim_matches(|c| c == ' ' || c == '\t')
        .to_string()
}

/// The complete lines of `bytes` (`while IFS= read -r l`: a last line without its newline is
/// not read).
pub fn whole_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    lines.pop(); // after the last newline: empty, or an unterminated line
    lines
}

/// The binding line [`READ_SCRIPT`] prints: `boot=B pid1=P`, from the first line of the boot
/// id file and the first line of `/proc/1/stat` (its 22nd field, counted after the last `)`).
pub fn binding_line(boot_id: &[u8], pid1_stat: &[u8]) -> String {
    let boot = first_field_line(boot_id);
    let stat = first_field_line(pid1_stat);
    let after = stat.rsplit(')').next().unwrap_or_default();
    let start = after.split_whitespace().nth(19).unwrap_or_default();
    format!("boot={boot} pid1={start}")
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

/// The `ip -batch` script of a read that also asks for addresses: routes first (exactly the
/// lone route read), then addresses.
pub const SHOW_SCRIPT: &str = "route show table all\naddr show\n";

/// The one command that carries out `req`: `ip` alone when no record is asked for (the facts
/// are then not read either), else `ip` inside [`READ_SCRIPT`].
pub fn read_invocation(req: &ReadRequest) -> Invocation {
    let ip_args: Vec<String> = if req.addresses {
        let mut a: Vec<String> = iproute::READ_OPTIONS
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["-batch".to_string(), "-".to_string()]);
        a
    } else {
        iproute::read_args()
    };
    let stdin = req.addresses.then(|| SHOW_SCRIPT.as_bytes().to_vec());
    let Some(record) = &req.record else {
        return Invocation {
            stdin,
            ..Invocation::ip(ip_args)
        };
    };
    let mut args = vec![
        "-c".to_string(),
        READ_SCRIPT.to_string(),
        "sh".to_string(),
        record.clone(),
        req.facts_of.clone().unwrap_or_default(),
        "ip".to_string(),
    ];
    args.extend(ip_args);
    Invocation {
        program: "sh".to_string(),
        args,
        stdin,
        label: Some("read script"),
    }
}

/// Carries out `req` through `t`'s [`Transport::run`]: one command, its output parsed. A
/// command that did not exit 0 is a [`CommandError::Status`].
pub fn read_by_exec<T: Transport + ?Sized>(
    t: &T,
    instance: &str,
    req: &ReadRequest,
) -> Result<ReadReply, CommandError> {
    let out = t.run(instance, &read_invocation(req))?;
    if out.status != Some(0) {
        return Err(out.status_error());
    }
    Ok(parse_reply(req, out))
}

/// A read's output as the typed reply to `req`.
pub fn parse_reply(req: &ReadRequest, out: Output) -> ReadReply {
    let parts = split_read(&out.stdout);
    let (routes, links, snapshot) = if req.addresses {
        match parse_show_part(parts.ip) {
            Ok((routes, snapshot, links)) => (Ok(routes), Some(links), snapshot),
            Err(e) => (Err(e), None, Vec::new()),
        }
    } else {
        let snapshot = if req.snapshot {
            parts.ip.to_vec()
        } else {
            Vec::new()
        };
        (iproute::parse_routes(parts.ip), None, snapshot)
    };
    let facts = req
        .facts_of
        .as_deref()
        .filter(|_| req.record.is_some())
        .map(|iface| facts_part(iface, parts.facts));
    ReadReply {
        routes,
        links,
        snapshot,
        binding: parts.binding.and_then(binding_of),
        record: parts.record.to_vec(),
        facts,
        argv: out.argv,
    }
}

/// The network-manager facts of `iface` from the read's facts part.
fn facts_part(iface: &str, part: Option<&[u8]>) -> Result<NodeFacts, String> {
    let Some(part) = part else {
        return Err("the read printed no network-manager facts".to_string());
    };
    let text = String::from_utf8_lossy(part);
    match text.strip_prefix(&format!("{}\n", persist::FACTS_MARKER)) {
        Some(facts) => Ok(NodeFacts::parse(iface, facts)),
        None => Err("the read printed network-manager facts in an unknown form".to_string()),
    }
}

/// The routes, the route table in the snapshot format, and the interfaces of a read.
pub type ShowPart = (Vec<Route>, Vec<u8>, Vec<Link>);

/// Splits the `ip` part of a read with addresses into routes, the route table exactly as a
/// lone `ip -N -d -j route show table all` prints it (the snapshot), and interfaces.
pub fn parse_show_part(output: &[u8]) -> Result<ShowPart, ParseError> {
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
    Ok((
        iproute::parse_routes(routes)?,
        [routes, &b"\n"[..]].concat(),
        iproute::parse_addrs(addrs)?,
    ))
}
