//! Release builds embed the web UI from `frontend/dist` (see `src/routes/web.rs`). Cargo cannot
//! see that dependency by itself, so tell it: a rebuilt (or first built) UI re-embeds.
//! Debug builds read the UI from disk at run time, but only if the folder existed when they were
//! compiled (otherwise rust-embed serves nothing, ever): so the folder is made for them too.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return;
    };
    let frontend = PathBuf::from(manifest_dir).join("../frontend");
    let dist = frontend.join("dist");
    // Watching a path that does not exist would rerun this script at every build; an empty
    // folder (git ignores it) is watched quietly until the UI is built into it.
    if frontend.is_dir() && !dist.exists() {
        let _ = std::fs::create_dir_all(&dist);
    }
    // Debug builds read the files at run time; only release builds must re-embed on change.
    if dist.is_dir() && std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_none() {
        println!("cargo:rerun-if-changed={}", dist.display());
    }
}
