//! Chunking with `text-splitter`: by characters, on semantic boundaries (Markdown structure for
//! Markdown; paragraphs, sentences, words otherwise), with overlap. Offsets are in characters
//! (Unicode scalar values) of the normalised text, so citations point at exact passages.

use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};

use super::Kind;

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub text: String,
    pub start: usize,
    pub end: usize,
    /// Where the passage sits: the document's title and the path of section headings above it
    /// ("qemu-img › Command description › convert"). Indexed and embedded with the passage, so a
    /// passage that never names its topic is found by it; shown with citations.
    pub context: String,
}

/// Between the parts of a context.
pub const CONTEXT_SEPARATOR: &str = " › ";

/// What is indexed and embedded for a chunk: its context, then its text.
pub fn indexed_text(context: &str, text: &str) -> String {
    if context.is_empty() {
        text.to_string()
    } else {
        format!("{context}\n\n{text}")
    }
}

/// The document's title, a context's first part. Markdown and HTML name their sections in
/// headings (the first is usually the page's title): the file name without its extension
/// ("qemu-img.html" → "qemu-img"), which people search by. Plain text and PDF have no headings:
/// their first line when it is short enough to be a title, else the file name.
pub fn title(filename: &str, text: &str, kind: Kind) -> String {
    let name = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let stem = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 5 => stem,
        _ => name,
    };
    if matches!(kind, Kind::Markdown | Kind::Html) {
        return stem.to_string();
    }
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(line) if line.chars().count() <= 80 => line.to_string(),
        _ => stem.to_string(),
    }
}

/// Gives each chunk its context: `title`, then the headings (Markdown's ATX headings, which
/// HTML's text keeps too) in force where the chunk starts, outermost first. A heading the chunk
/// starts with counts. Plain text and PDF have no headings: the title alone.
pub fn add_context(text: &str, kind: Kind, title: &str, chunks: &mut [Chunk]) {
    let headings = if matches!(kind, Kind::Markdown | Kind::Html) {
        headings(text)
    } else {
        Vec::new()
    };
    // Chunks come in text order: walk the headings once.
    let mut path: Vec<(usize, &str)> = Vec::new();
    let mut next = 0;
    for chunk in chunks.iter_mut() {
        while let Some(&(offset, level, heading)) = headings.get(next) {
            if offset > chunk.start {
                break;
            }
            path.retain(|&(l, _)| l < level);
            path.push((level, heading));
            next += 1;
        }
        let mut parts: Vec<&str> = Vec::with_capacity(path.len() + 1);
        for part in std::iter::once(title).chain(path.iter().map(|&(_, h)| h)) {
            // A page's first heading is often its title again.
            if !part.is_empty() && parts.last().is_none_or(|p| !p.eq_ignore_ascii_case(part)) {
                parts.push(part);
            }
        }
        chunk.context = parts.join(CONTEXT_SEPARATOR);
    }
}

/// ATX headings outside code fences: (character offset of the line, level, text).
fn headings(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut fence: Option<&str> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (Some(open), Some(m)) if m == open => fence = None,
            (None, Some(m)) => fence = Some(m),
            (None, None) => {
                let level = trimmed.bytes().take_while(|&b| b == b'#').count();
                let rest = &trimmed[level..];
                if (1..=6).contains(&level) && (rest.is_empty() || rest.starts_with([' ', '\t'])) {
                    let heading = rest.trim().trim_end_matches('#').trim();
                    if !heading.is_empty() {
                        out.push((offset, level, heading));
                    }
                }
            }
            _ => {}
        }
        offset += line.chars().count();
    }
    out
}

/// How large a chunk may be: `chars` characters, overlapping by `overlap`; and, when the
/// embedding model's tokenizer is at hand, no more tokens than it reads.
#[derive(Clone, Copy)]
pub struct Sizing<'a> {
    pub chars: usize,
    pub overlap: usize,
    pub tokens: Option<TokenLimit<'a>>,
}

/// At most `max` tokens as `count` counts them.
#[derive(Clone, Copy)]
pub struct TokenLimit<'a> {
    pub count: &'a (dyn Fn(&str) -> usize + Sync),
    pub max: usize,
}

/// Tokens a chunk leaves the model for its context (title and headings), which is embedded
/// before it; a longer context cuts the chunk's end off.
pub const CONTEXT_TOKENS: usize = 32;

impl<'a> Sizing<'a> {
    pub fn chars(chars: usize, overlap: usize) -> Sizing<'a> {
        Sizing {
            chars,
            overlap,
            tokens: None,
        }
    }
}

/// Both limits as one size, in tokens: a chunk's tokens, or its characters scaled so that the
/// character limit falls on the token limit, whichever is more. So a chunk fits when it fits
/// both, and text-splitter gets one number that, like its own tokenizer sizes, is never more
/// than the text's length in bytes (its search for a chunk's end relies on that).
impl ChunkSizer for Sizing<'_> {
    fn size(&self, chunk: &str) -> usize {
        let chars = chunk.chars().count();
        match self.binding_tokens() {
            None => chars,
            Some(limit) => (limit.count)(chunk).max((chars * limit.max).div_ceil(self.chars)),
        }
    }
}

impl Sizing<'_> {
    /// The token limit when it can bind: a token is at least a character, so a limit of as
    /// many tokens as characters never does.
    fn binding_tokens(&self) -> Option<TokenLimit<'_>> {
        self.tokens.filter(|t| t.max > 0 && t.max < self.chars)
    }

    /// The capacity and overlap in the sizer's unit.
    fn capacity(&self) -> (usize, usize) {
        match self.binding_tokens() {
            None => (self.chars, self.overlap),
            Some(limit) => (limit.max, self.overlap * limit.max / self.chars),
        }
    }
}

