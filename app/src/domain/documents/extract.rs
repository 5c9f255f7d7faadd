//! Type detection from content and text extraction, for plain text, Markdown, HTML, PDF (text
//! layer) and DOCX. Every refusal says why, so the uploader knows what to do.

use std::io::Read;

use super::budget::{Budget, Checkpoint, MAX_ZIP_ENTRIES, MAX_ZIP_RATIO};

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
    /// Over one of the document's limits (size, pages, characters, time); the message names it.
    #[error("{0}")]
    OverBudget(String),
    /// Stopped because the document was deleted or the server is stopping.
    #[error("extraction was stopped")]
    Cancelled,
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Empty => "empty",
            Rejection::Unsupported(_) => "unsupported_type",
            Rejection::Encrypted => "encrypted",
            Rejection::Malformed(_) => "malformed",
            Rejection::NoText(_) => "no_text",
            Rejection::OverBudget(_) => "over_budget",
            Rejection::Cancelled => "cancelled",
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

/// The bounded look at a whole upload, before it is stored: what can be told without
/// extracting (valid UTF-8; a PDF that parses, is not encrypted and is within the page limit;
/// a DOCX whose archive is sane and whose declared sizes are within the budget). Extraction
/// itself happens in the ingestion worker, so an upload request never does it.
pub fn sniff(kind: Kind, bytes: &[u8], budget: &Budget) -> Result<(), Rejection> {
    match kind {
        Kind::Text | Kind::Markdown | Kind::Html => {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                Rejection::Malformed(if kind == Kind::Html {
                    "the HTML is not valid UTF-8".into()
                } else {
                    "the text is not valid UTF-8".into()
                })
            })?;
            if text.trim().is_empty() {
                return Err(Rejection::Empty);
            }
            Ok(())
        }
        // Not parsed here: parsing a PDF's structure costs seconds for thousands of pages.
        // The markers every PDF ends with, and no encryption, are what the upload can check.
        Kind::Pdf => {
            if contains(bytes, b"/Encrypt") {
                return Err(Rejection::Encrypted);
            }
            let tail = &bytes[bytes.len().saturating_sub(2048)..];
            if !contains(tail, b"startxref") || !contains(tail, b"%%EOF") {
                return Err(Rejection::Malformed(
                    "the PDF is incomplete or damaged (it has no cross-reference table at its \
                     end); export it again"
                        .into(),
                ));
            }
            Ok(())
        }
        Kind::Docx => {
            let mut archive = docx_archive(bytes)?;
            docx_xml(&mut archive, budget).map(drop)
        }
    }
}

/// Extracts normalised text from the whole file, within `budget`, checking in at `checkpoint`.
pub fn extract(
    kind: Kind,
    bytes: &[u8],
    budget: &Budget,
    checkpoint: &Checkpoint,
) -> Result<String, Rejection> {
    let raw = match kind {
        Kind::Text | Kind::Markdown => String::from_utf8(bytes.to_vec())
            .map_err(|_| Rejection::Malformed("the text is not valid UTF-8".into()))?,
        Kind::Html => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| Rejection::Malformed("the HTML is not valid UTF-8".into()))?;
            super::html::to_text(text, checkpoint)?
        }
        Kind::Pdf => pdf_text(bytes, budget, checkpoint)?,
        Kind::Docx => docx_text(bytes, budget, checkpoint)?,
    };
    checkpoint.check()?;
    // Bytes bound characters from above: count only when it could matter.
    if raw.len() > budget.max_chars && raw.chars().count() > budget.max_chars {
        return Err(budget.over_chars());
    }
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

/// The PDF parsed (its structure, not its text), refused when encrypted or over the page limit.
fn pdf_document(bytes: &[u8], budget: &Budget) -> Result<pdf_extract::Document, Rejection> {
    if contains(bytes, b"/Encrypt") {
        return Err(Rejection::Encrypted);
    }
    // The PDF parser panics on some malformed input; a bad upload must not take a worker down.
    let doc = match std::panic::catch_unwind(|| pdf_extract::Document::load_mem(bytes)) {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => {
            return Err(Rejection::Malformed(format!(
                "the PDF cannot be read ({e})"
            )))
        }
        Err(_) => return Err(Rejection::Malformed("the PDF cannot be read".into())),
    };
    let pages = doc.get_pages().len();
    if pages > budget.max_pages {
        return Err(budget.over_pages(pages));
    }
    Ok(doc)
}

