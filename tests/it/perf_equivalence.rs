//! The performance rewrites compute exactly what the straightforward versions did: node lines
//! of a topology, the diff fingerprint, and parsing with escapes (which cannot be borrowed).

use routectl::core::diff::fingerprint;
use routectl::core::route::Route;
use routectl::core::topology;
use routectl::node::iproute::parse_routes;
use sha2::{Digest, Sha256};

#[test]
fn node_lines_match_a_plain_newline_count() {
    let mut text =
        String::from("# é ü — multibyte text before the nodes\n[cluster]\ninterface = \"eth1\"\n");
    for i in 0..300 {
        text.push_str(&format!(
            "\n# node {i} ✓\n[[nodes]]\nname = \"n{i}\"\ninternal_ip = \"10.0.{}.{}\"\npod_cidr = \"10.{}.{}.0/24\"\n",
            i / 200,
            i % 200 + 10,
            64 + i / 256,
            i % 256
        ));
    }
    let t = topology::parse(text.as_bytes(), "t.toml", None).expect("valid");
    for n in &t.nodes {
        let at = text
            .find(&format!("name = \"{}\"\n", n.name))
            .expect("node");
        // The node's table starts at its `[[nodes]]` header, the line before `name`.
        let expected = text[..at].matches('\n').count();
        assert_eq!(n.line, expected, "{}", n.name);
    }
}

#[test]
fn fingerprint_is_the_sha256_of_sorted_route_lines() {
    let out = br#"[{"dst":"10.64.10.0/24","gateway":"10.0.0.21","dev":"eth1","protocol":"211","table":"254"},
        {"dst":"10.64.2.0/24","gateway":"10.0.0.12","dev":"eth1","protocol":"211","table":"254"},
        {"dst":"fd01:2::/64","gateway":"fd00::12","dev":"eth1","protocol":"211","metric":1024,"table":"254"},
        {"type":"6","dst":"10.9.0.0/16","protocol":"3","table":"254"},
        {"dst":"10.64.3.0/24","nexthops":[{"gateway":"10.0.0.13","dev":"eth1"},{"gateway":"10.0.0.14","dev":"eth1"}],"protocol":"186","table":"254"},
        {"dst":"default","gateway":"10.0.0.1","dev":"eth1","protocol":"3","table":"254"}]"#;
    let routes = parse_routes(out).expect("valid");
    let refs: Vec<&Route> = routes.iter().collect();
    let mut lines: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
    lines.sort();
    let mut h = Sha256::new();
    for l in &lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    let expected: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(fingerprint(&refs), expected);
    let empty: String = Sha256::digest(b"")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(fingerprint(&[]), empty);
}

#[test]
fn escaped_strings_are_read_like_plain_ones() {
    let plain = br#"[{"dst":"10.64.1.0/24","gateway":"10.0.0.11","dev":"eth1","protocol":"211","table":"254"}]"#;
    let escaped = br#"[{"d\u0073t":"10.64.1.0\/24","gateway":"10.0.0.11","dev":"et\u00681","protocol":"211","table":"254"}]"#;
    assert_eq!(
        parse_routes(plain).expect("valid"),
        parse_routes(escaped).expect("valid")
    );
}
