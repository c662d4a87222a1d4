//! What `ip` prints -> observed routes; and the fixed `ip` invocations routectl reads with.
//!
//! Tolerant by design: omitted defaults, `default`, bare host addresses, names or numbers,
//! duplicate keys, multipath, unknown keys and unknown route types are data, not errors. Only
//! output that is not JSON at all (or not an array of objects) is refused, because a route table
//! that cannot be read must never look like an empty one. Nothing here runs a process.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::core::route::{
    Destination, Family, Hop, NextHop, Route, TABLE_MAIN, TYPE_UNICAST, protocol_number,
    table_number, type_number,
};
use crate::error::ParseError;

mod addrs;
mod batch;
mod json;
mod version;

use json::{Hops, KeyName, Scalar, Strings};

pub use addrs::parse_addrs;
pub use batch::{BatchFailure, batch_failures};
pub use version::{IpVersion, parse_version};

/// Global `ip` options for every read: numeric names (`-N`, so that protocol numbers do not
/// depend on a node's `rt_protos`), details (`-d`, so that defaults are printed), JSON.
pub const READ_OPTIONS: &[&str] = &["-N", "-d", "-j"];

/// The read itself: both families of every table in one process.
pub const SHOW_ALL: &[&str] = &["route", "show", "table", "all"];

/// The same read as a line of an `ip -batch` script (so a write can end with its read-back).
pub const SHOW_ALL_LINE: &str = "route show table all";

/// `ip` arguments for a write: read options, keep going past a failing line, script on stdin.
pub const BATCH_ARGS: &[&str] = &["-N", "-d", "-j", "-force", "-batch", "-"];

/// The argv (after `ip`) of a full read.
pub fn read_args() -> Vec<String> {
    READ_OPTIONS
        .iter()
        .chain(SHOW_ALL)
        .map(|s| s.to_string())
        .collect()
}

/// The argv (after `ip`) of a batch write.
pub fn batch_args() -> Vec<String> {
    BATCH_ARGS.iter().map(|s| s.to_string()).collect()
}

/// Parses the output of one `ip -j route show`: a JSON array of route objects.
pub fn parse_routes(output: &[u8]) -> Result<Vec<Route>, ParseError> {
    let mut all = parse_stream(output)?;
    match all.len() {
        1 => Ok(all.pop().unwrap_or_default()),
        0 => Err(ParseError::Empty),
        n => Err(invalid(
            output,
            format!("expected one JSON array, found {n}"),
        )),
    }
}

/// Parses a stream of JSON arrays (what `ip -batch` prints, one array per `show` line).
pub fn parse_stream(output: &[u8]) -> Result<Vec<Vec<Route>>, ParseError> {
    if output.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let mut tables = Vec::new();
    let stream = serde_json::Deserializer::from_slice(output).into_iter::<RawTable>();
    for table in stream {
        match table {
            Ok(t) => {
                let mut routes = Vec::with_capacity(t.0.len());
                for (i, raw) in t.0.into_iter().enumerate() {
                    // `ip` prints `dst` on every route (`default` when there is none): an object
                    // without one is not a route, and dropping it would hide a route.
                    match raw.into_route() {
                        Ok(r) => routes.push(r),
                        Err(why) => {
                            return Err(invalid(
                                output,
                                format!(
                                    "route object {} of table {} {why}",
                                    i + 1,
                                    tables.len() + 1
                                ),
                            ));
                        }
                    }
                }
                tables.push(routes);
            }
            Err(e) => return Err(invalid(output, e.to_string())),
        }
    }
    Ok(tables)
}

pub(crate) fn invalid(output: &[u8], mut message: String) -> ParseError {
    // iproute2 writes strings into its JSON unescaped: a control character in a name (an
    // interface called `e\x1bx`) makes the whole output invalid JSON. Say so, it is not garbage.
    if message.contains("control character") {
        message.push_str(
            "; iproute2 printed a name (an interface name, most likely) holding a control \
             character without escaping it, which makes its whole JSON output invalid: rename \
             that interface",
        );
    }
    let text = String::from_utf8_lossy(&output[..output.len().min(80)]);
    let mut excerpt: String = text.chars().filter(|c| !c.is_control()).collect();
    if output.len() > 80 {
        excerpt.push('…');
    }
    ParseError::Invalid { message, excerpt }
}

/// The routes of table main (the only table routectl plans for).
pub fn main_table(routes: Vec<Route>) -> Vec<Route> {
    routes
        .into_iter()
        .filter(|r| r.table == TABLE_MAIN)
        .collect()
}

