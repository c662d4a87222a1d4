//! The `[cluster]` keys that stand alone: `transport`, `access`, `ssh_config`, `protocol` and
//! `metric`, each read with a problem for a wrong value.

use super::super::raw::RawCluster;
use super::super::{Access, TransportKind};
use crate::core::route::{DEFAULT_PROTOCOL, WELL_KNOWN_PROTOCOLS};

impl super::Checker {
    /// The cluster's `transport` (`lxc` when absent or wrong, with a problem for a wrong one).
    pub(super) fn transport(&mut self, rc: &RawCluster) -> TransportKind {
        let Some(t) = &rc.transport else {
            return TransportKind::Lxc;
        };
        if let Some(k) = TransportKind::from_name(t.get_ref()) {
            return k;
        }
        let hint = match t.get_ref().to_ascii_lowercase().as_str() {
            "lxd" => " (LXD's client is `lxc`: write `transport = \"lxc\"`)",
            "incusd" => " (Incus's client is `incus`)",
            _ => "",
        };
        self.problem(
            &t.span(),
            format!(
                "unknown transport `{}`: expected one of {}{hint}",
                t.get_ref(),
                TransportKind::NAMES.join(", "),
            ),
        );
        TransportKind::Lxc
    }

    /// The cluster's `access` (`exec` when absent or wrong; never `host` for ssh).
    pub(super) fn access(&mut self, rc: &RawCluster, transport: TransportKind) -> Access {
        let Some(a) = &rc.access else {
            return Access::Exec;
        };
        match Access::from_name(a.get_ref()) {
            Some(Access::Host) if transport == TransportKind::Ssh => self.problem(
                &a.span(),
                "access `host` reaches only this host's containers and network namespaces, \
                 not nodes reached over ssh: use access = \"exec\""
                    .to_string(),
            ),
            Some(k) => return k,
            None => self.problem(
                &a.span(),
                format!(
                    "unknown access `{}`: expected one of {}",
                    a.get_ref(),
                    Access::NAMES.join(", ")
                ),
            ),
        }
        Access::Exec
    }

    /// The cluster's `ssh_config` (transport `ssh` only).
    pub(super) fn ssh_config(
        &mut self,
        rc: &RawCluster,
        transport: TransportKind,
    ) -> Option<String> {
        let c = rc.ssh_config.as_ref()?;
        if transport != TransportKind::Ssh {
            self.problem(
                &c.span(),
                format!("ssh_config is for transport `ssh`, not `{transport}`"),
            );
        } else if c.get_ref().is_empty() || c.get_ref().contains('\0') {
            self.problem(&c.span(), "ssh_config must name a file".to_string());
        } else {
            return Some(c.get_ref().clone());
        }
        None
    }

    /// The cluster's `protocol`: 1 to 255 and no well-known one, else the default.
    pub(super) fn protocol(&mut self, rc: &RawCluster) -> u8 {
        let Some(p) = &rc.protocol else {
            return DEFAULT_PROTOCOL;
        };
        let n = *p.get_ref();
        match u8::try_from(n) {
            Ok(n) if n > 0 => {
                let Some((_, name)) = WELL_KNOWN_PROTOCOLS.iter().find(|(k, _)| *k == n) else {
                    return n;
                };
                self.problem(
                    &p.span(),
                    format!(
                        "protocol {n} is the well-known protocol `{name}`: routectl owns \
                         every route of its protocol, so it must be a number no other \
                         software uses (default {DEFAULT_PROTOCOL})"
                    ),
                );
            }
            _ => self.problem(
                &p.span(),
                format!("protocol {n} is out of range: expected a number from 1 to 255"),
            ),
        }
        DEFAULT_PROTOCOL
    }

    /// The cluster's `metric` (a u32).
    pub(super) fn metric(&mut self, rc: &RawCluster) -> Option<u32> {
        let m = rc.metric.as_ref()?;
        match u32::try_from(*m.get_ref()) {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(
                    &m.span(),
                    format!(
                        "metric {} is out of range: expected 0 to {}",
                        m.get_ref(),
                        u32::MAX
                    ),
                );
                None
            }
        }
    }
}
