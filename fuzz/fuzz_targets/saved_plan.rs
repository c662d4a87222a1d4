//! Fuzzes reading saved plans (`routectl apply PLAN_FILE`): any bytes -> a verified saved plan
//! or a refusal, never a panic. An accepted plan must be consistent with itself: its topology
//! text has the SHA-256 it records, every planned node has exactly one fingerprint, and the
//! checks against a fresh plan run without panicking. Inputs that are JSON get a second pass
//! with their `topology_sha256` recomputed, so mutations reach the checks behind the hash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use routectl::core::plan::Plan;
use routectl::core::saved;
use sha2::{Digest, Sha256};

fn check(data: &[u8]) {
    // The strict reader accepts only what serde_json accepts, and reads it the same way.
    if let Ok(v) = saved::strict_json(data) {
        let plain: serde_json::Value = serde_json::from_slice(data).expect("strict ⊆ serde_json");
        assert_eq!(v, plain, "strict JSON reads differently");
    }
    let Ok(s) = saved::parse(data, "fuzz.json") else {
        return;
    };
    let sha = routectl::core::hex(&Sha256::digest(s.binding.topology_text.as_bytes()));
    assert_eq!(sha, s.binding.topology_sha256, "a plan whose text does not match its hash");
    assert_eq!(sha, s.topology.sha256);
    let selected = s.topology.selected(&s.options.only);
    assert_eq!(selected.len(), s.binding.fingerprints.len());
    for n in &selected {
        assert_eq!(
            s.binding
                .fingerprints
                .iter()
                .filter(|(name, _)| *name == n.name)
                .count(),
            1,
            "node {} without exactly one fingerprint",
            n.name
        );
    }
    // A fresh plan from empty nodes: the comparisons must refuse or pass, never panic.
    let fresh = Plan::compute(&s.topology, &s.options, 1, |_| Ok(Vec::new()));
    let _ = saved::check_fresh(&s.binding, &fresh);
    let doc = routectl::report::plan_json(&fresh, &s.topology);
    let _ = saved::check_changes(&s.doc, &doc);
    assert!(saved::check_changes(&doc, &doc).is_ok());
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data)
        && let Some(text) = v
            .pointer("/saved/topology_text")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
    {
        let sha = routectl::core::hex(&Sha256::digest(text.as_bytes()));
        if let Some(slot) = v.pointer_mut("/saved/topology_sha256") {
            *slot = serde_json::Value::String(sha);
            if let Ok(bytes) = serde_json::to_vec(&v) {
                check(&bytes);
            }
        }
    }
});
