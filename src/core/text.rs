//! Small text helpers every renderer shares: escaping strings that came from nodes, and
//! counting nouns.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A string read from a node (a device name, a flag, stderr) made safe to print on one line:
/// control characters (newline, ESC, DEL, C1 controls) and the backslash are written as Rust-style
/// escapes (`\n`, `\u{1b}`, `\\`), so such a string can never forge extra lines or terminal
/// sequences in text or Markdown output. Ordinary text is returned as it is.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `1 node`, `2 nodes`: a count with its noun, singular for exactly one.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// `node` or `nodes` for a count.
pub fn nodes(n: usize) -> String {
    count(n, "node", "nodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("eth1"), "eth1");
        assert_eq!(escape("eth1\nroute del x"), "eth1\\nroute del x");
        assert_eq!(escape("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("\u{7f}\u{85}"), "\\u{7f}\\u{85}");
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(nodes(1), "1 node");
        assert_eq!(nodes(0), "0 nodes");
        assert_eq!(nodes(2), "2 nodes");
    }
}
