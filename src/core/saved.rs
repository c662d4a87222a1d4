//! Saved plans: `routectl plan --out FILE` writes the plan's JSON document plus what is needed
//! to apply it later without a topology file (the topology's text, the transport, the options)
//! and, per node, a fingerprint of the routes the plan was computed from. `routectl apply FILE`
//! re-reads every node and refuses if the topology or any node's relevant routes changed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::plan::{Options, Plan};
use crate::core::topology::{self, Topology, TransportKind};
use crate::error::{Error, StaleReasons};

/// What a saved plan carries besides the plan document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Binding {
    /// The routectl version that made the plan (a plan is applied only by the same version).
    pub routectl_version: String,
    /// The transport the plan was read through.
    pub transport: TransportKind,
    /// The topology's path when the plan was made (for messages).
    pub topology_path: String,
    /// The topology's SHA-256.
    pub topology_sha256: String,
    /// The topology's text.
    pub topology_text: String,
    /// `--adopt`.
    pub adopt: bool,
    /// `--take-over`.
    #[serde(default)]
    pub take_over: bool,
    /// `--node` (empty: all nodes).
    pub nodes: Vec<String>,
    /// Per planned node: its fingerprint, or `null` when it could not be read.
    pub fingerprints: Vec<(String, Option<String>)>,
}

/// Reads a saved plan (`bytes`, from the file `shown`): its binding, the topology it carries,
/// and the options.
pub fn parse(bytes: &[u8], shown: &str) -> Result<(Binding, Topology, Options), Error> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| Error::PlanNotJson {
        file: shown.to_string(),
        message: e.to_string(),
    })?;
    if doc.get("kind").and_then(Value::as_str) != Some("plan") {
        return Err(Error::NotAPlan {
            file: shown.to_string(),
        });
    }
    let Some(saved) = doc.get("saved") else {
        return Err(Error::PrintedPlan {
            file: shown.to_string(),
        });
    };
    let binding: Binding =
        serde_json::from_value(saved.clone()).map_err(|e| Error::DamagedPlan {
            file: shown.to_string(),
            message: e.to_string(),
        })?;
    if binding.routectl_version != env!("CARGO_PKG_VERSION") {
        return Err(Error::PlanVersion {
            file: shown.to_string(),
            made_by: binding.routectl_version,
            running: env!("CARGO_PKG_VERSION"),
        });
    }
    let source = format!("{} (as saved in {shown})", binding.topology_path);
    let topology = topology::parse(
        binding.topology_text.as_bytes(),
        &source,
        Some(binding.transport),
    )
    .map_err(Error::Topology)?;
    let options = Options {
        adopt: binding.adopt,
        take_over: binding.take_over,
        only: binding.nodes.clone(),
    };
    Ok((binding, topology, options))
}

/// Compares a fresh plan with the binding: every reason the saved plan no longer holds.
pub fn check_fresh(binding: &Binding, fresh: &Plan) -> Result<(), Error> {
    let mut reasons = Vec::new();
    for (name, saved) in &binding.fingerprints {
        let now = fresh
            .nodes
            .iter()
            .find(|n| &n.name == name)
            .map(|n| n.state.as_ref().ok().map(|d| d.fingerprint.clone()));
        match (saved, now) {
            (_, None) => reasons.push(format!("node `{name}` is no longer planned")),
            (Some(a), Some(Some(b))) if *a == b => {}
            (Some(_), Some(Some(_))) => reasons.push(format!(
                "node `{name}`: its routes changed since the plan was made"
            )),
            (Some(_), Some(None)) => reasons.push(format!(
                "node `{name}` cannot be read now (it could when the plan was made)"
            )),
            (None, Some(Some(_))) => reasons.push(format!(
                "node `{name}` could not be read when the plan was made and can now: its changes were never reviewed"
            )),
            (None, Some(None)) => {}
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        reasons.push("make a new plan with `routectl plan --out FILE` and review it".to_string());
        Err(Error::StalePlan(StaleReasons(reasons)))
    }
}

/// Checks an explicitly given topology file against the one the plan carries.
pub fn check_topology(binding: &Binding, given: &Topology) -> Result<(), Error> {
    if given.sha256 == binding.topology_sha256 {
        Ok(())
    } else {
        Err(Error::StalePlan(StaleReasons(vec![format!(
            "topology `{}` differs from the one the plan was made from (`{}`, sha256 {}…)",
            given.source,
            binding.topology_path,
            binding.topology_sha256.chars().take(12).collect::<String>()
        )])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multibyte_topology_hash_is_stale_not_a_panic() {
        // Regression: `apply -f T PLAN` sliced the saved hash at byte 12 for the message, and
        // panicked when an edited plan put a multibyte character across that byte.
        let text = "[cluster]\ninterface = \"eth1\"\n[[nodes]]\nname = \"w0\"\ninternal_ip = \"10.0.2.20\"\n";
        let given = topology::parse(text.as_bytes(), "topology.toml", None).unwrap();
        let binding = Binding {
            routectl_version: env!("CARGO_PKG_VERSION").to_string(),
            transport: TransportKind::Lxc,
            topology_path: "topology.toml".to_string(),
            // Byte 12 falls inside a two-byte `é`.
            topology_sha256: format!("x{}", "é".repeat(20)),
            topology_text: text.to_string(),
            adopt: false,
            take_over: false,
            nodes: vec![],
            fingerprints: vec![],
        };
        let e = check_topology(&binding, &given).unwrap_err().to_string();
        assert!(
            e.contains("differs from the one the plan was made from (`topology.toml`, sha256 xééééééééééé…)"),
            "{e}"
        );
    }
}
