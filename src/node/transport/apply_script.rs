//! The exec transports' way of carrying out an [`ApplyRequest`]: one fixed `sh` script
//! ([`APPLY_SCRIPT`]) run in the node, with the route lines, the persisted file and the record on
//! its stdin, and its one output read back into an [`ApplyReply`]; for a network namespace, whose
//! record is kept on this host, one `ip -batch` and a local write.
//!
//! Nothing is half written: the script stores its whole input first and does nothing unless the
//! input has the length (and, where `sha256sum` exists, the digest) routectl announced, so a
//! routectl killed while sending leaves the node as it was.

use sha2::{Digest, Sha256};

use super::{Invocation, Transport};
use crate::core::route::Route;
use crate::error::{CommandError, ParseError};
use crate::node::iproute;
use crate::node::request::{ApplyReply, ApplyRequest, FileChange, batch_text, temp_suffix};

/// The line between the parts of the apply script's output.
pub const APPLY_SEPARATOR: &str = "--routectl-apply-part--";

/// The exit status of the apply script when its input was cut short or damaged (nothing done).
pub const TORN_INPUT: i32 = 75;

/// The apply script, run as `sh -c APPLY_SCRIPT sh RECORD TMP BL DL RL SUM DMODE RMODE FILE
/// READBACK PERM RELOAD ip OPTIONS…` with the route lines (BL bytes), the persisted file (DL)
/// and the record (RL) on stdin, in that order, SUM the SHA-256 of the whole input. It keeps the
/// input in a private temporary file (`TMP` is a random name) in the record's directory (a real
/// directory owned by the user it runs as, made 0700 if missing) and does nothing unless the
/// input is whole. Then: the route lines through `ip OPTIONS… -force -batch -`; if they all
/// succeeded, the persisted FILE (DMODE `write`: a fresh temporary file in its directory (made
/// 0755 when missing: networkd reads drop-ins as its own user), mode PERM, flushed, renamed over
/// it; `remove`, with its directory when RELOAD is `networkd` and it is empty; then, with RELOAD
/// `networkd`, `networkctl reload`, then a wait of at most 5 s until networkd has rewritten the
/// state file of every link that uses the drop-in's network file, not as `pending`,
/// `initialized` or `configuring`: the reload returns before networkd reconfigures the link,
/// and a read before that sees the routes the reconfiguration is about to flush); if that
/// succeeded, the record (RMODE `write`: renamed over
/// it; `remove`). It prints, after an [`APPLY_SEPARATOR`] line, what it did (`persisted`,
/// `record`), and with READBACK `1`, after another, every route (`ip OPTIONS… route show table
/// all`). It exits with the first failure's status. Its stored input is removed before it
/// prints anything: a client that dies on a closed pipe (routectl gone) gets the script killed
/// mid-way, before its exit trap. Values reach it only as positional parameters.
pub const APPLY_SCRIPT: &str = concat!(
    r#"set -u; umask 077; r=$1; n=$2; bl=$3; dl=$4; rl=$5; sum=$6; dm=$7; rm=$8; dp=$9; "#,
    r#"rb=${10}; pm=${11}; ld=${12}; shift 12; d=${r%/*}; for x in "${d%/*}" "$d"; do [ -d "$x" ] || "#,
    r#"mkdir -m 0700 -- "$x" || exit 1; if [ -L "$x" ] || [ ! -O "$x" ]; then "#,
    r#"echo "routectl: $x is not a directory of mine" >&2; exit 1; fi; done; "#,
    r#"i=$d/.in.$n; rt=$d/.rec.$n; dt=; trap 'for x in "$i" "$rt" ${dt:+"$dt"}; do "#,
    r#"[ ! -e "$x" ] || rm -f -- "$x"; done' EXIT; "#,
    r#"set -C; cat > "$i" || exit 1; set +C; t=$((bl + dl + rl)); s=; "#,
    r#"if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$i"); s=${s%% *}; fi; "#,
    r#"if [ "$s" != "$sum" ]; then l=$(wc -c < "$i"); if [ "$l" -ne "$t" ]; then "#,
    r#"echo "routectl: the input ended after $l of $t bytes; nothing was changed" >&2; "#,
    r#"exit 75; elif [ -n "$s" ]; then echo "routectl: the input does not match its digest; "#,
    r#"nothing was changed" >&2; exit 75; fi; fi; st=0; w=; "#,
    r#"if [ "$bl" -gt 0 ]; then head -c "$bl" "$i" | "$@" -force -batch -; st=$?; fi; "#,
    r#"if [ "$st" -eq 0 ] && [ "$dm" != keep ]; then dd=${dp%/*}; dn=${dp##*/}; "#,
    r#"if [ -L "$dd" ]; then echo "routectl: $dd is a symbolic link" >&2; st=1; "#,
    r#"elif [ "$dm" = write ]; then (umask 022 && mkdir -p -- "$dd") && dt=$(mktemp -- "$dd/.$dn.XXXXXXXXXX") "#,
    r#"&& tail -c +$((bl + 1)) "$i" | head -c "$dl" > "$dt" && chmod "$pm" -- "$dt" "#,
    r#"&& { sync -- "$dt" 2>/dev/null || sync; } && mv -f -- "$dt" "$dp" && dt= "#,
    r#"&& { sync -- "$dd" 2>/dev/null || true; } || st=1; "#,
    r#"else rm -f -- "$dp" && { [ "$ld" != networkd ] || rmdir -- "$dd" 2>/dev/null || true; } "#,
    r#"|| st=1; fi; if [ "$st" -eq 0 ] && [ "$ld" = networkd ]; then nf=${dd##*/}; nf=${nf%.d}; "#,
    r#"nl() { for f in /run/systemd/netif/links/*; do [ -f "$f" ] || continue; m=; "#,
    r#"while IFS= read -r x; do case $x in "NETWORK_FILE="*/"$nf") m=1;; esac; done < "$f"; "#,
    r#"[ -z "$m" ] || ls -i -- "$f"; done; }; nr() { while read -r o f; do [ -f "$f" ] || "#,
    r#"continue; set -- $(ls -i -- "$f" 2>/dev/null); [ "${1:-$o}" != "$o" ] || return 1; z=; "#,
    r#"while IFS= read -r x; do case $x in ADMIN_STATE=*) z=${x#*=};; esac; done < "$f"; "#,
    r#"case $z in pending|initialized|configuring) return 1;; esac; done; }; "#,
    r#"w0=$(nl); networkctl reload || st=$?; c=0; while [ "$st" -eq 0 ] && [ -n "$w0" ] "#,
    r#"&& [ "$c" -lt 200 ] && ! printf '%s\n' "$w0" | nr; do sleep 0.025; c=$((c + 1)); done; fi; "#,
    r#"if [ "$st" -eq 0 ]; then w="$w persisted"; else echo "routectl: the file $dp was not "#,
    r#"changed as asked" >&2; fi; fi; if [ "$st" -eq 0 ] && [ "$rm" = write ]; then "#,
    r#"set -C; if tail -c +$((bl + dl + 1)) "$i" > "$rt" && mv -f -- "$rt" "$r"; then "#,
    r#"w="$w record"; else st=1; fi; set +C; elif [ "$st" -eq 0 ] && [ "$rm" = remove ]; then "#,
    r#"rm -f -- "$r" && w="$w record" || st=1; fi; rm -f -- "$i"; echo; echo --routectl-apply-part--; "#,
    r#"echo "done:$w"; if [ "$rb" = 1 ]; then echo --routectl-apply-part--; "#,
    r#""$@" route show table all || exit; fi; exit "$st""#
);

