//! The topology file as TOML gives it: every key with its position in the file, nothing
//! checked yet beyond TOML's own syntax and the keys allowed ([`super::check`] does the rest).

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) cluster: Option<RawCluster>,
    #[serde(default)]
    pub(super) nodes: Vec<Spanned<RawNode>>,
}

/// `[cluster]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) interface: Option<Spanned<String>>,
    pub(super) transport: Option<Spanned<String>>,
    pub(super) pod_cidr: Option<Spanned<OneOrMany>>,
    pub(super) protocol: Option<Spanned<i64>>,
    pub(super) metric: Option<Spanned<i64>>,
    pub(super) ssh_config: Option<Spanned<String>>,
    pub(super) project: Option<Spanned<String>>,
    pub(super) access: Option<Spanned<String>>,
    pub(super) persist: Option<Spanned<String>>,
}

/// One `[[nodes]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) name: Spanned<String>,
    pub(super) internal_ip: Spanned<OneOrMany>,
    pub(super) pod_cidr: Option<Spanned<OneOrMany>>,
    pub(super) interface: Option<Spanned<String>>,
    pub(super) instance: Option<Spanned<String>>,
    pub(super) address: Option<Spanned<String>>,
    pub(super) project: Option<Spanned<String>>,
    pub(super) persist: Option<Spanned<String>>,
}

/// A string, or an array of strings (each with its own position).
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// Items of a one-or-many value with their spans (the whole value's span for a lone string).
pub(super) fn items(value: &Spanned<OneOrMany>) -> Vec<(String, Range<usize>)> {
    match value.get_ref() {
        OneOrMany::One(s) => vec![(s.clone(), value.span())],
        OneOrMany::Many(v) => v.iter().map(|s| (s.get_ref().clone(), s.span())).collect(),
    }
}
