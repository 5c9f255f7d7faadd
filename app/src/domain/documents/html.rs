//! HTML to text that keeps the content and drops the chrome. A documentation page is mostly
//! navigation by size (a Sphinx page's sidebar, breadcrumbs, "view source", footer); passages made
//! of it crowd out the answer. So: when the page marks its main content (`<main>`, `role="main"`,
//! else a lone `<article>`), only that is kept; navigation, asides, footers, search forms and
//! scripts never are; headings come out as Markdown headings, so the chunker splits at sections.
//!
//! Hand-written rather than a DOM parser and a readability port (html5ever and friends): pages
//! are scanned once, tag by tag, with no tree built, and these rules are the whole of what is
//! wanted; a readability score would guess where the markup already says.

use super::budget::Checkpoint;
use super::extract::Rejection;

/// Elements whose content is never text: code and page furniture.
const NEVER_TEXT: &[&str] = &["script", "style", "noscript", "template", "svg", "head"];
/// Page chrome, by element.
const CHROME: &[&str] = &["nav", "aside", "footer", "form", "button", "dialog"];
/// Page chrome, by ARIA role.
const CHROME_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
    "menu",
    "menubar",
];
/// Elements that end a line of text.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "tr",
    "section",
    "article",
    "header",
    "blockquote",
    "pre",
    "table",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "title",
    "main",
    "hr",
];
/// Elements with no end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// One tag, as scanned.
struct Tag<'a> {
    name: String,
    closing: bool,
    /// What follows the name, up to `>`.
    attributes: &'a str,
}

impl Tag<'_> {
    fn attribute(&self, name: &str) -> Option<String> {
        let lower = self.attributes.to_ascii_lowercase();
        let mut from = 0;
        while let Some(at) = lower[from..].find(name) {
            let start = from + at;
            from = start + name.len();
            let before_ok = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
            let rest = lower[from..].trim_start();
            if !before_ok || !rest.starts_with('=') {
                continue;
            }
            let value = rest[1..].trim_start();
            let (quote, body) = match value.chars().next() {
                Some(q @ ('"' | '\'')) => (Some(q), &value[1..]),
                _ => (None, value),
            };
            let end = match quote {
                Some(q) => body.find(q).unwrap_or(body.len()),
                None => body
                    .find(|c: char| c.is_ascii_whitespace() || c == '/')
                    .unwrap_or(body.len()),
            };
            return Some(body[..end].to_string());
        }
        None
    }

    fn is_chrome(&self) -> bool {
        CHROME.contains(&self.name.as_str())
            || self
                .attribute("role")
                .is_some_and(|r| CHROME_ROLES.contains(&r.trim()))
            // Sphinx's ¶ after each heading.
            || self
                .attribute("class")
                .is_some_and(|c| c.split_whitespace().any(|c| c == "headerlink"))
    }

    fn is_main(&self) -> bool {
        self.name == "main" || self.attribute("role").is_some_and(|r| r.trim() == "main")
    }
}

/// The tags of `html`, with the text between them: (byte offset of `<`, tag, byte offset after).
fn tags(html: &str) -> impl Iterator<Item = (usize, Tag<'_>, usize)> {
    let mut pos = 0;
    std::iter::from_fn(move || loop {
        let lt = pos + html[pos..].find('<')?;
        let rest = &html[lt + 1..];
        // Comments, `<!DOCTYPE …>`, `<?xml …?>`: no text and no element, named "!".
        let markup_end = if rest.starts_with("!--") {
            Some(rest.find("-->").map_or(html.len(), |end| lt + 1 + end + 3))
        } else if rest.starts_with('!') || rest.starts_with('?') {
            Some(rest.find('>').map_or(html.len(), |end| lt + 1 + end + 1))
        } else {
            None
        };
        if let Some(end) = markup_end {
            pos = end;
            let tag = Tag {
                name: "!".into(),
                closing: true,
                attributes: "",
            };
            return Some((lt, tag, end));
        }
        let gt = lt + 1 + rest.find('>')?;
        let inner = &html[lt + 1..gt];
        let closing = inner.starts_with('/');
        let inner = inner.trim_start_matches('/');
        let name: String = inner
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            // A `<` in text ("1 < 2"): text, not a tag.
            pos = lt + 1;
            continue;
        }
        pos = gt + 1;
        let attributes = &inner[name.len()..];
        return Some((
            lt,
            Tag {
                name,
                closing,
                attributes,
            },
            gt + 1,
        ));
    })
}

