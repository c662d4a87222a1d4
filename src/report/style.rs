//! Colour, in one place. The styles are anstyle values; whether to use them is anstream's
//! decision (`--color`, `NO_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE`, `TERM=dumb`, a terminal),
//! made per stream by [`Style::for_stdout`] and [`Style::for_stderr`].

use anstyle::{AnsiColor, Effects};

/// Colours for one output stream, or none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Whether to emit colour codes.
    pub color: bool,
}

impl Style {
    /// The style for standard output under `choice` (`Auto` asks anstream about the stream and
    /// the environment).
    pub fn for_stdout(choice: anstream::ColorChoice) -> Style {
        Style::resolved(anstream::AutoStream::new(std::io::stdout(), choice).current_choice())
    }

    /// The style for standard error under `choice`.
    pub fn for_stderr(choice: anstream::ColorChoice) -> Style {
        Style::resolved(anstream::AutoStream::new(std::io::stderr(), choice).current_choice())
    }

    fn resolved(choice: anstream::ColorChoice) -> Style {
        Style {
            color: choice != anstream::ColorChoice::Never,
        }
    }

    fn paint(&self, style: anstyle::Style, s: &str) -> String {
        if self.color {
            format!("{}{s}{}", style.render(), style.render_reset())
        } else {
            s.to_string()
        }
    }

    fn fg(&self, color: AnsiColor, s: &str) -> String {
        self.paint(anstyle::Style::new().fg_color(Some(color.into())), s)
    }

    /// Additions, success.
    pub fn green(&self, s: &str) -> String {
        self.fg(AnsiColor::Green, s)
    }

    /// Deletions, errors.
    pub fn red(&self, s: &str) -> String {
        self.fg(AnsiColor::Red, s)
    }

    /// Replacements, warnings.
    pub fn yellow(&self, s: &str) -> String {
        self.fg(AnsiColor::Yellow, s)
    }

    /// Conflicts.
    pub fn magenta(&self, s: &str) -> String {
        self.fg(AnsiColor::Magenta, s)
    }

    /// Names and summary lines.
    pub fn bold(&self, s: &str) -> String {
        self.paint(anstyle::Style::new().effects(Effects::BOLD), s)
    }

    /// Notes.
    pub fn dim(&self, s: &str) -> String {
        self.paint(anstyle::Style::new().effects(Effects::DIMMED), s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_only_with_colour() {
        let on = Style { color: true };
        assert_eq!(on.red("-"), "\x1b[31m-\x1b[0m");
        assert_eq!(on.green("+"), "\x1b[32m+\x1b[0m");
        assert_eq!(on.yellow("~"), "\x1b[33m~\x1b[0m");
        assert_eq!(on.magenta("!"), "\x1b[35m!\x1b[0m");
        assert_eq!(on.bold("worker-0"), "\x1b[1mworker-0\x1b[0m");
        assert_eq!(on.dim("x"), "\x1b[2mx\x1b[0m");
        let off = Style::default();
        assert_eq!(off.bold(&off.red("x")), "x");
    }
}
