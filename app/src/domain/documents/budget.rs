//! What extracting one document may cost. A hostile file (a DOCX whose 1 MB inflate to 1 GiB,
//! a PDF of ten thousand pages) must fail in seconds with a message naming the limit, not hold
//! a core and a gigabyte for minutes; and a document deleted mid-extraction, or a server asked
//! to stop, must not wait for the extraction to finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::extract::Rejection;

/// Limits per document (settings `extract_max_chars`, `extract_max_pages`, `extract_timeout`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Characters of extracted text.
    pub max_chars: usize,
    /// Pages of a PDF.
    pub max_pages: usize,
    /// Wall time of one extraction.
    pub timeout: Duration,
}

/// A ZIP with more entries than this is not a Word document someone wrote.
pub const MAX_ZIP_ENTRIES: usize = 10_000;
/// Word's XML compresses about 10:1; 200:1 is a bomb, not a document.
pub const MAX_ZIP_RATIO: u64 = 200;
/// Bytes of DOCX XML per allowed character of text: markup is a few times the text, so XML
/// beyond this cannot hold text within the character limit worth reading.
pub const XML_BYTES_PER_CHAR: u64 = 32;

impl Budget {
    pub fn over_chars(&self) -> Rejection {
        Rejection::OverBudget(format!(
            "the document's text is longer than the {} character limit (setting \
             extract_max_chars); split it, or raise the limit",
            self.max_chars
        ))
    }

    pub fn over_pages(&self, pages: usize) -> Rejection {
        Rejection::OverBudget(format!(
            "the PDF has {pages} pages, more than the {} page limit (setting extract_max_pages); \
             split it, or raise the limit",
            self.max_pages
        ))
    }

    /// Decompressed XML a DOCX may hold.
    pub fn max_inflated(&self) -> u64 {
        self.max_chars as u64 * XML_BYTES_PER_CHAR
    }

    /// A checkpoint starting now, stopped by `cancel` too.
    pub fn start(&self, cancel: Arc<AtomicBool>) -> Checkpoint {
        Checkpoint {
            deadline: Instant::now() + self.timeout,
            timeout: self.timeout,
            cancel,
        }
    }
}

/// Where blocking extraction checks in, often enough to stop within a fraction of a second.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    deadline: Instant,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
}

impl Checkpoint {
    /// A checkpoint with no one to cancel it (the upload's sniff, tests).
    pub fn unbounded(budget: &Budget) -> Checkpoint {
        budget.start(Arc::new(AtomicBool::new(false)))
    }

    pub fn check(&self) -> Result<(), Rejection> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Rejection::Cancelled);
        }
        if Instant::now() > self.deadline {
            return Err(Rejection::OverBudget(format!(
                "extracting the text took longer than {} s (setting extract_timeout); split the \
                 document, or raise the limit",
                self.timeout.as_secs()
            )));
        }
        Ok(())
    }
}