/// The byte range of the main content: the first `<main>` / `role="main"` element, else the only
/// `<article>`, else the whole page.
fn main_range(html: &str) -> (usize, usize) {
    let find = |is_it: &dyn Fn(&Tag) -> bool, only: bool| -> Option<(usize, usize)> {
        let mut found: Option<(usize, String)> = None;
        let mut depth = 0usize;
        let mut range = None;
        for (_, tag, after) in tags(html) {
            match &found {
                None if !tag.closing && is_it(&tag) => {
                    found = Some((after, tag.name.clone()));
                    depth = 1;
                }
                Some((start, name)) if tag.name == *name => {
                    if tag.closing {
                        depth -= 1;
                        if depth == 0 {
                            if range.is_some() {
                                return None; // a second one: not "the only"
                            }
                            range = Some((*start, after));
                            if !only {
                                return range;
                            }
                            found = None;
                        }
                    } else {
                        depth += 1;
                    }
                }
                _ => {}
            }
        }
        // An element never closed runs to the end of the page.
        range.or_else(|| found.map(|(start, _)| (start, html.len())))
    };
    find(&|t| t.is_main(), false)
        .or_else(|| find(&|t| t.name == "article", true))
        .unwrap_or((0, html.len()))
}

/// The page's text, chrome left out, headings as Markdown headings.
pub fn to_text(html: &str, checkpoint: &Checkpoint) -> Result<String, Rejection> {
    let (start, end) = main_range(html);
    let page = &html[start..end];
    let mut out = String::with_capacity(page.len() / 2);
    // The element being skipped and how deeply it nests in itself.
    let mut skipping: Option<(String, usize)> = None;
    let mut text_from = 0;
    for (n, (lt, tag, after)) in tags(page).enumerate() {
        if n % 1024 == 1023 {
            checkpoint.check()?;
        }
        if skipping.is_none() {
            out.push_str(&html_escape::decode_html_entities(&page[text_from..lt]));
        }
        text_from = after;
        if let Some((name, depth)) = &mut skipping {
            if tag.name == *name && !VOID.contains(&tag.name.as_str()) {
                if tag.closing {
                    *depth -= 1;
                    if *depth == 0 {
                        skipping = None;
                    }
                } else {
                    *depth += 1;
                }
            }
            continue;
        }
        let name = tag.name.as_str();
        if !tag.closing && !VOID.contains(&name) && (NEVER_TEXT.contains(&name) || tag.is_chrome())
        {
            skipping = Some((tag.name.clone(), 1));
            continue;
        }
        if let Some(level) = heading_level(name) {
            if tag.closing {
                out.push_str("\n\n");
            } else {
                out.push_str("\n\n");
                out.push_str(&"#".repeat(level));
                out.push(' ');
            }
        } else if BLOCKS.contains(&name) {
            out.push('\n');
        }
    }
    if skipping.is_none() {
        out.push_str(&html_escape::decode_html_entities(&page[text_from..]));
    }
    Ok(out)
}

