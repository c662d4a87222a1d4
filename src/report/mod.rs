//! Every document routectl prints, one module per document, each in three formats: text for
//! people (with colour on a terminal, see [`style`]), JSON for programs (schema in
//! docs/json.md) and Markdown for merge-request comments.
//!
//! Each JSON document is a `#[derive(Serialize)]` type whose field order is the documented key
//! order; it borrows from the values it describes and is written straight to the output
//! ([`write_json`]), never built as a tree first.

use std::fmt::Display;
use std::io::{self, Write};

use serde::{Serialize, Serializer};

use crate::core::route::{AddrText, Route};
use crate::core::topology::Topology;

pub mod apply;
pub mod canary;
pub mod check;
pub mod plan;
pub mod reconcile;
pub mod show;
pub mod style;
pub mod validate;

pub use apply::{adoptable_note, canary_failed_text, report_json, report_json_with, report_text};
pub use canary::{canary_stopped, canary_text};
pub use check::{check_json, check_markdown, check_summary_line, check_text};
pub use plan::{
    HeldBackDoc, drift_note, held_back_docs, mark, plan_json, plan_markdown, plan_text,
    saved_plan_json, summary_line, write_plan_json, write_plan_text,
};
pub use show::{show_json, show_markdown, show_summary_line, show_text};
pub use style::Style;
pub use validate::validate_json;

/// The version of the JSON documents routectl prints other than `plan` and `apply` (see
/// docs/json.md for the policy).
pub const FORMAT_VERSION: u32 = 1;

pub use crate::core::saved::PLAN_FORMAT_VERSION;

/// How a JSON document is laid out: compact for programs, indented for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One line (with a final newline): what programs read.
    Compact,
    /// Two-space indentation, one key or element per line: what people read.
    Pretty,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs (documented, versioned).
    Json,
    /// For merge-request comments.
    Markdown,
}

/// Writes a document as JSON in `layout` with a final newline. A value that cannot be
/// serialised is an error like a failed write (`InvalidData`), never a silently different
/// document.
pub fn write_json<W: Write, T: Serialize + ?Sized>(
    mut w: W,
    doc: &T,
    layout: Layout,
) -> io::Result<()> {
    write_fragment(&mut w, doc, 0, layout)?;
    w.write_all(b"\n")
}

/// A value as it appears `depth` levels deep in a document written by [`write_json`] (no
/// final newline), for documents whose parts are rendered separately.
pub(crate) fn write_fragment<W: Write + ?Sized, T: Serialize + ?Sized>(
    mut w: &mut W,
    value: &T,
    depth: usize,
    layout: Layout,
) -> io::Result<()> {
    match layout {
        Layout::Compact => {
            let mut ser = serde_json::Serializer::with_formatter(&mut w, Compact);
            value.serialize(&mut ser).map_err(io::Error::from)
        }
        Layout::Pretty => {
            let formatter = Pretty {
                depth,
                has_value: false,
            };
            let mut ser = serde_json::Serializer::with_formatter(&mut w, formatter);
            value.serialize(&mut ser).map_err(io::Error::from)
        }
    }
}

/// Writes a JSON string's text with what serde_json leaves raw escaped as `\uXXXX`: DEL, the C1
/// controls and the Unicode bidi and line separators ([`crate::core::text::is_unsafe`]; C0
/// controls, quotes and backslashes reach here already escaped). The value read back is the
/// same; a document printed on a terminal cannot drive it.
fn write_escaped_fragment<W: ?Sized + Write>(w: &mut W, fragment: &str) -> io::Result<()> {
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        if crate::core::text::is_unsafe(c) {
            w.write_all(fragment.get(start..i).unwrap_or_default().as_bytes())?;
            write!(w, "\\u{:04x}", c as u32)?;
            start = i + c.len_utf8();
        }
    }
    w.write_all(fragment.get(start..).unwrap_or_default().as_bytes())
}

/// serde_json's compact format, with [`write_escaped_fragment`] (one-line documents: the log
/// lines of `reconcile --log-format json`).
struct Compact;

impl serde_json::ser::Formatter for Compact {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_escaped_fragment(w, fragment)
    }
}

/// A value as compact JSON on one line (no final newline), escaped as [`write_json`] escapes.
pub(crate) fn to_compact_json<T: Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, Compact);
    value.serialize(&mut ser).map_err(io::Error::from)?;
    Ok(buf)
}

/// serde_json's pretty format (two spaces), with each line break and its indentation written
/// at once rather than one write per level: a plan of a million changes has some fifteen
/// million of them.
#[derive(Default)]
struct Pretty {
    depth: usize,
    has_value: bool,
}

/// `,` then a line break and the indentation of 31 levels.
const BREAK: &[u8; 64] = b",\n                                                              ";

