//! A read held open for the write that follows it: during `apply`, the exec transports run each
//! node's read as a process that, once it has printed the read, waits for the apply request on
//! its stdin. A node with changes then gets its write, its record and its read-back in the same
//! process (one `lxc exec`, `incus exec`, `ssh` or `ip -n` per node for the whole apply, not one
//! for the read and another for the write); a node without changes is released: its stdin is
//! closed, and the process ends having done nothing more.
//!
//! - LXD, Incus and ssh nodes run [`held_script`]: the read script, then a marker line, then one
//!   line of arguments and the apply script's input on stdin, which it hands to the apply
//!   script. EOF where it waits for the line (routectl released it, ended or died) ends it.
//! - Network namespaces run `ip -force -batch -` alone: the read's `show` lines first, the
//!   route lines and the read-back later. Each `show` prints one line of JSON, flushed.
//!
//! Nothing changes for the plan or the report: the read returns the same reply, the write the
//! same reply, as with a process each. Holding is on only while `apply` reads the nodes it is
//! about to write without asking first (`--auto-approve`, a saved plan); at most [`MAX_HELD`]
//! (or [`MAX_HELD_NETNS`]) processes are held at once, further reads are plain.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use super::spawn::{self, Held, Started};
use super::{Invocation, Output, Process, apply_script, read_script, shown};
use crate::core::topology::TransportKind;
use crate::error::CommandError;
use crate::node::iproute;
use crate::node::request::{ApplyReply, ApplyRequest, ReadReply, ReadRequest, batch_text};

/// The most held `lxc`/`incus`/`ssh` processes at once (each client is some 18 MB).
pub const MAX_HELD: usize = 32;

/// The most held `ip` processes at once (a few MB each).
pub const MAX_HELD_NETNS: usize = 256;

/// The line a held read prints when it is ready for the write.
pub const HELD_MARKER: &str = "--routectl-held--";

/// The read script and the apply script in one process: `sh -c HELD_SCRIPT sh SHOW RECORD
/// IFACE ip ARGS…`. The read script ([`read_script::READ_SCRIPT`]) runs in a subshell (one
/// process) with stdin `/dev/null`, or with SHOW `a` (a read with addresses) with
/// [`read_script::SHOW_SCRIPT`] piped to it; its failure ends the process with its status.
/// Then it prints a newline and [`HELD_MARKER`] and reads one line from stdin: at EOF it exits
/// 0; else the line is the apply script's
/// arguments, each quoted for the shell, and the rest of stdin the apply script's input, as
/// [`apply_script::APPLY_SCRIPT`] describes.
pub fn held_script() -> &'static str {
    static SCRIPT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "sb=$1; shift; rd() ( {1} ); if [ \"$sb\" = a ]; then printf '{0}' | rd \"$@\"; \
             else rd \"$@\" </dev/null; fi; s=$?; \
             [ \"$s\" -eq 0 ] || exit \"$s\"; printf '\\n{HELD_MARKER}\\n'; \
             IFS= read -r a || exit 0; eval \"set -- $a\"; {2}",
            read_script::SHOW_SCRIPT.replace('\n', "\\n"),
            read_script::READ_SCRIPT,
            apply_script::APPLY_SCRIPT
        )
    });
    &SCRIPT
}