fn heading_level(name: &str) -> Option<usize> {
    match name.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(usize::from(d - b'0')),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::documents::Budget;

    fn text(html: &str) -> String {
        let budget = Budget {
            max_chars: 1_000_000,
            max_pages: 10,
            timeout: std::time::Duration::from_secs(5),
        };
        let checkpoint = Checkpoint::unbounded(&budget);
        crate::domain::documents::extract::normalise(&to_text(html, &checkpoint).unwrap())
    }

    /// A page shaped like Sphinx's Read-the-Docs theme (QEMU's manuals): sidebar, search,
    /// breadcrumbs with "View page source", the document in `role="main"`, footer buttons.
    const SPHINX: &str = r##"<!DOCTYPE html><html><head><title>qemu-img — QEMU documentation</title>
<script>var x = 1;</script></head><body class="wy-body-for-nav">
<nav data-toggle="wy-nav-shift" class="wy-nav-side"><div role="search"><form><input name="q"></form></div>
<div class="wy-menu" role="navigation" aria-label="Navigation menu"><ul><li><a href="a.html">About QEMU</a></li>
<li><a href="b.html">System Emulation</a></li></ul></div></nav>
<section class="wy-nav-content-wrap"><nav class="wy-nav-top" aria-label="Mobile navigation menu">QEMU</nav>
<div class="wy-nav-content"><div class="rst-content">
<div role="navigation" aria-label="Page navigation"><ul class="wy-breadcrumbs"><li>Tools</li>
<li><a href="_sources/qemu-img.rst.txt">View page source</a></li></ul><hr/></div>
<div role="main" class="document"><section id="qemu-img">
<h1>QEMU disk image utility<a class="headerlink" href="#qemu-img" title="Link">¶</a></h1>
<section id="convert"><h2>Convert<a class="headerlink" href="#convert">¶</a></h2>
<p>Convert the disk image <em>filename</em> to disk image <em>output_filename</em> using format
<em>output_fmt</em>, for example from raw to qcow2.</p>
<div class="highlight"><pre>qemu-img convert -f raw -O qcow2 image.img image.qcow2</pre></div>
</section></section></div>
<footer><div class="rst-footer-buttons" role="navigation" aria-label="Footer">Previous Next</div>
<div role="contentinfo"><p>&#169; Copyright 2025, The QEMU Project Developers.</p></div></footer>
</div></div></section></body></html>"##;

    #[test]
    fn a_documentation_page_keeps_its_document_and_drops_its_chrome() {
        let t = text(SPHINX);
        for chrome in [
            "About QEMU",
            "System Emulation",
            "View page source",
            "Previous Next",
            "Copyright",
            "var x",
            "¶",
            "Mobile",
        ] {
            assert!(!t.contains(chrome), "{chrome:?} in {t:?}");
        }
        assert!(
            t.starts_with("# QEMU disk image utility\n\n## Convert\n\nConvert the disk image"),
            "{t:?}"
        );
        assert!(t.contains("qemu-img convert -f raw -O qcow2"), "{t:?}");
    }

    #[test]
    fn without_a_marked_main_the_lone_article_is_kept_else_the_page_without_chrome() {
        let t = text("<body><nav>Home</nav><article><h2>Post</h2><p>Body</p></article><footer>f</footer></body>");
        assert_eq!(t, "## Post\n\nBody");
        let t = text("<body><header>Site</header><nav>Home</nav><p>One</p><aside>ad</aside><p>Two</p></body>");
        assert_eq!(t, "Site\n\nOne\n\nTwo");
        // Two articles: neither is "the" content; both stay.
        let t = text("<article><p>A</p></article><article><p>B</p></article>");
        assert_eq!(t, "A\n\nB");
    }

    #[test]
    fn nested_chrome_and_unclosed_elements_end_where_they_should() {
        let t = text("<main><nav><nav>x</nav>still nav</nav><p>kept</p></main><p>outside</p>");
        assert_eq!(t, "kept");
        let t = text("<p>before</p><aside><p>never closed");
        assert_eq!(t, "before");
        let t = text("<p>a<!-- <nav> -->b</p><p>1 < 2</p>");
        assert_eq!(t, "ab\n\n1 < 2");
    }
}
