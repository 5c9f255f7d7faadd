//! Documents: what an upload is (detected from its bytes), its text, and its chunks.

pub mod chunk;
pub mod extract;

pub use extract::{detect, extract, Kind, Rejection};