/// The processes held by one transport, by instance.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    on: AtomicBool,
    held: Mutex<HashMap<String, Held>>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Process {
    /// Holds the reads that follow (see the module's documentation).
    pub(super) fn hold(&self) {
        self.sessions.on.store(true, Ordering::Relaxed);
    }

    /// Stops holding reads, and releases every held process but those of `keep`.
    pub(super) fn release(&self, keep: &[String]) {
        self.sessions.on.store(false, Ordering::Relaxed);
        let gone: Vec<Held> = {
            let mut held = self.sessions.lock();
            let names: Vec<String> = held.keys().filter(|k| !keep.contains(k)).cloned().collect();
            names.iter().filter_map(|n| held.remove(n)).collect()
        };
        spawn::release_all(gone, self.timeout);
    }

    /// The read of `instance`, held for a write when holding is on and there is room; `None`
    /// when the read is to be made as usual.
    pub(super) fn read_held(
        &self,
        instance: &str,
        req: &ReadRequest,
    ) -> Option<Result<ReadReply, CommandError>> {
        if !self.sessions.on.load(Ordering::Relaxed) {
            return None;
        }
        let (inv, first, ready): (Invocation, Vec<u8>, spawn::Ready) = match self.kind {
            // A namespace's record is read on this host; a read that asks for files is not
            // `ip` alone, and is made as usual.
            TransportKind::Netns if req.record.is_some() => return None,
            TransportKind::Netns => {
                let show = if req.addresses {
                    read_script::SHOW_SCRIPT.to_string()
                } else {
                    format!("{}\n", iproute::SHOW_ALL_LINE)
                };
                // Each `show` prints one line of JSON.
                let ready = spawn::Ready::Lines(if req.addresses { 2 } else { 1 });
                let inv = Invocation::ip(iproute::batch_args());
                (inv, show.into_bytes(), ready)
            }
            _ => (
                held_invocation(req)?,
                Vec::new(),
                spawn::Ready::Marker(HELD_MARKER),
            ),
        };
        let cap = match self.kind {
            TransportKind::Netns => MAX_HELD_NETNS,
            _ => MAX_HELD,
        };
        let old = {
            let mut held = self.sessions.lock();
            let old = held.remove(instance);
            if held.len() >= cap {
                drop(held);
                spawn::release_all(old.into_iter().collect(), self.timeout);
                return None;
            }
            old
        };
        spawn::release_all(old.into_iter().collect(), self.timeout);
        Some(self.start_read(instance, req, &inv, &first, ready))
    }

    fn start_read(
        &self,
        instance: &str,
        req: &ReadRequest,
        inv: &Invocation,
        first: &[u8],
        ready: spawn::Ready,
    ) -> Result<ReadReply, CommandError> {
        let argv = self.argv(instance, inv);
        if self.verbose {
            crate::console::err(&format!("+ {} (held for the write)\n", argv.join(" ")));
        }
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let line = shown(&argv, inv);
        match spawn::start_held(&argv, &line, first, ready, self.timeout)? {
            Started::Done(out) => {
                let out = self.ssh_checked(out)?;
                if out.status != Some(0) {
                    return Err(out.status_error());
                }
                Ok(read_script::parse_reply(req, out))
            }
            Started::Held(out, held) => {
                self.sessions.lock().insert(instance.to_string(), held);
                Ok(read_script::parse_reply(req, out))
            }
        }
    }

    /// The write to `instance` through the process its read left waiting; `None` when there is
    /// none (the write is then made as usual).
    pub(super) fn apply_held(
        &self,
        instance: &str,
        req: &ApplyRequest,
    ) -> Option<Result<ApplyReply, CommandError>> {
        let held = self.sessions.lock().remove(instance)?;
        if !crate::interrupt::may_start() {
            // A SIGINT/SIGTERM stops new writes: this one had not started.
            spawn::release_all(vec![held], self.timeout);
            return Some(Err(CommandError::Interrupted {
                argv: format!("the write to `{instance}`"),
                signal: crate::interrupt::signal_name().to_string(),
            }));
        }
        if self.kind == TransportKind::Netns {
            return Some(self.apply_held_batch(instance, held, req));
        }
        let record_path = crate::core::record::record_path(instance);
        let inv = apply_script::apply_invocation(req, &record_path);
        // args: -c APPLY_SCRIPT sh PARAMS…: the parameters go on the line the script reads.
        let params = inv.args.get(3..).unwrap_or_default();
        if params.iter().any(|p| p.contains('\n')) {
            spawn::release_all(vec![held], self.timeout);
            return None;
        }
        let mut input = params
            .iter()
            .map(|p| super::shell_word(p))
            .collect::<Vec<_>>()
            .join(" ")
            .into_bytes();
        input.push(b'\n');
        input.extend_from_slice(inv.stdin.as_deref().unwrap_or_default());
        if self.verbose {
            let mut msg = format!("+ (held) {instance}: apply script {}\n", params.join(" "));
            let stdin = inv.stdin.as_deref().unwrap_or_default();
            for line in String::from_utf8_lossy(stdin).lines() {
                msg.push_str(&format!("  | {line}\n"));
            }
            crate::console::err(&msg);
        }
        let out = held
            .finish(&input, self.timeout)
            .and_then(|o| self.ssh_checked(o));
        Some(out.map(|o| apply_script::parse_apply_output(o.argv, o.status, &o.stdout, o.stderr)))
    }

    /// A network namespace's write through its held `ip -batch`: the route lines and the
    /// read-back, then the record on this host.
    fn apply_held_batch(
        &self,
        instance: &str,
        held: Held,
        req: &ApplyRequest,
    ) -> Result<ApplyReply, CommandError> {
        let mut script = batch_text(&req.routes);
        if req.read_back {
            script.push_str(iproute::SHOW_ALL_LINE);
            script.push('\n');
        }
        if self.verbose {
            let args = iproute::batch_args().join(" ");
            let mut msg = format!("+ (held) {instance}: ip {args}\n");
            for line in script.lines() {
                msg.push_str(&format!("  | {line}\n"));
            }
            crate::console::err(&msg);
        }
        let out = held.finish(script.as_bytes(), self.timeout)?;
        let reply = ApplyReply {
            read_back: req
                .read_back
                .then(|| apply_script::parse_read_back(&out.stdout)),
            argv: out.argv,
            status: out.status,
            stderr: out.stderr,
            persisted_done: false,
            record_done: false,
        };
        Ok(apply_script::finish_on_host_record(req, reply))
    }

    /// An ssh output whose status 255 is ssh's own failure, as an error (see
    /// [`crate::node::transport::Transport::run`]).
    pub(super) fn ssh_checked(&self, out: Output) -> Result<Output, CommandError> {
        if self.kind == TransportKind::Ssh && out.status == Some(255) {
            return Err(CommandError::Ssh {
                argv: out.argv,
                failure: crate::error::SshFailure::classify(&out.stderr),
                stderr: out.stderr,
            });
        }
        Ok(out)
    }
}

/// The held script's invocation for `req`; `None` for a read that asks for no record (it is
/// `ip` alone, and is not held).
fn held_invocation(req: &ReadRequest) -> Option<Invocation> {
    let record = req.record.as_ref()?;
    let plain = read_script::read_invocation(req);
    // plain: sh -c READ_SCRIPT sh RECORD IFACE ip ARGS…, the show lines on stdin.
    let ip_args = plain.args.get(5..)?;
    let mut args = vec![
        "-c".to_string(),
        held_script().to_string(),
        "sh".to_string(),
        if req.addresses { "a" } else { "-" }.to_string(),
        record.clone(),
        req.facts_of.clone().unwrap_or_default(),
    ];
    args.extend(ip_args.iter().cloned());
    Some(Invocation {
        program: "sh".to_string(),
        args,
        stdin: None,
        label: Some("read script"),
    })
}