impl Pretty {
    fn line<W: ?Sized + Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        let start = usize::from(!comma);
        match BREAK.get(start..2 + 2 * self.depth) {
            Some(bytes) => w.write_all(bytes),
            None => {
                w.write_all(&BREAK[start..2])?;
                for _ in 0..self.depth {
                    w.write_all(b"  ")?;
                }
                Ok(())
            }
        }
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(w, false)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line(w, !first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(w, false)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line(w, !first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_escaped_fragment(w, fragment)
    }
}

/// A document as JSON text in `layout` with a final newline (for tests and benchmarks;
/// commands stream with [`write_json`]).
pub fn to_json_text<T: Serialize + ?Sized>(doc: &T, layout: Layout) -> io::Result<String> {
    let mut buf = Vec::new();
    write_json(&mut buf, doc, layout)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A value serialised as its `Display` text, written straight into the output.
pub(crate) struct Text<T>(pub T);

impl<T: Display> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// `"topology": {"path", "sha256"}`: which file a document describes.
#[derive(Serialize)]
pub(crate) struct TopologyDoc<'a> {
    path: &'a str,
    sha256: &'a str,
}

impl<'a> TopologyDoc<'a> {
    pub(crate) fn of(t: &'a Topology) -> Self {
        TopologyDoc {
            path: &t.source,
            sha256: &t.sha256,
        }
    }
}

/// `access`, `access_fallback` and `location` of a node (docs/json.md), flattened into the
/// node's entry; none of them when the node was not reached (a plan from a snapshot).
#[derive(Serialize)]
pub(crate) struct AccessDoc<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_fallback: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
}

impl<'a> AccessDoc<'a> {
    pub(crate) fn of(a: Option<&'a crate::core::access::NodeAccess>) -> Self {
        AccessDoc {
            access: a.map(|a| a.used_name()),
            access_fallback: a.filter(|a| a.elsewhere).map(|_| "elsewhere"),
            location: a.and_then(|a| a.location.as_deref()),
        }
    }
}

/// A route's fields where a route stands alone (`current`, `show`'s routes): `gateway` and
/// `dev` are left out when the route has none.
#[derive(Serialize)]
pub(crate) struct RouteDoc<'a> {
    dst: Text<&'a crate::core::route::Destination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<Text<AddrText>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev: Option<&'a str>,
    protocol: u8,
    metric: u32,
    route: Text<&'a Route>,
}

impl<'a> RouteDoc<'a> {
    pub(crate) fn of(r: &'a Route) -> Self {
        RouteDoc {
            dst: Text(&r.dst),
            gateway: r.gateway().map(|g| Text(AddrText(g))),
            dev: r.dev(),
            protocol: r.protocol,
            metric: r.metric,
            route: Text(r),
        }
    }
}

#[cfg(test)]
pub(crate) mod samples;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_a_terminal_would_act_on_and_reads_back_the_same() {
        let value = "a\u{1b}[2K\r\nb\u{7f}\u{9b}31m\u{202e}c\u{2028}\\\"é";
        for text in [
            String::from_utf8(to_compact_json(&value).unwrap()).unwrap(),
            to_json_text(&[value], Layout::Pretty).unwrap(),
            to_json_text(&[value], Layout::Compact).unwrap(),
        ] {
            assert!(
                !text
                    .chars()
                    .any(|c| c != '\n' && crate::core::text::is_unsafe(c)),
                "{text:?}"
            );
            assert!(
                text.contains(r#"a\u001b[2K\r\nb\u007f\u009b31m\u202ec\u2028\\\"é"#),
                "{text}"
            );
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            let back = back.as_array().map_or(&back, |a| &a[0]).clone();
            assert_eq!(back, value);
        }
    }

    #[test]
    fn layouts_are_serde_jsons() {
        let t = samples::fixtures::topology();
        let p = samples::sample::plan(&t, false);
        let mut deep = serde_json::json!(1);
        for _ in 0..40 {
            deep = serde_json::json!({ "a": [deep, [], {}], "b": [] });
        }
        let docs = [
            serde_json::to_value(plan_json(&p, &t)).unwrap(),
            deep,
            serde_json::json!([]),
            serde_json::json!({}),
        ];
        for doc in docs {
            let mut ours = Vec::new();
            write_json(&mut ours, &doc, Layout::Pretty).unwrap();
            let mut theirs = serde_json::to_vec_pretty(&doc).unwrap();
            theirs.push(b'\n');
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
            let mut ours = Vec::new();
            write_json(&mut ours, &doc, Layout::Compact).unwrap();
            let mut theirs = serde_json::to_vec(&doc).unwrap();
            theirs.push(b'\n');
            assert_eq!(ours, theirs);
        }
    }
}
