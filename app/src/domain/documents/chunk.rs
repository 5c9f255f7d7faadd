//! Chunking with `text-splitter`: by characters, on semantic boundaries (Markdown structure for
//! Markdown; paragraphs, sentences, words otherwise), with overlap. Offsets are in characters
//! (Unicode scalar values) of the normalised text, so citations point at exact passages.

use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};

use super::Kind;

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

pub fn chunk(text: &str, kind: Kind, size: usize, overlap: usize) -> Vec<Chunk> {
    let config = ChunkConfig::new(size)
        .with_overlap(overlap)
        .expect("overlap below size, checked in config")
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
        let chunks = chunk(text, Kind::Text, 40, 5);
        assert!(chunks.len() >= 2);
        let chars: Vec<char> = text.chars().collect();
        for c in &chunks {
            let slice: String = chars[c.start..c.end].iter().collect();
            assert_eq!(slice, c.text);
            assert!(c.text.chars().count() <= 40);
        }
    }

    #[test]
    fn markdown_splits_on_headings() {
        let md = "# A\n\nalpha alpha alpha alpha.\n\n# B\n\nbeta beta beta beta.";
        let chunks = chunk(md, Kind::Markdown, 30, 0);
        assert!(
            chunks.iter().any(|c| c.text.starts_with("# B")),
            "{chunks:?}"
        );
    }
}
