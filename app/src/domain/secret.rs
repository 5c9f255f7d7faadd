//! Random secrets (session ids, CSRF and API tokens) and the hashes they are stored as.

use base64::Engine;
use sha2::{Digest, Sha256};

/// What every personal API token starts with, so that scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "berth_";

/// `bytes` random bytes from the OS, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Secrets are stored only as hashes: a stolen database yields no usable session or token.
pub fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares without returning early, so the time taken says nothing of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