fn pdf_text(bytes: &[u8], budget: &Budget, checkpoint: &Checkpoint) -> Result<String, Rejection> {
    let doc = pdf_document(bytes, budget)?;
    let mut text = String::new();
    let mut stopped = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut out = Guarded {
            inner: pdf_extract::PlainTextOutput::new(&mut text),
            checkpoint,
            budget,
            chars: 0,
            stopped: &mut stopped,
        };
        pdf_extract::output_doc(&doc, &mut out)
    }));
    if let Some(why) = stopped {
        return Err(why);
    }
    match result {
        Ok(Ok(())) => Ok(text),
        Ok(Err(e)) => Err(Rejection::Malformed(format!(
            "the PDF cannot be read ({e})"
        ))),
        Err(_) => Err(Rejection::Malformed("the PDF cannot be read".into())),
    }
}

/// pdf-extract's text output, stopped at the budget: the parser calls it for every page and
/// character, and an error from it ends the extraction there.
struct Guarded<'a, O> {
    inner: O,
    checkpoint: &'a Checkpoint,
    budget: &'a Budget,
    chars: usize,
    stopped: &'a mut Option<Rejection>,
}

impl<O> Guarded<'_, O> {
    fn stop(&mut self, why: Rejection) -> pdf_extract::OutputError {
        *self.stopped = Some(why);
        pdf_extract::OutputError::IoError(std::io::Error::other("stopped by the budget"))
    }
}

impl<O: pdf_extract::OutputDev> pdf_extract::OutputDev for Guarded<'_, O> {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &pdf_extract::MediaBox,
        art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), pdf_extract::OutputError> {
        if let Err(why) = self.checkpoint.check() {
            return Err(self.stop(why));
        }
        self.inner.begin_page(page_num, media_box, art_box)
    }
    fn end_page(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.inner.end_page()
    }
    fn output_character(
        &mut self,
        trm: &pdf_extract::Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), pdf_extract::OutputError> {
        self.chars += 1;
        if self.chars > self.budget.max_chars {
            let why = self.budget.over_chars();
            return Err(self.stop(why));
        }
        if self.chars.is_multiple_of(4096) {
            if let Err(why) = self.checkpoint.check() {
                return Err(self.stop(why));
            }
        }
        self.inner
            .output_character(trm, width, spacing, font_size, char)
    }
    fn begin_word(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.inner.begin_word()
    }
    fn end_word(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.inner.end_word()
    }
    fn end_line(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.inner.end_line()
    }
}

fn docx_malformed(why: String) -> Rejection {
    Rejection::Malformed(format!("the DOCX cannot be read ({why})"))
}

type Archive<'a> = zip::ZipArchive<std::io::Cursor<&'a [u8]>>;

fn docx_archive(bytes: &[u8]) -> Result<Archive<'_>, Rejection> {
    let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| docx_malformed(e.to_string()))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(Rejection::OverBudget(format!(
            "the DOCX holds {} files, more than a Word document has (at most {MAX_ZIP_ENTRIES})",
            archive.len()
        )));
    }
    Ok(archive)
}

/// word/document.xml, refused from its declared sizes when it would inflate past the budget or
/// by more than a document compresses. The sizes can lie: the reader stops at the budget anyway.
fn docx_xml<'a, 'b>(
    archive: &'b mut Archive<'a>,
    budget: &Budget,
) -> Result<zip::read::ZipFile<'b, std::io::Cursor<&'a [u8]>>, Rejection> {
    let entry = archive
        .by_name("word/document.xml")
        .map_err(|_| docx_malformed("no word/document.xml inside".into()))?;
    let (size, packed) = (entry.size(), entry.compressed_size().max(1));
    if size > budget.max_inflated() || size / packed > MAX_ZIP_RATIO {
        return Err(Rejection::OverBudget(format!(
            "the DOCX's text would inflate from {} KiB to {} MiB, beyond what a document holds              (setting extract_max_chars bounds it)",
            packed >> 10,
            size >> 20
        )));
    }
    Ok(entry)
}

