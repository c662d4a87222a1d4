//! Saved plans: `routectl plan --out FILE` writes the plan's JSON document plus what is needed
//! to apply it later without a topology file (the topology's text, the transport, the options)
//! and, per node, a fingerprint of the routes the plan was computed from. `routectl apply FILE`
//! re-reads every node and refuses if the topology or any node's relevant routes changed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use sha2::{Digest, Sha256};

use crate::core::hex;
use crate::core::plan::{Options, Plan};
use crate::core::topology::{self, Topology, TransportKind};
use crate::error::{Error, StaleReasons};

/// The version of the `plan` and `apply` documents and of saved plans (docs/json.md): 2 since
/// a change states its route once, as fields, without the `route` and `command` strings.
/// `apply FILE` reads only plans of this version.
pub const PLAN_FORMAT_VERSION: u32 = 2;

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

/// A saved plan as read: its binding, the topology it carries, the options, and the whole
/// document (its `nodes` are compared with a fresh plan before anything is applied).
#[derive(Debug, Clone)]
pub struct Saved {
    /// What the plan was bound to.
    pub binding: Binding,
    /// The topology it carries (verified against its SHA-256).
    pub topology: Topology,
    /// The options it was made with.
    pub options: Options,
    /// The document as saved.
    pub doc: Value,
}

/// Parses JSON refusing duplicate keys at any depth (serde_json keeps the last one silently,
/// so an edited plan could show one value to a reviewer and apply another).
pub fn strict_json(bytes: &[u8]) -> Result<Value, String> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = StrictSeed.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

struct StrictSeed;

impl<'de> serde::de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(serde::de::Error::custom(format!("duplicate key `{k}`")));
            }
            let v = map.next_value_seed(StrictSeed)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Reads a saved plan (`bytes`, from the file `shown`) and checks it against itself: no
