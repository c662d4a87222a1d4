//! The tolerant JSON pieces of a route object: a scalar of any JSON type, lists that skip what
//! they do not know, next hops, map keys borrowed where possible. Anything unexpected is data
//! to ignore, never an error.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::RawHop;

/// A JSON scalar, whatever its JSON type; objects such as `via` keep their `host`.
#[derive(Debug, Clone)]
pub(super) struct Scalar<'a>(pub(super) Cow<'a, str>);

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Cow::Borrowed("")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(Cow::Borrowed("")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                // `"via": {"family": "inet6", "host": "fe80::1"}`: keep the host.
                let mut host = Cow::Borrowed("");
                while let Some(k) = map.next_key::<String>()? {
                    if k == "host" {
                        host = map.next_value::<Scalar<'de>>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Scalar(host))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of strings; anything else is ignored.
pub(super) struct Strings(pub(super) Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Scalar<'de>>()? {
                    if !s.0.is_empty() {
                        v.push(s.0.into_owned());
                    }
                }
                Ok(Strings(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Strings, E> {
                Ok(Strings(vec![v.to_string()]))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strings, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Strings(Vec::new()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Strings, E> {
                Ok(Strings(Vec::new()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Strings, E> {
                Ok(Strings(Vec::new()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Strings, E> {
                Ok(Strings(Vec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Strings, E> {
                Ok(Strings(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of next-hop objects; anything else is ignored.
pub(super) struct Hops<'de>(pub(super) Vec<RawHop<'de>>);

impl<'de> Deserialize<'de> for Hops<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Hops<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of next hops")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hops<'de>, A::Error> {
                let mut v = Vec::new();
                while let Some(h) = seq.next_element::<RawHopOrOther>()? {
                    if let Some(h) = h.0 {
                        v.push(h);
                    }
                }
                Ok(Hops(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hops<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Hops(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Hops<'de>, E> {
                Ok(Hops(Vec::new()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Hops<'de>, E> {
                Ok(Hops(Vec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Hops<'de>, E> {
                Ok(Hops(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) struct RawHopOrOther<'de>(pub(super) Option<RawHop<'de>>);

impl<'de> Deserialize<'de> for RawHopOrOther<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHopOrOther<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a next hop")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawHopOrOther<'de>, A::Error> {
                let mut h = RawHop::default();
                while let Some(k) = map.next_key::<KeyName>()? {
                    match &*k.0 {
                        "gateway" => h.gateway = Some(map.next_value()?),
                        "via" => h.via = Some(map.next_value()?),
                        "dev" => h.dev = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(RawHopOrOther(Some(h)))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawHopOrOther<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawHopOrOther(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<RawHopOrOther<'de>, E> {
                Ok(RawHopOrOther(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawHopOrOther<'de>, E> {
                Ok(RawHopOrOther(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawHopOrOther<'de>, E> {
                Ok(RawHopOrOther(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A map key, borrowed when possible.
pub(super) struct KeyName<'a>(pub(super) Cow<'a, str>);

impl<'de> Deserialize<'de> for KeyName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<KeyName<'de>, E> {
                Ok(KeyName(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyName<'de>, E> {
                Ok(KeyName(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}
