//! Errors in the stack file, located: file, line, column, the line itself with the spot marked,
//! and what was expected there.

use std::{fmt, ops::Range, path::PathBuf};

/// One problem at one place in the stack file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range in the file; empty when the problem has no better place than the start.
    pub span: Range<usize>,
    pub message: String,
    /// What would have been accepted (`expected ...`), if that can be said.
    pub expected: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
            expected: None,
        }
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Diagnostic {
        self.expected = Some(expected.into());
        self
    }
}

/// The file the diagnostics are about.
#[derive(Clone, Debug)]
pub struct Source {
    /// As shown in messages (relative to the repository root when it is inside it).
    pub name: PathBuf,
    pub text: String,
}

impl Source {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line - 1).unwrap_or("")
    }

    /// `FILE:LINE:COL: error: MESSAGE`, the line with the span underlined, and `expected ...`.
    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        let (line, col) = self.line_col(diagnostic.span.start);
        let mut out = format!(
            "{}:{line}:{col}: error: {}\n",
            self.name.display(),
            diagnostic.message
        );
        let text = self.line_text(line);
        let gutter = line.to_string().len();
        // Underline to the span's end, or the end of the line if the span runs past it.
        let (end_line, end_col) = self.line_col(diagnostic.span.end.max(diagnostic.span.start));
        let width = if end_line == line {
            end_col.saturating_sub(col).max(1)
        } else {
            text.chars().count().saturating_sub(col - 1).max(1)
        };
        out.push_str(&format!("{:gutter$} |\n", ""));
        out.push_str(&format!("{line} | {text}\n"));
        out.push_str(&format!(
            "{:gutter$} | {}{}\n",
            "",
            " ".repeat(col - 1),
            "^".repeat(width)
        ));
        if let Some(expected) = &diagnostic.expected {
            out.push_str(&format!("{:gutter$} = expected {expected}\n", ""));
        }
        out
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Every problem found in a stack file, in file order; the error `stack::load` returns.
#[derive(Debug)]
pub struct Diagnostics {
    pub source: Source,
    pub items: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = self.items.clone();
        items.sort_by_key(|d| (d.span.start, d.message.clone()));
        items.dedup();
        let n = items.len();
        writeln!(
            f,
            "{n} error{} in {}:",
            if n == 1 { "" } else { "s" },
            self.source.name.display()
        )?;
        for item in &items {
            writeln!(f)?;
            write!(f, "{}", self.source.render(item))?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// "a, b and c" for lists in messages.
pub fn one_of<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    let names: Vec<String> = names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect();
    match names.len() {
        0 => "nothing (none are declared)".to_string(),
        1 => names[0].clone(),
        _ => format!("one of {}", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source {
            name: "deploy/stack.toml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn lines_and_columns_are_one_based() {
        let s = source("a = 1\nbb = \"é x\"\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(6), (2, 1));
        // Columns count characters, not bytes.
        let x = s.text.find('x').unwrap();
        assert_eq!(s.line_col(x), (2, 9));
    }

    #[test]
    fn render_points_at_the_span() {
        let s = source("[services.app]\ndepends_on = [\"dbb\"]\n");
        let start = s.text.find("\"dbb\"").unwrap();
        let d = Diagnostic::new(start..start + 5, "no service named `dbb`")
            .expected("one of `app`, `db`");
        let shown = s.render(&d);
        assert_eq!(
            shown,
            "deploy/stack.toml:2:15: error: no service named `dbb`\n  |\n2 | depends_on = [\"dbb\"]\n  |               ^^^^^\n  = expected one of `app`, `db`\n"
        );
    }

    #[test]
    fn one_of_reads_naturally() {
        assert_eq!(one_of(["a"]), "`a`");
        assert_eq!(one_of(["a", "b"]), "one of `a`, `b`");
        assert_eq!(one_of(Vec::<String>::new()), "nothing (none are declared)");
    }
}
