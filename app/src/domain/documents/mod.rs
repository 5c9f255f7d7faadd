//! Documents: what an upload is (detected from its bytes), its text, and its chunks.

pub mod budget;
pub mod chunk;
pub mod extract;
mod html;

pub use budget::{Budget, Checkpoint};
pub use extract::{detect, extract, sniff, Kind, Rejection};