struct RawTable<'de>(Vec<RawRoute<'de>>);

impl<'de> Deserialize<'de> for RawTable<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTable<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON array of route objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawTable<'de>, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(r) = seq.next_element::<RawRoute>()? {
                    v.push(r);
                }
                Ok(RawTable(v))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One route object. Unknown keys are skipped. A repeated key keeps its last value, except
/// `dst`, `from` and `tos`, which keep their first: iproute2 prints the route's own `dst`,
/// `from` and `tos` before an `encap` block whose keys (`"encap":"ip","id":…,"dst":…,"tos":…`)
/// repeat them, while every other route key comes after that block.
#[derive(Default)]
struct RawRoute<'de> {
    kind: Option<Scalar<'de>>,
    dst: Option<Scalar<'de>>,
    gateway: Option<Scalar<'de>>,
    via: Option<Scalar<'de>>,
    dev: Option<Scalar<'de>>,
    table: Option<Scalar<'de>>,
    protocol: Option<Scalar<'de>>,
    metric: Option<Scalar<'de>>,
    tos: Option<Scalar<'de>>,
    from: Option<Scalar<'de>>,
    nhid: Option<Scalar<'de>>,
    flags: Vec<String>,
    nexthops: Option<Vec<RawHop<'de>>>,
}

#[derive(Default)]
struct RawHop<'de> {
    gateway: Option<Scalar<'de>>,
    via: Option<Scalar<'de>>,
    dev: Option<Scalar<'de>>,
}

impl<'de> Deserialize<'de> for RawRoute<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRoute<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a route object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRoute<'de>, A::Error> {
                let mut r = RawRoute::default();
                while let Some(k) = map.next_key::<KeyName>()? {
                    match &*k.0 {
                        "type" => r.kind = Some(map.next_value()?),
                        "dst" | "from" | "tos" => {
                            let v: Scalar<'de> = map.next_value()?;
                            let slot = match &*k.0 {
                                "dst" => &mut r.dst,
                                "from" => &mut r.from,
                                _ => &mut r.tos,
                            };
                            slot.get_or_insert(v);
                        }
                        "gateway" => r.gateway = Some(map.next_value()?),
                        "via" => r.via = Some(map.next_value()?),
                        "dev" => r.dev = Some(map.next_value()?),
                        "table" => r.table = Some(map.next_value()?),
                        "protocol" => r.protocol = Some(map.next_value()?),
                        "metric" => r.metric = Some(map.next_value()?),
                        "nhid" => r.nhid = Some(map.next_value()?),
                        "flags" => r.flags = map.next_value::<Strings>()?.0,
                        "nexthops" => r.nexthops = Some(map.next_value::<Hops>()?.0),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

fn addr(s: &Option<Scalar<'_>>) -> Option<IpAddr> {
    s.as_ref().and_then(|s| IpAddr::from_str(&s.0).ok())
}

fn text(s: &Option<Scalar<'_>>) -> Option<String> {
    s.as_ref()
        .filter(|s| !s.0.is_empty())
        .map(|s| s.0.to_string())
}

fn number(s: &Option<Scalar<'_>>) -> Option<u64> {
    let s = &s.as_ref()?.0;
    if let Some(hex) = s.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else {
        s.parse().ok()
    }
}

impl RawHop<'_> {
    fn into_hop(self) -> Hop {
        Hop {
            gateway: addr(&self.gateway).or_else(|| addr(&self.via)),
            dev: text(&self.dev),
        }
    }
}

impl RawRoute<'_> {
    /// Converts to a [`Route`]. Refuses (with the reason) an object without a destination, and
    /// one whose metric, TOS or source prefix (parts of the kernel's key, which decide what a
    /// `del` or `replace` hits) cannot be read: every route `ip` prints has readable ones.
    fn into_route(mut self) -> Result<Route, String> {
        let dst_text = text(&self.dst).ok_or("has no `dst`")?;
        let next_hop = self.next_hop();
        let dst = parse_dst(&dst_text, gateway_family(&next_hop));
        let (kind, table, protocol) = self.names();
        Ok(Route {
            dst,
            table,
            kind,
            protocol,
            metric: self.metric()?,
            tos: self.tos()?,
            from: self.source()?,
            next_hop,
            nhid: self.nhid()?,
            flags: self.flags,
        })
    }

    /// The next hop: the listed `nexthops` of a multipath route, or the route's own gateway.
    fn next_hop(&mut self) -> NextHop {
        match self.nexthops.take() {
            Some(hops) if !hops.is_empty() => {
                NextHop::Multipath(hops.into_iter().map(RawHop::into_hop).collect())
            }
            _ => NextHop::Single(Hop {
                gateway: addr(&self.gateway).or_else(|| addr(&self.via)),
                dev: text(&self.dev),
            }),
        }
    }

    /// The type, table and protocol, as numbers or names. What cannot be read becomes a value
    /// routectl never owns: a protocol we cannot read is foreign (u8 0, "unspec", is never
    /// owned).
    fn names(&self) -> (u8, u32, u8) {
        let kind = match &self.kind {
            None => TYPE_UNICAST,
            Some(s) => {
                s.0.parse()
                    .ok()
                    .or_else(|| type_number(&s.0))
                    .unwrap_or(u8::MAX)
            }
        };
        let table = match &self.table {
            None => TABLE_MAIN,
            Some(s) => {
                s.0.parse()
                    .ok()
                    .or_else(|| table_number(&s.0))
                    .unwrap_or(u32::MAX)
            }
        };
        let protocol = match &self.protocol {
            None => 3,
            Some(s) => {
                s.0.parse()
                    .ok()
                    .or_else(|| protocol_number(&s.0))
                    .unwrap_or(0)
            }
        };
        (kind, table, protocol)
    }

    /// The metric (part of the kernel's key): refused when present but unreadable.
    fn metric(&self) -> Result<u32, String> {
        match &self.metric {
            None => Ok(0),
            Some(m) => number(&self.metric)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("has a metric `{}` that is not a 32-bit number", m.0)),
        }
    }

    /// The TOS (part of the kernel's key): refused when present but unreadable.
    fn tos(&self) -> Result<u8, String> {
        match &self.tos {
            None => Ok(0),
            Some(t) => number(&self.tos)
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| format!("has a tos `{}` that is not an 8-bit number", t.0)),
        }
    }

    /// The source prefix (part of the kernel's key): refused when present but not a prefix.
    fn source(&self) -> Result<Option<IpNet>, String> {
        match text(&self.from) {
            None => Ok(None),
            Some(f) => match parse_dst(&f, None) {
                Destination::Net(n) => Ok(Some(n)),
                _ => Err(format!("has a `from` `{f}` that is not a prefix")),
            },
        }
    }

    /// The nexthop object id: refused when present but unreadable.
    fn nhid(&self) -> Result<Option<u32>, String> {
        match &self.nhid {
            None => Ok(None),
            Some(n) => number(&self.nhid)
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("has an nhid `{}` that is not a 32-bit number", n.0)),
        }
    }
}