/// The one invocation that carries out `req` in a node with a system of its own (LXD/Incus
/// instances, ssh machines). `record_dir_path` is where the input is kept meanwhile: the
/// record's path (the record's directory is routectl's own in the node).
pub fn apply_invocation(req: &ApplyRequest, record_path: &str) -> Invocation {
    let routes = batch_text(&req.routes).into_bytes();
    let (dropin_path, dropin) = req
        .persisted
        .as_ref()
        .map_or(("", &FileChange::Keep), |f| (f.path.as_str(), &f.change));
    let (mode, reload) = req
        .persisted
        .as_ref()
        .map_or((0o644, false), |f| (f.mode & 0o7777, f.networkd_reload));
    let (record_path, record) = req
        .record
        .as_ref()
        .map_or((record_path, &FileChange::Keep), |(p, c)| (p.as_str(), c));
    let mut stdin = Vec::with_capacity(routes.len() + dropin.bytes().len() + record.bytes().len());
    stdin.extend_from_slice(&routes);
    stdin.extend_from_slice(dropin.bytes());
    stdin.extend_from_slice(record.bytes());
    let sum = crate::core::hex(&Sha256::digest(&stdin));
    let mut args: Vec<String> = vec![
        "-c".into(),
        APPLY_SCRIPT.into(),
        "sh".into(),
        record_path.into(),
        temp_suffix(),
        routes.len().to_string(),
        dropin.bytes().len().to_string(),
        record.bytes().len().to_string(),
        sum,
        dropin.mode().into(),
        record.mode().into(),
        dropin_path.into(),
        if req.read_back { "1" } else { "0" }.into(),
        format!("{mode:04o}"),
        if reload { "networkd" } else { "none" }.into(),
        "ip".into(),
    ];
    args.extend(iproute::READ_OPTIONS.iter().map(|s| s.to_string()));
    Invocation {
        program: "sh".to_string(),
        args,
        stdin: Some(stdin),
        label: Some("apply script"),
    }
}