/// duplicate keys, the topology text matches its SHA-256, and every node the options select
/// has exactly one fingerprint (a missing one would skip the staleness check).
pub fn parse(bytes: &[u8], shown: &str) -> Result<Saved, Error> {
    let doc: Value = strict_json(bytes).map_err(|message| Error::PlanNotJson {
        file: shown.to_string(),
        message,
    })?;
    let binding = binding(&doc, shown)?;
    let damaged = |message: String| Error::DamagedPlan {
        file: shown.to_string(),
        message,
    };
    let text_sha = hex(&Sha256::digest(binding.topology_text.as_bytes()));
    if text_sha != binding.topology_sha256 {
        return Err(damaged(format!(
            "its topology text has SHA-256 {}…, not the {}… it records",
            text_sha.chars().take(12).collect::<String>(),
            binding.topology_sha256.chars().take(12).collect::<String>()
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
        take_over: binding.take_over,
        only: binding.nodes.clone(),
    };
    for n in &binding.nodes {
        if topology.node(n).is_none() {
            return Err(damaged(format!(
                "it selects node `{n}`, which its topology does not declare"
            )));
        }
    }
    check_fingerprints(&binding, &topology, &options).map_err(damaged)?;
    if doc.get("adopt").and_then(Value::as_bool) != Some(binding.adopt) {
        return Err(damaged(
            "its `adopt` differs from the one it was made with".to_string(),
        ));
    }
    Ok(Saved {
        binding,
        topology,
        options,
        doc,
    })
}

/// What a saved plan document is bound to, once it is known to be a plan of this format made
/// by this version of routectl.
fn binding(doc: &Value, shown: &str) -> Result<Binding, Error> {
    if doc.get("kind").and_then(Value::as_str) != Some("plan") {
        return Err(Error::NotAPlan {
            file: shown.to_string(),
        });
    }
    let version = doc.get("format_version");
    if version.and_then(Value::as_u64) != Some(u64::from(PLAN_FORMAT_VERSION)) {
        return Err(Error::PlanFormat {
            file: shown.to_string(),
            found: version.map_or_else(|| "none".to_string(), Value::to_string),
            reads: PLAN_FORMAT_VERSION,
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
    Ok(binding)
}

/// Every node the options select has exactly one fingerprint, and no other node has one.
fn check_fingerprints(
    binding: &Binding,
    topology: &Topology,
    options: &Options,
) -> Result<(), String> {
    let selected = topology.selected(&options.only);
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in &binding.fingerprints {
        if !seen.insert(name.as_str()) {
            return Err(format!("node `{name}` has two fingerprints"));
        }
        if !selected.iter().any(|n| n.name == *name) {
            return Err(format!(
                "it has a fingerprint for `{name}`, which it does not plan"
            ));
        }
    }
    for n in &selected {
        if !seen.contains(n.name.as_str()) {
            return Err(format!(
                "node `{}` is planned but has no fingerprint",
                n.name
            ));
        }
    }
    Ok(())
}

/// Compares the changes of a saved plan document with those of a fresh plan's document (both
/// as `routectl plan --output json` renders them): the same nodes, in the same order, with the
/// same changes. An edited `adopt`, `nodes` or change list shows up here.
pub fn check_changes(saved: &Value, fresh: &Value) -> Result<(), Error> {
    let view = |doc: &Value| -> Vec<(Value, Value)> {
        doc.get("nodes")
            .and_then(Value::as_array)
            .map(|nodes| {
                nodes
                    .iter()
                    .map(|n| {
                        (
                            n.get("name").cloned().unwrap_or(Value::Null),
                            n.get("changes").cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (a, b) = (view(saved), view(fresh));
    let mut reasons = Vec::new();
    if saved.get("adopt") != fresh.get("adopt") {
        reasons.push("the plan's `adopt` is not the one its changes were made with".to_string());
    }
    let names = |v: &[(Value, Value)]| -> Vec<String> {
        v.iter()
            .map(|(n, _)| n.as_str().unwrap_or("?").to_string())
            .collect()
    };
    if names(&a) != names(&b) {
        reasons.push(format!(
            "the plan lists nodes {:?}, but its options plan {:?}",
            names(&a),
            names(&b)
        ));
    } else {
        for ((name, sa), (_, fb)) in a.iter().zip(&b) {
            if sa != fb {
                reasons.push(format!(
                    "node `{}`: the saved changes are not the ones a fresh plan makes",
                    name.as_str().unwrap_or("?")
                ));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        reasons.push("make a new plan with `routectl plan --out FILE` and review it".to_string());
        Err(Error::StalePlan(StaleReasons(reasons)))
    }
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

    /// A plan saved by `routectl plan --out` (2 nodes, one adoptable route), made current.
    fn seed() -> Vec<u8> {
        let mut v: Value =
            serde_json::from_slice(include_bytes!("../../fuzz/seeds/saved_plan/seed-all.json"))
                .unwrap();
        v["saved"]["routectl_version"] = Value::String(env!("CARGO_PKG_VERSION").to_string());
        serde_json::to_vec_pretty(&v).unwrap()
    }

    fn edit(f: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(&seed()).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn refused(bytes: &[u8]) -> String {
        parse(bytes, "p.json").unwrap_err().to_string()
    }

    #[test]
    fn a_saved_plan_as_made_is_accepted() {
        let s = parse(&seed(), "p.json").unwrap();
        assert_eq!(s.binding.fingerprints.len(), 2);
    }

    #[test]
    fn edits_that_skip_a_check_are_refused() {
        // Regressions: each of these was applied.
        let e = refused(&edit(|v| {
            v["saved"]["topology_text"] = Value::String(
                v["saved"]["topology_text"]
                    .as_str()
                    .unwrap()
                    .replace("10.1.1.0/24", "10.1.7.0/24"),
            )
        }));
        assert!(e.contains("its topology text has SHA-256"), "{e}");
        let e = refused(&edit(|v| {
            v["saved"]["fingerprints"] = serde_json::json!([])
        }));
        assert!(
            e.contains("node `worker-0` is planned but has no fingerprint"),
            "{e}"
        );
        let e = refused(&edit(|v| v["saved"]["adopt"] = Value::Bool(true)));
        assert!(e.contains("`adopt` differs"), "{e}");
        let e = refused(&edit(|v| {
            v["saved"]["nodes"] = serde_json::json!(["worker-1"])
        }));
        assert!(e.contains("which it does not plan"), "{e}");
        let text = String::from_utf8_lossy(&seed()).replacen(
            "\"adopt\": false,",
            "\"adopt\": false, \"adopt\": true,",
            1,
        );
        let e = refused(text.as_bytes());
        assert!(e.contains("duplicate key `adopt`"), "{e}");
    }

    #[test]
    fn a_plan_of_another_format_is_refused_by_name() {
        // A plan saved before changes lost their `route` and `command` strings.
        let e = refused(&edit(|v| v["format_version"] = Value::from(1)));
        assert!(
            e.contains("is a plan of format_version 1, this routectl reads format_version 2"),
            "{e}"
        );
        let e = refused(&edit(|v| {
            v.as_object_mut().unwrap().remove("format_version");
        }));
        assert!(e.contains("a plan of format_version none"), "{e}");
    }

    #[test]
    fn changed_changes_are_refused() {
        let saved: Value = serde_json::from_slice(&seed()).unwrap();
        assert!(check_changes(&saved, &saved).is_ok());
        let mut fewer = saved.clone();
        fewer["nodes"][0]["changes"].as_array_mut().unwrap().pop();
        let e = check_changes(&fewer, &saved).unwrap_err().to_string();
        assert!(e.contains("node `worker-0`: the saved changes"), "{e}");
    }
}