/// The address family of a next hop's gateway(s), which decides what `default` means.
fn gateway_family(next_hop: &NextHop) -> Option<Family> {
    match next_hop {
        NextHop::Single(h) => h.gateway.as_ref().map(Family::of_addr),
        NextHop::Multipath(hs) => hs
            .iter()
            .find_map(|h| h.gateway.as_ref().map(Family::of_addr)),
    }
}

/// `default`, a bare address (a host route) or `addr/len`.
fn parse_dst(s: &str, family: Option<Family>) -> Destination {
    if s == "default" {
        return match family {
            // ipnet's default prefixes are 0.0.0.0/0 and ::/0.
            Some(Family::Ipv4) => Destination::Net(IpNet::V4(Ipv4Net::default())),
            Some(Family::Ipv6) => Destination::Net(IpNet::V6(Ipv6Net::default())),
            None => Destination::Default,
        };
    }
    if let Ok(n) = IpNet::from_str(s) {
        return Destination::Net(n.trunc());
    }
    if let Ok(a) = IpAddr::from_str(s) {
        return Destination::Net(IpNet::from(a));
    }
    Destination::Other(s.to_string())
}

// ---------------------------------------------------------------------------------------------
// `ip -j addr show`: interfaces and their addresses.

/// Splits a stream of JSON values (what `ip -batch` prints, one array per `show` line) into the
/// bytes of each value, without their surrounding whitespace, so each can be parsed by its own
/// parser or stored exactly as a lone `ip` command would have printed it.
pub fn split_stream(output: &[u8]) -> Result<Vec<&[u8]>, ParseError> {
    if output.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let mut parts = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(output).into_iter::<IgnoredAny>();
    let mut start = 0;
    while let Some(item) = stream.next() {
        item.map_err(|e| invalid(output, e.to_string()))?;
        let end = stream.byte_offset();
        parts.push(output[start..end].trim_ascii());
        start = end;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from the LXD lab (iproute2 6.1): `ip -N -d -j -batch -` with the lines
    /// `route show table all` and `addr show`, and the lone route read of the same node.
    use crate::core::link::SCOPE_UNIVERSE;
    const LAB_SHOW: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lab/worker-0.show.json"
    ));
    const LAB_ROUTES: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lab/worker-0.route.json"
    ));

    #[test]
    fn splits_a_batch_stream_into_what_lone_commands_print() {
        let parts = split_stream(LAB_SHOW).unwrap();
        assert_eq!(parts.len(), 2);
        // The route part is byte for byte what `ip -N -d -j route show table all` printed.
        assert_eq!([parts[0], b"\n"].concat(), LAB_ROUTES);
        assert_eq!(
            parse_routes(parts[0]).unwrap(),
            parse_routes(LAB_ROUTES).unwrap()
        );
        assert_eq!(split_stream(b" [] \n [1]\n").unwrap(), [&b"[]"[..], b"[1]"]);
        assert_eq!(split_stream(b"\n"), Err(ParseError::Empty));
        assert!(matches!(
            split_stream(b"[] [{"),
            Err(ParseError::Invalid { .. })
        ));
    }

    #[test]
    fn parses_addresses_from_the_lab() {
        let parts = split_stream(LAB_SHOW).unwrap();
        let links = parse_addrs(parts[1]).unwrap();
        let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lo", "cnio0", "eth1"]);
        let eth1 = &links[2];
        assert_eq!(eth1.addresses[0].to_string(), "10.0.2.20/24");
        assert!(eth1.addresses[0].is_global());
        assert!(!eth1.addresses[1].is_global(), "fe80:: is scope link");
        assert_eq!(
            links[1].addresses[0].network().unwrap().to_string(),
            "10.1.0.0/24"
        );
        assert!(
            !links[0].addresses[0].is_global(),
            "127.0.0.1 is scope host"
        );
    }

    #[test]
    fn address_parsing_is_tolerant_but_refuses_non_json() {
        let links = parse_addrs(
            br#"[{"ifname":"eth1","addr_info":[{"local":"fd00::20","prefixlen":64,"scope":"global"},{"local":"bogus","prefixlen":8},{"prefixlen":24}]},{"noname":1},{"ifname":"x","addr_info":"weird"}]"#,
        )
        .unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].addresses.len(), 1);
        assert_eq!(links[0].addresses[0].scope, SCOPE_UNIVERSE);
        assert!(links[1].addresses.is_empty());
        assert_eq!(parse_addrs(b""), Err(ParseError::Empty));
        assert!(matches!(
            parse_addrs(b"{}"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_addrs(b"[{"),
            Err(ParseError::Invalid { .. })
        ));
    }

    /// Captured from a real kernel: `ip -N -d -j route show table all` (iproute2 6.1).
    const NUMERIC: &str = r#"[{"type":"1","dst":"default","gateway":"10.0.2.1","dev":"br0","table":"254","protocol":"3","scope":"0","flags":[]},{"type":"1","dst":"10.0.2.0/24","dev":"br0","table":"254","protocol":"2","scope":"253","prefsrc":"10.0.2.20","flags":[]},{"type":"1","dst":"10.1.1.0/24","gateway":"10.0.2.21","dev":"br0","table":"254","protocol":"211","scope":"0","flags":[]},{"type":"1","dst":"10.1.2.0/24","gateway":"10.0.2.22","dev":"br0","table":"254","protocol":"186","scope":"0","metric":5,"flags":[]},{"type":"6","dst":"10.8.0.0/24","table":"254","protocol":"3","scope":"0","flags":[]},{"type":"1","dst":"10.9.0.0/24","table":"254","protocol":"3","scope":"0","flags":[],"nexthops":[{"gateway":"10.0.2.21","dev":"br0","weight":1,"flags":[]},{"gateway":"10.0.2.22","dev":"br0","weight":1,"flags":[]}]},{"type":"2","dst":"10.0.2.20","dev":"br0","table":"255","protocol":"2","scope":"254","prefsrc":"10.0.2.20","flags":[]},{"type":"1","dst":"default","gateway":"fd00::1","dev":"br0","table":"254","protocol":"3","scope":"0","metric":1024,"flags":[],"pref":"medium"},{"type":"1","dst":"fd01:1::/64","gateway":"fd00::21","dev":"br0","table":"254","protocol":"211","scope":"0","metric":1024,"flags":[],"pref":"medium"},{"type":"2","dst":"::1","dev":"lo","table":"255","protocol":"2","scope":"0","metric":0,"flags":[],"pref":"medium"}]"#;

    #[test]
    fn parses_numeric_output() {
        let routes = parse_routes(NUMERIC.as_bytes()).unwrap();
        assert_eq!(routes.len(), 10);
        assert_eq!(routes[0].dst.to_string(), "default");
        assert_eq!(routes[0].family(), Some(Family::Ipv4));
        assert_eq!(routes[2].protocol, 211);
        assert_eq!(routes[2].gateway().unwrap().to_string(), "10.0.2.21");
        assert_eq!(routes[3].metric, 5);
        assert_eq!(routes[4].kind, 6);
        assert!(matches!(routes[5].next_hop, NextHop::Multipath(ref h) if h.len() == 2));
        assert_eq!(routes[6].table, 255);
        assert_eq!(routes[6].dst.to_string(), "10.0.2.20/32");
        assert_eq!(routes[7].family(), Some(Family::Ipv6));
        assert_eq!(routes[9].dst.to_string(), "::1/128");
        assert_eq!(main_table(routes).len(), 8);
    }

    #[test]
    fn names_without_numeric_flag_and_omitted_defaults() {
        let out = br#"[{"dst":"10.1.1.0/24","gateway":"10.0.2.21","dev":"eth1","protocol":"boot","flags":[]},
                       {"type":"blackhole","dst":"10.5.0.0/16","table":"main","protocol":"static"},
                       {"dst":"10.6.0.0/16","protocol":"my-daemon","table":"custom"}]"#;
        let r = parse_routes(out).unwrap();
        assert_eq!(
            (r[0].table, r[0].kind, r[0].protocol),
            (TABLE_MAIN, TYPE_UNICAST, 3)
        );
        assert_eq!((r[1].kind, r[1].protocol), (6, 4));
        assert_eq!(
            r[2].protocol, 0,
            "an unknown protocol name is never taken as routectl's"
        );
        assert_eq!(
            r[2].table,
            u32::MAX,
            "an unknown table name is never taken as main"
        );
    }

    #[test]
    fn duplicate_keys_unknown_keys_and_cross_family_via() {
        let out = br#"[{"dst":"10.1.0.0/24","encap":{"x":1},"dst":"10.1.0.0/24","protocol":"211",
                        "via":{"family":"inet6","host":"fe80::1"},"dev":"eth1","weird":[1,{"a":2}]}]"#;
        let r = parse_routes(out).unwrap();
        assert_eq!(r[0].gateway().unwrap().to_string(), "fe80::1");
        assert_eq!(r[0].dst.to_string(), "10.1.0.0/24");
    }

    #[test]
    fn refuses_what_is_not_a_table() {
        assert_eq!(parse_routes(b""), Err(ParseError::Empty));
        assert_eq!(parse_routes(b"  \n"), Err(ParseError::Empty));
        for bad in [
            &b"["[..],
            b"[{\"dst\":",
            b"garbage",
            b"{}",
            b"[1,2]",
            b"[{\"dst\":\"x\"}] [",
        ] {
            assert!(
                matches!(parse_routes(bad), Err(ParseError::Invalid { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(parse_routes(b"[]"), Ok(vec![]));
    }

    #[test]
    fn encap_keys_do_not_replace_the_route_s_dst_and_tos() {
        // Regression: captured from iproute2 6.1 (`ip route add 10.1.50.0/24 encap ip id 10 dst
        // 10.0.2.99 dev eth1 proto 211`): the encap's `dst` and `tos` follow the route's own.
        // The last `dst` used to win, so this owned route read as 10.0.2.99/32.
        let out = br#"[{"type":"1","dst":"10.1.50.0/24","encap":"ip","id":10,"src":"0.0.0.0","dst":"10.0.2.99","ttl":0,"tos":0,"dev":"eth1","table":"254","protocol":"211","scope":"253","flags":[]},
                       {"type":"1","dst":"10.1.51.0/24","tos":"0x10","encap":"ip","id":1,"dst":"10.0.2.98","tos":0,"dev":"eth1","table":"254","protocol":"211","scope":"253","flags":[]}]"#;
        let r = parse_routes(out).unwrap();
        assert_eq!(r[0].dst.to_string(), "10.1.50.0/24");
        assert_eq!((r[0].tos, r[0].table, r[0].protocol), (0, TABLE_MAIN, 211));
        assert_eq!(r[0].dev(), Some("eth1"));
        assert_eq!(r[1].dst.to_string(), "10.1.51.0/24");
        assert_eq!(r[1].tos, 0x10);
    }

    #[test]
    fn unreadable_key_fields_are_refused_not_taken_for_zero() {
        // Regression: a metric or tos that could not be read (a string, a number too large, an
        // object) was taken as 0, and an unreadable `from` as none, so a route was planned
        // under another kernel key (and a `del … metric 0` matches any metric).
        for bad in [
            &br#"[{"dst":"10.1.0.0/24","protocol":"211","metric":"x"}]"#[..],
            br#"[{"dst":"10.1.0.0/24","protocol":"211","metric":4294967296}]"#,
            br#"[{"dst":"10.1.0.0/24","protocol":"211","metric":-1}]"#,
            br#"[{"dst":"10.1.0.0/24","protocol":"211","metric":1.5}]"#,
            br#"[{"dst":"10.1.0.0/24","protocol":"211","metric":{"a":1}}]"#,
            br#"[{"dst":"10.1.0.0/24","protocol":"211","tos":"0x100"}]"#,
            br#"[{"dst":"10.1.0.0/24","protocol":"211","tos":"high"}]"#,
            br#"[{"dst":"fd01::/64","protocol":"211","from":"somewhere"}]"#,
        ] {
            let e = parse_routes(bad).unwrap_err();
            assert!(
                e.to_string().contains("route object 1 of table 1 has a"),
                "{e}"
            );
        }
        let ok = parse_routes(br#"[{"dst":"10.1.0.0/24","metric":"7","tos":"0x10"}]"#).unwrap();
        assert_eq!((ok[0].metric, ok[0].tos), (7, 0x10));
    }

    #[test]
    fn objects_without_a_destination_are_refused_not_dropped() {
        // Regression: `[{}]` and `[{"dst":null}]` used to read as an empty table, and a route
        // object without `dst` among real ones was silently dropped.
        for bad in [
            &b"[{}]"[..],
            b"[{\"dst\":null}]",
            b"[{\"dst\":\"\"}]",
            b"[{\"destination\":\"10.1.0.0/24\",\"protocol\":\"211\"}]",
            b"[{\"dst\":\"10.1.0.0/24\"},{\"gateway\":\"10.0.2.1\"}]",
            b"[]\n[{}]",
        ] {
            let e = parse_stream(bad).unwrap_err();
            assert!(e.to_string().contains("has no `dst`"), "{e}");
        }
    }

    #[test]
    fn pre_5_5_invalid_multipath_json_is_refused() {
        // iproute2 before 5.5 printed nexthops without separating commas.
        let out = br#"[{"dst":"10.9.0.0/24","nexthops":[{"gateway":"10.0.2.21","dev":"eth1"}{"gateway":"10.0.2.22"}]}]"#;
        assert!(matches!(parse_routes(out), Err(ParseError::Invalid { .. })));
    }

    #[test]
    fn batch_stream() {
        let out = b"[]\n[{\"dst\":\"10.1.0.0/24\",\"protocol\":\"211\"}]\n";
        let s = parse_stream(out).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].len(), 1);
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("ip utility, iproute2-6.1.0, libbpf 1.1.2"),
            Some(IpVersion::Release(6, 1))
        );
        assert_eq!(
            parse_version("ip utility, iproute2-ss190107"),
            Some(IpVersion::Snapshot(190107))
        );
        assert_eq!(
            parse_version("ip utility, iproute2-5.5.0"),
            Some(IpVersion::Release(5, 5))
        );
        assert!(!IpVersion::Release(5, 4).is_supported());
        assert!(IpVersion::Release(5, 5).is_supported());
        assert!(!IpVersion::Snapshot(190107).is_supported());
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn batch_failures_from_stderr() {
        let err = "RTNETLINK answers: File exists\nCommand failed -:2\nError: Nexthop has invalid gateway.\nCommand failed -:5\n";
        let f = batch_failures(err);
        assert_eq!(
            f,
            vec![
                BatchFailure {
                    line: 2,
                    message: "RTNETLINK answers: File exists".into()
                },
                BatchFailure {
                    line: 5,
                    message: "Error: Nexthop has invalid gateway.".into()
                },
            ]
        );
    }
}