/// Reads the apply script's output into a reply.
pub fn parse_apply_output(
    argv: String,
    status: Option<i32>,
    stdout: &[u8],
    stderr: String,
) -> ApplyReply {
    let text = stdout;
    let marker = format!("\n{APPLY_SEPARATOR}\n");
    let find = |hay: &[u8]| {
        hay.windows(marker.len())
            .position(|w| w == marker.as_bytes())
    };
    let mut reply = ApplyReply {
        argv,
        status,
        stderr,
        read_back: None,
        persisted_done: false,
        record_done: false,
    };
    let Some(first) = find(text) else {
        return reply;
    };
    let rest = &text[first + marker.len()..];
    let (done, read_back) = match find(rest) {
        Some(i) => (&rest[..i], Some(&rest[i + marker.len()..])),
        None => (rest, None),
    };
    let done = String::from_utf8_lossy(done);
    if let Some(words) = done.trim().strip_prefix("done:") {
        reply.persisted_done = words.split_whitespace().any(|w| w == "persisted");
        reply.record_done = words.split_whitespace().any(|w| w == "record");
    }
    reply.read_back = read_back.map(parse_read_back);
    reply
}

/// The routes of a read-back as `ip -N -d -j route show table all` printed them (the last
/// table of the output, which for `ip -batch` follows whatever the route lines printed).
pub fn parse_read_back(output: &[u8]) -> Result<Vec<Route>, ParseError> {
    iproute::parse_stream(output).and_then(|mut tables| tables.pop().ok_or(ParseError::Empty))
}

/// Carries out `req` through a transport that runs commands in the node: one script (or, for
/// a network namespace, whose record is kept on this host, one `ip -batch` and a local write).
pub fn apply_by_exec<T: Transport + ?Sized>(
    t: &T,
    instance: &str,
    req: &ApplyRequest,
) -> Result<ApplyReply, CommandError> {
    if t.records_on_host() {
        return apply_on_host_record(t, instance, req);
    }
    let record_path = crate::core::record::record_path(instance);
    let inv = apply_invocation(req, &record_path);
    let out = t.run(instance, &inv)?;
    Ok(parse_apply_output(
        out.argv,
        out.status,
        &out.stdout,
        out.stderr,
    ))
}

/// The route lines of `req` and its read-back as one `ip -batch` through `t`, for a transport
/// that runs `ip` in the node with nothing of the node's own around it (a network namespace);
/// nothing else of the request is done. Every line is tried (`-force`). `argv` names the reply when nothing ran.
pub fn batch_round<T: Transport + ?Sized>(
    t: &T,
    instance: &str,
    req: &ApplyRequest,
    argv: String,
) -> Result<ApplyReply, CommandError> {
    let mut reply = ApplyReply {
        argv,
        status: Some(0),
        stderr: String::new(),
        read_back: None,
        persisted_done: false,
        record_done: false,
    };
    if !req.routes.is_empty() || req.read_back {
        let mut script = batch_text(&req.routes);
        if req.read_back {
            script.push_str(iproute::SHOW_ALL_LINE);
            script.push('\n');
        }
        let inv = Invocation::ip(iproute::batch_args()).with_stdin(script.into_bytes());
        let out = t.run(instance, &inv)?;
        reply.argv = out.argv;
        reply.status = out.status;
        reply.stderr = out.stderr;
        reply.read_back = req.read_back.then(|| parse_read_back(&out.stdout));
    }
    Ok(reply)
}