pub fn chunk(text: &str, kind: Kind, sizing: Sizing<'_>) -> Vec<Chunk> {
    let (capacity, overlap) = sizing.capacity();
    let config = ChunkConfig::new(capacity)
        .with_overlap(overlap)
        .expect("overlap below size, checked in config")
        .with_sizer(sizing)
        .with_trim(true);
    // HTML's text keeps its headings as Markdown's (see `html`): split at its sections too.
    let pieces: Vec<(usize, &str)> = if matches!(kind, Kind::Markdown | Kind::Html) {
        MarkdownSplitter::new(config).chunk_indices(text).collect()
    } else {
        TextSplitter::new(config).chunk_indices(text).collect()
    };
    // Byte offsets to character offsets, in one pass over the text.
    let mut out = Vec::with_capacity(pieces.len());
    let mut chars_before = 0;
    let mut byte_pos = 0;
    for (byte_start, piece) in pieces {
        if byte_start >= byte_pos {
            chars_before += text[byte_pos..byte_start].chars().count();
        } else {
            chars_before -= text[byte_start..byte_pos].chars().count();
        }
        byte_pos = byte_start;
        let len = piece.chars().count();
        out.push(Chunk {
            text: piece.to_string(),
            start: chars_before,
            end: chars_before + len,
            context: String::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_text_with_exact_character_offsets() {
        let text = "Ünïcode first paragraph here.\n\nSecond paragraph, rather longer than the first.\n\nThird.";
        let chunks = chunk(text, Kind::Text, Sizing::chars(40, 5));
        assert!(chunks.len() >= 2);
        let chars: Vec<char> = text.chars().collect();
        for c in &chunks {
            let slice: String = chars[c.start..c.end].iter().collect();
            assert_eq!(slice, c.text);
            assert!(c.text.chars().count() <= 40);
        }
    }

    #[test]
    fn a_chunk_carries_the_title_and_the_headings_above_it() {
        let md = "# qemu-img\n\nIntro text here.\n\n## Commands\n\n### convert\n\nConvert the disk image to another format.\n\n```\n# not a heading\n```\n\n## Notes\n\nLast words.";
        let mut chunks = chunk(md, Kind::Markdown, Sizing::chars(45, 0));
        add_context(md, Kind::Markdown, "qemu-img", &mut chunks);
        let context_of = |needle: &str| {
            chunks
                .iter()
                .find(|c| c.text.contains(needle))
                .map(|c| c.context.clone())
                .unwrap_or_else(|| panic!("no chunk with {needle:?}: {chunks:?}"))
        };
        assert_eq!(context_of("Intro"), "qemu-img");
        assert_eq!(
            context_of("Convert the disk"),
            "qemu-img › Commands › convert"
        );
        assert_eq!(context_of("not a heading"), "qemu-img › Commands › convert");
        assert_eq!(context_of("Last words"), "qemu-img › Notes");
    }

    #[test]
    fn plain_text_has_the_title_alone() {
        let text = "# Not Markdown\n\nJust text.";
        let mut chunks = chunk(text, Kind::Text, Sizing::chars(100, 0));
        add_context(text, Kind::Text, "notes", &mut chunks);
        assert_eq!(chunks[0].context, "notes");
        assert_eq!(indexed_text("notes", "Just text."), "notes\n\nJust text.");
        assert_eq!(indexed_text("", "Just text."), "Just text.");
    }

    #[test]
    fn titles_are_file_names_or_a_short_first_line() {
        assert_eq!(
            title("qemu-img.html", "# QEMU\n\ntext", Kind::Html),
            "qemu-img"
        );
        assert_eq!(title("README.md", "# Berth", Kind::Markdown), "README");
        assert_eq!(title(".bashrc", "# Berth", Kind::Markdown), ".bashrc");
        assert_eq!(
            title("d0.txt", "\n  os.path.join\n\nJoin paths.", Kind::Text),
            "os.path.join"
        );
        let long = "A first line far too long to be anyone's title, going on and on about the matter at hand, and on.";
        assert_eq!(title("notes.txt", long, Kind::Text), "notes");
        assert_eq!(title("empty.pdf", "", Kind::Pdf), "empty");
    }

    #[test]
    fn chunks_fit_the_token_limit_as_well_as_the_character_limit() {
        // A stand-in tokenizer: every word is three tokens.
        let count = |s: &str| s.split_whitespace().count() * 3;
        let text: String = (0..40)
            .map(|i| format!("alpha beta gamma delta{i}. "))
            .collect();
        let sizing = Sizing {
            chars: 200,
            overlap: 0,
            tokens: Some(TokenLimit {
                count: &count,
                max: 30,
            }),
        };
        let chunks = chunk(&text, Kind::Text, sizing);
        assert!(
            chunks
                .iter()
                .all(|c| count(&c.text) <= 30 && c.text.chars().count() <= 200),
            "{chunks:?}"
        );
        // Ten words fit the tokens; by characters alone a chunk would hold about 33.
        assert!(
            chunks
                .iter()
                .all(|c| c.text.split_whitespace().count() == 10),
            "{chunks:?}"
        );
        let by_chars = chunk(&text, Kind::Text, Sizing::chars(200, 0));
        assert!(
            by_chars.len() * 3 <= chunks.len() + 3,
            "{} vs {}",
            by_chars.len(),
            chunks.len()
        );
    }

    #[test]
    fn markdown_splits_on_headings() {
        let md = "# A\n\nalpha alpha alpha alpha.\n\n# B\n\nbeta beta beta beta.";
        let chunks = chunk(md, Kind::Markdown, Sizing::chars(30, 0));
        assert!(
            chunks.iter().any(|c| c.text.starts_with("# B")),
            "{chunks:?}"
        );
    }
}
