//! Small text helpers every renderer shares: escaping strings that came from nodes, capping
//! long values and lists in messages, fencing data in Markdown, and counting nouns.

use std::borrow::Cow;
use std::fmt::Write as _;

/// How many bytes of one value a message echoes ([`cap`]).
pub const VALUE_CAP: usize = 100;

/// How many items of a list a message echoes ([`list`]).
pub const LIST_CAP: usize = 10;

/// The most of one message [`cap_quoted`] keeps, whatever it quotes.
pub const MESSAGE_CAP: usize = 2000;

/// Whether a character must never reach a terminal or a document raw: control characters (C0,
/// DEL, C1), the Unicode bidirectional controls (which reorder what a reader sees) and the
/// Unicode line and paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// A string read from a node (a device name, a record's field, stderr, a file's line) made safe
/// to print on one line: every unsafe character (see above: newline, carriage return, ESC, DEL,
/// C1 controls, bidi overrides) is written as a visible escape (`\n`, `\r`, `\t`, `\u{1b}`,
/// `\u{202e}`), so such a string can never forge extra lines, rewrite a line or send terminal
/// sequences in text or Markdown output. Everything else, backslashes included, is kept, so
/// escaping twice changes nothing: a message that quotes an escaped value may be escaped
/// again where it is printed. Ordinary text is returned as it is. (JSON output carries the
/// exact value, escaped by JSON itself.)
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape`] for text of several lines made by routectl (a message that lists problems one a
/// line): its line breaks are kept, everything else unsafe in it is escaped.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(escape).collect::<Vec<_>>().join("\n"))
}

/// A value as a message echoes it: at most [`VALUE_CAP`] bytes (cut at a character boundary),
/// followed by how long it was (`… (1048576 bytes)`) when it was cut.
pub fn cap(s: &str) -> Cow<'_, str> {
    cap_at(s, VALUE_CAP)
}

/// [`cap`] at `max` bytes.
fn cap_at(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let end = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    let head = s.get(..end).unwrap_or_default();
    Cow::Owned(format!("{head}… ({} bytes)", s.len()))
}

/// A message that quotes values in backticks (`` node name `NAME` is not valid ``) with each
/// quoted value [`cap`]ped, and the whole at most [`MESSAGE_CAP`] bytes: the bound of a message
/// built from values of any length (a problem of a topology file quotes what the file says).
pub fn cap_quoted(message: &str) -> Cow<'_, str> {
    let parts: Vec<&str> = message.split('`').collect();
    let quoted_ok = parts
        .iter()
        .skip(1)
        .step_by(2)
        .all(|p| p.len() <= VALUE_CAP);
    if quoted_ok && message.len() <= MESSAGE_CAP {
        return Cow::Borrowed(message);
    }
    let capped: Vec<Cow<'_, str>> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                cap(p)
            } else {
                Cow::Borrowed(*p)
            }
        })
        .collect();
    let joined = capped.join("`");
    Cow::Owned(cap_at(&joined, MESSAGE_CAP).into_owned())
}

/// A message quoting values as it is printed: [`cap_quoted`], then [`escape`]d.
pub fn shown_message(message: &str) -> String {
    escape(&cap_quoted(message)).into_owned()
}

/// A value from a node or from the user as a message shows it: [`cap`]ped, then [`escape`]d.
pub fn shown(s: &str) -> Cow<'_, str> {
    match cap(s) {
        Cow::Borrowed(b) => escape(b),
        Cow::Owned(o) => Cow::Owned(escape(&o).into_owned()),
    }
}

/// A list of names as a message shows it: the first [`LIST_CAP`], each [`shown`] (in
/// backticks when `quote`), joined with `, `, then `and N more` for the rest.
pub fn list<S: AsRef<str>>(items: &[S], quote: bool) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().take(LIST_CAP).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let item = shown(item.as_ref());
        if quote {
            let _ = write!(out, "`{item}`");
        } else {
            out.push_str(&item);
        }
    }
    if items.len() > LIST_CAP {
        let _ = write!(out, " and {} more", items.len() - LIST_CAP);
    }
    out
}

