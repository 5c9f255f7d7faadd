//! Type detection from content and text extraction, for plain text, Markdown, HTML, PDF (text
//! layer) and DOCX. Every refusal says why, so the uploader knows what to do.

use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
}

impl Kind {
    pub fn media_type(self) -> &'static str {
        match self {
            Kind::Text => "text/plain",
            Kind::Markdown => "text/markdown",
            Kind::Html => "text/html",
            Kind::Pdf => "application/pdf",
            Kind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        }
    }

    pub fn from_media_type(s: &str) -> Option<Kind> {
        [
            Kind::Text,
            Kind::Markdown,
            Kind::Html,
            Kind::Pdf,
            Kind::Docx,
        ]
        .into_iter()
        .find(|k| k.media_type() == s)
    }
}

/// Why a file cannot be used; maps to a 4xx with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the file is empty")]
    Empty,
    #[error("{0}")]
    Unsupported(String),
    #[error("the PDF is encrypted; remove the password protection and upload it again")]
    Encrypted,
    #[error("{0}")]
    Malformed(String),
    #[error("no text could be extracted: {0}")]
    NoText(String),
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Empty => "empty",
            Rejection::Unsupported(_) => "unsupported_type",
            Rejection::Encrypted => "encrypted",
            Rejection::Malformed(_) => "malformed",
            Rejection::NoText(_) => "no_text",
        }
    }
}

/// Detects the type from the first bytes (magic numbers, then text sniffing); the file name only
/// tells Markdown from plain text, which no content check can.
pub fn detect(head: &[u8], filename: &str) -> Result<Kind, Rejection> {
    if head.is_empty() {
        return Err(Rejection::Empty);
    }
    if head.starts_with(b"%PDF-") {
        return Ok(Kind::Pdf);
    }
    if head.starts_with(b"PK\x03\x04") {
        // A ZIP: DOCX if it says so; checked fully at extraction.
        return if filename.to_lowercase().ends_with(".docx") || contains(head, b"word/") {
            Ok(Kind::Docx)
        } else {
            Err(Rejection::Unsupported(
                "a ZIP archive that is not a Word document (.docx); upload the files inside it"
                    .into(),
            ))
        };
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // The head may end inside a multi-byte character.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return Err(binary()),
    };
    if text.contains('\0') {
        return Err(binary());
    }
    let lower = text
        .trim_start()
        .get(..512.min(text.trim_start().len()))
        .unwrap_or("")
        .to_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") || lower.contains("<body")
    {
        return Ok(Kind::Html);
    }
    let name = filename.to_lowercase();
    if name.ends_with(".md") || name.ends_with(".markdown") {
        return Ok(Kind::Markdown);
    }
    if name.ends_with(".html") || name.ends_with(".htm") {
        return Ok(Kind::Html);
    }
    Ok(Kind::Text)
}

fn binary() -> Rejection {
    Rejection::Unsupported(
        "a binary file; Berth reads plain text, Markdown, HTML, PDF and DOCX".into(),
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Extracts normalised text from the whole file.
pub fn extract(kind: Kind, bytes: &[u8]) -> Result<String, Rejection> {
    let raw = match kind {
        Kind::Text | Kind::Markdown => String::from_utf8(bytes.to_vec())
            .map_err(|_| Rejection::Malformed("the text is not valid UTF-8".into()))?,
        Kind::Html => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| Rejection::Malformed("the HTML is not valid UTF-8".into()))?;
            html_to_text(text)
        }
        Kind::Pdf => pdf_text(bytes)?,
        Kind::Docx => docx_text(bytes)?,
    };
    let text = normalise(&raw);
    if text.trim().is_empty() {
        return Err(match kind {
            Kind::Pdf => {
                Rejection::NoText("the PDF has no text layer (a scan?); run OCR on it first".into())
            }
            _ => Rejection::Empty,
        });
    }
    Ok(text)
}

fn pdf_text(bytes: &[u8]) -> Result<String, Rejection> {
    if contains(bytes, b"/Encrypt") {
        return Err(Rejection::Encrypted);
    }
    // The PDF parser panics on some malformed input; a bad upload must not take a worker down.
    let owned = bytes.to_vec();
    match std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem(&owned)) {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(Rejection::Malformed(format!(
            "the PDF cannot be read ({e})"
        ))),
        Err(_) => Err(Rejection::Malformed("the PDF cannot be read".into())),
    }
}