fn docx_text(bytes: &[u8], budget: &Budget, checkpoint: &Checkpoint) -> Result<String, Rejection> {
    let mut archive = docx_archive(bytes)?;
    let entry = docx_xml(&mut archive, budget)?;
    let limit = budget.max_inflated();
    // Streamed: the XML is never held whole, and never read past the budget.
    let mut reader = quick_xml::Reader::from_reader(std::io::BufReader::new(entry.take(limit + 1)));
    let mut buf = Vec::new();
    let mut out = String::new();
    let mut chars = 0usize;
    let mut in_text = false;
    for event in 0u64.. {
        use quick_xml::events::Event;
        if event.is_multiple_of(1024) {
            checkpoint.check()?;
        }
        if reader.buffer_position() > limit {
            return Err(budget.over_chars());
        }
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.name().as_ref() == b"w:t" => in_text = true,
            Ok(Event::End(e)) if e.name().as_ref() == b"w:t" => in_text = false,
            Ok(Event::End(e)) if e.name().as_ref() == b"w:p" => out.push_str("\n\n"),
            Ok(Event::Empty(e)) if matches!(e.name().as_ref(), b"w:tab") => out.push('\t'),
            Ok(Event::Empty(e)) if matches!(e.name().as_ref(), b"w:br" | b"w:cr") => out.push('\n'),
            Ok(Event::Text(t)) if in_text => {
                let text = t.unescape().map_err(|e| docx_malformed(e.to_string()))?;
                chars += text.chars().count();
                if chars > budget.max_chars {
                    return Err(budget.over_chars());
                }
                out.push_str(&text);
            }
            Ok(Event::Eof) => break,
            Err(e) => {
                if reader.buffer_position() > limit {
                    return Err(budget.over_chars());
                }
                return Err(docx_malformed(e.to_string()));
            }
            _ => {}
        }
    }
    Ok(out)
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

    /// The defaults (`config::declared`), as test data.
    fn default_budget() -> Budget {
        Budget {
            max_chars: 10_000_000,
            max_pages: 5_000,
            timeout: std::time::Duration::from_secs(120),
        }
    }

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
        let t = extract_all(
            Kind::Html,
            b"<html><head><style>p{}</style><script>alert(1)</script></head>\
              <body><h1>Title</h1><p>Fish &amp; chips</p></body></html>",
        )
        .unwrap();
        assert_eq!(t, "# Title\n\nFish & chips");
    }

    #[test]
    fn normalising_collapses_whitespace_and_blank_lines() {
        assert_eq!(normalise("a  b\r\n\r\n\r\n\tc\u{7}"), "a b\n\n c");
    }

    #[test]
    fn malformed_and_encrypted_pdfs_are_refused_by_reason() {
        assert!(matches!(
            extract_all(Kind::Pdf, b"%PDF-1.4 garbage"),
            Err(Rejection::Malformed(_))
        ));
        assert_eq!(
            extract_all(Kind::Pdf, b"%PDF-1.4\ntrailer << /Encrypt 5 0 R >>"),
            Err(Rejection::Encrypted)
        );
        assert!(matches!(
            extract_all(Kind::Docx, b"PK\x03\x04nonsense"),
            Err(Rejection::Malformed(_))
        ));
    }

    fn extract_all(kind: Kind, bytes: &[u8]) -> Result<String, Rejection> {
        let budget = default_budget();
        extract(kind, bytes, &budget, &Checkpoint::unbounded(&budget))
    }

    /// A DOCX whose document.xml is `xml`, deflated.
    fn docx(xml: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("word/document.xml", deflated).unwrap();
        zip.write_all(xml).unwrap();
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_docx_that_inflates_past_the_budget_is_refused_from_its_sizes() {
        // 64 MiB of one repeated paragraph: deflates over 1000:1.
        let paragraph = b"<w:p><w:r><w:t>aaaaaaaaaaaaaaaa</w:t></w:r></w:p>";
        let xml: Vec<u8> = paragraph.iter().copied().cycle().take(64 << 20).collect();
        let bomb = docx(&xml);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let budget = default_budget();
        let refused = sniff(Kind::Docx, &bomb, &budget).unwrap_err();
        assert_eq!(refused.code(), "over_budget", "{refused}");
        assert!(refused.to_string().contains("inflate"), "{refused}");
    }

    #[test]
    fn text_past_the_character_limit_stops_the_extraction() {
        let xml = "<w:p><w:r><w:t>0123456789</w:t></w:r></w:p>".repeat(2_000);
        let budget = Budget {
            max_chars: 5_000,
            ..default_budget()
        };
        let checkpoint = Checkpoint::unbounded(&budget);
        let refused = extract(Kind::Docx, &docx(xml.as_bytes()), &budget, &checkpoint);
        let refused = refused.unwrap_err();
        assert!(
            refused.to_string().contains("extract_max_chars"),
            "{refused}"
        );
        let text = "word ".repeat(2_000);
        let refused = extract(Kind::Text, text.as_bytes(), &budget, &checkpoint).unwrap_err();
        assert_eq!(refused.code(), "over_budget");
    }

    #[test]
    fn a_cancelled_extraction_stops_at_its_next_checkpoint() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let cancel = std::sync::Arc::new(AtomicBool::new(false));
        let budget = default_budget();
        let checkpoint = budget.start(cancel.clone());
        let html = "<p>x</p>".repeat(10_000);
        assert!(extract(Kind::Html, html.as_bytes(), &budget, &checkpoint).is_ok());
        cancel.store(true, Ordering::Relaxed);
        assert_eq!(
            extract(Kind::Html, html.as_bytes(), &budget, &checkpoint),
            Err(Rejection::Cancelled)
        );
    }
}