/// A network namespace: the routes (and their read-back) in one `ip -batch`, the record on this
/// host, written by routectl itself.
fn apply_on_host_record<T: Transport + ?Sized>(
    t: &T,
    instance: &str,
    req: &ApplyRequest,
) -> Result<ApplyReply, CommandError> {
    let reply = batch_round(t, instance, req, String::new())?;
    Ok(finish_on_host_record(req, reply))
}

/// The rest of an apply to a network namespace once its routes are done (`reply`): a persisted
/// file is refused (a namespace has no network manager), the record is written on this host
/// when every route operation succeeded.
pub fn finish_on_host_record(req: &ApplyRequest, mut reply: ApplyReply) -> ApplyReply {
    if req.persisted.as_ref().is_some_and(|f| f.change.is_change()) {
        reply.status = Some(1);
        reply
            .stderr
            .push_str("a network namespace has no network manager: no file is persisted\n");
        return reply;
    }
    if let Some((path, change)) = &req.record
        && change.is_change()
        && reply.status == Some(0)
    {
        let written = super::write_host_record(std::path::Path::new(path), change);
        reply.record_written(path, written.map_err(|e| e.to_string()));
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::change::{Action, Change, RouteOp};
    use crate::node::request::PersistedFile;

    fn op() -> RouteOp {
        let r = crate::core::route::Route::unicast(
            "10.1.0.0/24".parse().unwrap(),
            "10.0.2.20".parse().unwrap(),
            None,
            211,
            0,
        );
        Change::new(Action::Add, r, None).op().unwrap()
    }

    fn run_script(req: &ApplyRequest, dir: &std::path::Path, cut: Option<usize>) -> ApplyReply {
        let record = dir.join("rc/last-applied/n.json");
        let mut inv = apply_invocation(req, record.to_str().unwrap());
        // `ip` stands in as `echo`-like: the batch goes to a file, the read-back prints `[]`.
        let fake_ip = dir.join("ip");
        std::fs::write(
            &fake_ip,
            format!(
                "#!/bin/sh\ncase \"$*\" in *-batch*) cat >> {}/batch;; *) echo '[]';; esac\n",
                dir.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake_ip, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pos = inv.args.iter().position(|a| a == "ip").unwrap();
        inv.args[pos] = fake_ip.display().to_string();
        if let (Some(n), Some(stdin)) = (cut, inv.stdin.as_mut()) {
            stdin.truncate(n);
        }
        let networkctl = dir.join("networkctl");
        std::fs::write(
            &networkctl,
            format!("#!/bin/sh\necho \"$@\" >> {}/reloads\n", dir.display()),
        )
        .unwrap();
        std::fs::set_permissions(&networkctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("sh")
            .args(&inv.args)
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(inv.stdin.as_deref().unwrap())?;
                c.wait_with_output()
            })
            .unwrap();
        parse_apply_output(
            "sh".into(),
            out.status.code(),
            &out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The script writes the route lines and the record when the input is whole, and nothing at
    /// all when it was cut short anywhere.
    #[test]
    fn the_apply_script_does_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("rc/last-applied/n.json");
        let req = ApplyRequest {
            routes: vec![op()],
            persisted: None,
            record: Some((
                record.display().to_string(),
                FileChange::Write(b"{\"v\":2}\n".to_vec()),
            )),
            read_back: true,
        };
        let full = apply_invocation(&req, "/x").stdin.unwrap().len();
        for cut in [0, 1, 20, full - 1] {
            let r = run_script(&req, dir.path(), Some(cut));
            assert_eq!(r.status, Some(TORN_INPUT), "cut at {cut}: {r:?}");
            assert!(
                r.stderr
                    .contains(&format!("ended after {cut} of {full} bytes"))
            );
            assert!(!record.exists());
            assert!(!dir.path().join("batch").exists());
        }
        // Whole in length, damaged in content: the digest tells.
        let mut damaged = apply_invocation(&req, record.to_str().unwrap());
        if let Some(stdin) = damaged.stdin.as_mut() {
            stdin[0] ^= 1;
        }
        let out = std::process::Command::new("sh")
            .args(&damaged.args[..damaged.args.len() - 4])
            .arg("true")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(&damaged.stdin.unwrap())?;
                c.wait_with_output()
            })
            .unwrap();
        assert_eq!(out.status.code(), Some(TORN_INPUT));
        assert!(String::from_utf8_lossy(&out.stderr).contains("does not match its digest"));
        assert!(!record.exists());
        let r = run_script(&req, dir.path(), None);
        assert_eq!(r.status, Some(0), "{r:?}");
        assert!(r.record_done && !r.persisted_done);
        assert_eq!(r.read_back, Some(Ok(Vec::new())));
        assert_eq!(std::fs::read(&record).unwrap(), b"{\"v\":2}\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("batch")).unwrap(),
            "route add 10.1.0.0/24 via 10.0.2.20 table 254 proto 211 metric 0\n"
        );
        // Nothing is left behind but the record.
        let left: Vec<_> = std::fs::read_dir(record.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("n.json")]);
        // Removing the record.
        let rm = ApplyRequest {
            record: Some((record.display().to_string(), FileChange::Remove)),
            ..ApplyRequest::default()
        };
        let r = run_script(&rm, dir.path(), None);
        assert_eq!((r.status, r.record_done), (Some(0), true), "{r:?}");
        assert!(!record.exists());
    }

    /// A drop-in is written whole, 0644 in a 0755 directory (networkd reads it as its own
    /// user), then networkd is reloaded; removed, then reloaded; the record follows it.
    #[test]
    fn the_apply_script_writes_a_dropin_networkd_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("rc/last-applied/n.json");
        let dropin = dir.path().join("net/10-eth1.network.d/50-routectl.conf");
        std::fs::create_dir(dir.path().join("net")).unwrap();
        let req = ApplyRequest {
            routes: vec![op()],
            persisted: Some(PersistedFile {
                path: dropin.display().to_string(),
                change: FileChange::Write(b"[Route]\nDestination=10.1.0.0/24\n".to_vec()),
                mode: 0o644,
                networkd_reload: true,
            }),
            record: Some((
                record.display().to_string(),
                FileChange::Write(b"{}\n".to_vec()),
            )),
            read_back: false,
        };
        let r = run_script(&req, dir.path(), None);
        assert_eq!(r.status, Some(0), "{r:?}");
        assert!(r.persisted_done && r.record_done && r.read_back.is_none());
        assert_eq!(
            std::fs::read_to_string(&dropin).unwrap(),
            "[Route]\nDestination=10.1.0.0/24\n"
        );
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dropin), 0o644);
        assert_eq!(mode(dropin.parent().unwrap()), 0o755);
        assert_eq!(mode(record.parent().unwrap()), 0o700);
        let names: Vec<_> = std::fs::read_dir(dropin.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["50-routectl.conf"]);
        let rm = ApplyRequest {
            persisted: Some(PersistedFile {
                path: dropin.display().to_string(),
                change: FileChange::Remove,
                mode: 0o644,
                networkd_reload: true,
            }),
            ..ApplyRequest::default()
        };
        let r = run_script(&rm, dir.path(), None);
        assert_eq!((r.status, r.persisted_done), (Some(0), true), "{r:?}");
        assert!(!dropin.parent().unwrap().exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("reloads")).unwrap(),
            "reload\nreload\n"
        );
    }

    /// A hook is written whole with its mode (0755: the dispatcher and run-parts run only
    /// executable files not writable by others), with no reload; removed without touching its
    /// directory.
    #[test]
    fn the_apply_script_writes_a_hook_without_reload() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("dispatcher.d");
        std::fs::create_dir(&hooks).unwrap();
        let hook = hooks.join("90-routectl");
        let req = ApplyRequest {
            persisted: Some(PersistedFile {
                path: hook.display().to_string(),
                change: FileChange::Write(b"#!/bin/sh\nexit 0\n".to_vec()),
                mode: 0o755,
                networkd_reload: false,
            }),
            ..ApplyRequest::default()
        };
        let r = run_script(&req, dir.path(), None);
        assert_eq!((r.status, r.persisted_done), (Some(0), true), "{r:?}");
        assert_eq!(std::fs::read(&hook).unwrap(), b"#!/bin/sh\nexit 0\n");
        let mode = std::fs::metadata(&hook).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        let rm = ApplyRequest {
            persisted: Some(PersistedFile {
                change: FileChange::Remove,
                ..req.persisted.clone().unwrap()
            }),
            ..ApplyRequest::default()
        };
        let r = run_script(&rm, dir.path(), None);
        assert_eq!((r.status, r.persisted_done), (Some(0), true), "{r:?}");
        assert!(!hook.exists() && hooks.is_dir());
        assert!(!dir.path().join("reloads").exists());
    }
}