fn docx_text(bytes: &[u8]) -> Result<String, Rejection> {
    let malformed = |why: String| Rejection::Malformed(format!("the DOCX cannot be read ({why})"));
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| malformed(e.to_string()))?;
    let mut xml = String::new();
    archive
        .by_name("word/document.xml")
        .map_err(|_| malformed("no word/document.xml inside".into()))?
        .take(200 << 20)
        .read_to_string(&mut xml)
        .map_err(|e| malformed(e.to_string()))?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut out = String::new();
    let mut in_text = false;
    loop {
        use quick_xml::events::Event;
        match reader.read_event() {
            Ok(Event::Start(e)) if e.name().as_ref() == b"w:t" => in_text = true,
            Ok(Event::End(e)) if e.name().as_ref() == b"w:t" => in_text = false,
            Ok(Event::End(e)) if e.name().as_ref() == b"w:p" => out.push_str("\n\n"),
            Ok(Event::Empty(e)) if matches!(e.name().as_ref(), b"w:tab") => out.push('\t'),
            Ok(Event::Empty(e)) if matches!(e.name().as_ref(), b"w:br" | b"w:cr") => out.push('\n'),
            Ok(Event::Text(t)) if in_text => {
                out.push_str(&t.unescape().map_err(|e| malformed(e.to_string()))?)
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(malformed(e.to_string())),
            _ => {}
        }
    }
    Ok(out)
}

/// HTML to text: drops scripts, styles and tags, breaks lines at block elements, decodes
/// entities. Enough for retrieval; layout is not the point.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&html_escape::decode_html_entities(&rest[..lt]));
        rest = &rest[lt..];
        let Some(gt) = rest.find('>') else { break };
        let tag = rest[1..gt].trim_start_matches('/').to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &rest[gt + 1..];
        if matches!(name.as_str(), "script" | "style" | "noscript" | "template") && !rest.is_empty()
        {
            let close = format!("</{name}");
            match rest.to_ascii_lowercase().find(&close) {
                Some(end) => {
                    rest = &rest[end..];
                    if let Some(gt) = rest.find('>') {
                        rest = &rest[gt + 1..];
                    }
                }
                None => rest = "",
            }
            continue;
        }
        if matches!(
            name.as_str(),
            "p" | "div"
                | "br"
                | "li"
                | "tr"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "section"
                | "article"
                | "header"
                | "footer"
                | "blockquote"
                | "pre"
                | "table"
                | "ul"
                | "ol"
                | "title"
        ) {
            out.push('\n');
        }
    }
    out.push_str(&html_escape::decode_html_entities(rest));
    out
}

/// Line endings to `\n`, control characters out, runs of spaces and blank lines collapsed.
pub fn normalise(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank_lines = 0;
    for line in raw.replace("\r\n", "\n").replace('\r', "\n").split('\n') {
        let mut cleaned = String::with_capacity(line.len());
        let mut last_space = false;
        for c in line.chars() {
            let c = if c == '\t' || c == '\u{a0}' { ' ' } else { c };
            if c.is_control() {
                continue;
            }
            if c == ' ' {
                if !last_space {
                    cleaned.push(' ');
                }
                last_space = true;
            } else {
                cleaned.push(c);
                last_space = false;
            }
        }
        let cleaned = cleaned.trim_end();
        if cleaned.is_empty() {
            blank_lines += 1;
            if blank_lines == 1 && !out.is_empty() {
                out.push('\n');
            }
            continue;
        }
        blank_lines = 0;
        out.push_str(cleaned);
        out.push('\n');
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_trusts_content_over_names() {
        assert_eq!(detect(b"%PDF-1.7 ...", "notes.txt"), Ok(Kind::Pdf));
        assert_eq!(detect(b"# Title\n", "a.md"), Ok(Kind::Markdown));
        assert_eq!(detect(b"<!DOCTYPE html><html>", "a.txt"), Ok(Kind::Html));
        assert_eq!(detect(b"hello", "a.txt"), Ok(Kind::Text));
        assert_eq!(detect(b"", "a.txt"), Err(Rejection::Empty));
        assert!(matches!(
            detect(b"\x7fELF\x02\x01\0\0", "a.txt"),
            Err(Rejection::Unsupported(_))
        ));
        assert!(matches!(
            detect(&[0xff, 0xfe, 0x00, 0x41], "a.md"),
            Err(Rejection::Unsupported(_))
        ));
    }

    #[test]
    fn html_loses_tags_scripts_and_entities() {
        let t = extract(
            Kind::Html,
            b"<html><head><style>p{}</style><script>alert(1)</script></head>\
              <body><h1>Title</h1><p>Fish &amp; chips</p></body></html>",
        )
        .unwrap();
        assert_eq!(t, "Title\n\nFish & chips");
    }

    #[test]
    fn normalising_collapses_whitespace_and_blank_lines() {
        assert_eq!(normalise("a  b\r\n\r\n\r\n\tc\u{7}"), "a b\n\n c");
    }

    #[test]
    fn malformed_and_encrypted_pdfs_are_refused_by_reason() {
        assert!(matches!(
            extract(Kind::Pdf, b"%PDF-1.4 garbage"),
            Err(Rejection::Malformed(_))
        ));
        assert_eq!(
            extract(Kind::Pdf, b"%PDF-1.4\ntrailer << /Encrypt 5 0 R >>"),
            Err(Rejection::Encrypted)
        );
        assert!(matches!(
            extract(Kind::Docx, b"PK\x03\x04nonsense"),
            Err(Rejection::Malformed(_))
        ));
    }
}
