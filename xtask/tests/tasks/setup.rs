//! `cargo xtask setup --no-up`: secrets generated once, with safe modes, never printed; the
//! second run changes nothing; `--rotate` replaces one secret and what derives from it.

use crate::support::XTASK;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

fn setup(secrets: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(XTASK)
        .args(["setup", "--no-up", "--non-interactive"])
        .args(extra)
        .env("BERTH_SECRETS_DIR", secrets)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every file's content, mode and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (String, u32, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (
                    std::fs::read_to_string(e.path()).unwrap(),
                    meta.permissions().mode() & 0o777,
                    meta.modified().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn setup_twice_changes_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let secrets = tmp.join("secrets");
    let (ok, said) = setup(&secrets, &[]);
    assert!(ok, "{said}");
    assert!(said.contains("generate"), "{said}");
    let first = snapshot(&secrets);
    assert!(first.contains_key("postgres_password"), "{first:?}");
    assert_eq!(
        std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // No secret value is printed.
    for (name, (content, _, _)) in &first {
        let value = content.trim();
        assert!(!said.contains(value), "{name}'s value was printed: {said}");
    }
    // Strong enough: 32 characters from a 62-letter alphabet.
    let pw = first["postgres_password"].0.trim().to_string();
    assert_eq!(pw.len(), 32);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));

    std::thread::sleep(std::time::Duration::from_millis(20));
    let (ok, said) = setup(&secrets, &[]);
    assert!(ok, "{said}");
    assert!(said.contains("nothing to do"), "{said}");
    assert_eq!(snapshot(&secrets), first, "the second run changed a file");

    // Rotation replaces the secret and the settings file made from it, nothing else.
    let (ok, said) = setup(&secrets, &["--rotate", "postgres_password"]);
    assert!(ok, "{said}");
    assert!(said.contains("restart") && said.contains("app"), "{said}");
    let rotated = snapshot(&secrets);
    assert_ne!(rotated["postgres_password"].0, first["postgres_password"].0);
    assert_ne!(rotated["berth.toml"].0, first["berth.toml"].0);
    assert!(rotated["berth.toml"]
        .0
        .contains(rotated["postgres_password"].0.trim()));
    assert_eq!(
        rotated["grafana_admin_password"],
        first["grafana_admin_password"]
    );

    let (ok, said) = setup(&secrets, &["--rotate", "nope"]);
    assert!(!ok && said.contains("no secret named"), "{said}");
}