/// The Markdown code fence for `content`: backticks, one more than the longest run of
/// backticks in it and at least three, so that nothing in the content can close it.
pub fn fence(content: &str) -> String {
    let longest = content.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

/// `content` in a Markdown code block (`info` after the opening fence, such as `diff`), its
/// lines [`escape`]d and its fence one it cannot close ([`fence`]). Ends with a newline.
pub fn code_block(info: &str, content: &str) -> String {
    let body = escape_lines(content.strip_suffix('\n').unwrap_or(content));
    let f = fence(&body);
    format!("{f}{info}\n{body}\n{f}\n")
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
        assert_eq!(escape("back\\slash"), "back\\slash");
        assert_eq!(escape("\u{7f}\u{85}"), "\\u{7f}\\u{85}");
        assert_eq!(escape("a\rb\tc"), "a\\rb\\tc");
        assert_eq!(escape("x\u{202e}y\u{2066}z"), "x\\u{202e}y\\u{2066}z");
        assert_eq!(escape("\u{9b}2K"), "\\u{9b}2K");
        // Idempotent: what is printed escaped can be escaped again where it is printed.
        let hostile = "2026\n\u{1b}[2K\rPlan: 0 to add\n```\n# owned";
        assert_eq!(escape(&escape(hostile)), escape(hostile));
        assert!(!escape(hostile).chars().any(is_unsafe));
        assert_eq!(escape("café ✓"), "café ✓");
    }

    #[test]
    fn escape_lines_keeps_line_breaks_only() {
        assert_eq!(escape_lines("a\nb"), "a\nb");
        assert_eq!(escape_lines("a\r\nb\u{1b}"), "a\\r\nb\\u{1b}");
    }

    #[test]
    fn long_values_are_cut_and_say_how_long_they_were() {
        assert_eq!(cap("worker-0"), "worker-0");
        let v = "x".repeat(VALUE_CAP);
        assert_eq!(cap(&v), v);
        let huge = "a".repeat(1 << 20);
        assert_eq!(
            cap(&huge),
            format!("{}… (1048576 bytes)", "a".repeat(VALUE_CAP))
        );
        // Never cut inside a character.
        let wide = "é".repeat(VALUE_CAP);
        let c = cap(&wide);
        assert!(c.starts_with(&"é".repeat(VALUE_CAP / 2)), "{c}");
        assert!(c.ends_with(&format!("… ({} bytes)", 2 * VALUE_CAP)), "{c}");
        // shown: cut first, then escaped.
        let newlines = "\n".repeat(1000);
        assert_eq!(
            shown(&newlines),
            format!("{}… (1000 bytes)", "\\n".repeat(VALUE_CAP))
        );
    }

    #[test]
    fn quoted_values_are_cut_in_a_message() {
        let m = "node name `w0` is not valid: use `-`";
        assert_eq!(cap_quoted(m), m);
        let huge = "x".repeat(1 << 20);
        let m = format!("node `{huge}`: internal_ip `{huge}` is not an address");
        let x100 = "x".repeat(VALUE_CAP);
        assert_eq!(
            cap_quoted(&m),
            format!(
                "node `{x100}… (1048576 bytes)`: internal_ip `{x100}… (1048576 bytes)` is not \
                 an address"
            )
        );
        // A value holding a backtick cannot unbalance the quotes into an unbounded message.
        let m = format!("instance `a`{huge}` is not valid");
        assert!(
            cap_quoted(&m).len() <= MESSAGE_CAP + 40,
            "{}",
            cap_quoted(&m).len()
        );
    }

    #[test]
    fn long_lists_are_cut_and_say_how_many_were_left_out() {
        assert_eq!(list(&["a", "b"], true), "`a`, `b`");
        let names: Vec<String> = (0..3000).map(|i| format!("n{i}")).collect();
        let l = list(&names, false);
        assert!(l.starts_with("n0, n1, "), "{l}");
        assert!(l.ends_with("n9 and 2990 more"), "{l}");
        assert_eq!(
            list(&names[..LIST_CAP], false).matches(", ").count(),
            LIST_CAP - 1
        );
        assert!(!list(&names[..LIST_CAP], false).contains("more"));
    }

    #[test]
    fn fences_cannot_be_closed_by_their_content() {
        assert_eq!(fence("plain"), "```");
        assert_eq!(fence("a ``` b"), "````");
        assert_eq!(fence("``````"), "```````");
        let block = code_block("diff", "+ x\n```\n# forged\u{1b}\n");
        assert_eq!(block, "````diff\n+ x\n```\n# forged\\u{1b}\n````\n");
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(nodes(1), "1 node");
        assert_eq!(nodes(0), "0 nodes");
        assert_eq!(nodes(2), "2 nodes");
    }
}
