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
    /// `--node` (empty: all nodes).
    pub nodes: Vec<String>,
    /// Per planned node: its fingerprint, or `null` when it could not be read.
    pub fingerprints: Vec<(String, Option<String>)>,
}

/// Reads a saved plan (`bytes`, from the file `shown`): its binding, the topology it carries,
/// and the options.
pub fn parse(bytes: &[u8], shown: &str) -> Result<(Binding, Topology, Options), Error> {
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Refused(format!("`{shown}` is not a saved plan: not JSON ({e})")))?;
    if doc.get("kind").and_then(Value::as_str) != Some("plan") {
        return Err(Error::Refused(format!(
            "`{shown}` is not a saved plan (no `\"kind\": \"plan\"`); write one with `routectl plan --out FILE`"
        )));
    }
    let Some(saved) = doc.get("saved") else {
        return Err(Error::Refused(format!(
            "`{shown}` is a plan printed with --output json, not a saved plan: write one with `routectl plan --out FILE`"
        )));
    };
    let binding: Binding = serde_json::from_value(saved.clone())
        .map_err(|e| Error::Refused(format!("`{shown}`: the saved plan is damaged ({e})")))?;
    if binding.routectl_version != env!("CARGO_PKG_VERSION") {
        return Err(Error::Refused(format!(
            "`{shown}` was made by routectl {}, this is routectl {}: make the plan again",
            binding.routectl_version,
            env!("CARGO_PKG_VERSION")
        )));
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
            &binding.topology_sha256[..12.min(binding.topology_sha256.len())]
        )])))
    }
}
