//! What the task tests share.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The xtask binary this test run built.
pub const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// The repository root (xtask is its `xtask/` folder).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

/// A port of loopback nothing listens on (now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .unwrap()
        .port()
}

/// Under CI a suite that cannot run fails instead of skipping.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}
