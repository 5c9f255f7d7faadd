use super::*;

/// The target-side script, run here with `sh`: as root it gives each file to its reader.
#[test]
fn secret_modes_script_gives_each_file_to_its_reader() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let root = crate::util::project_root();
    let stack = crate::stack::Stack::load(&root).unwrap();
    let stage = stack.stage("prod").unwrap();
    let dir = std::env::temp_dir().join(format!("xtask-remote-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["berth.toml", "postgres_password"] {
        std::fs::write(dir.join(f), "x").unwrap();
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let script = secret_modes_script(&stack, &stage, &dir.display().to_string());
    let run = || {
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    let meta = |f: &str| {
        let m = std::fs::metadata(dir.join(f)).unwrap();
        (m.mode() & 0o777, m.uid(), m.gid())
    };
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    if me == 0 {
        assert!(
            first.contains("berth.toml: 600 10001:10001 (was 644 0:0)"),
            "{first}"
        );
        assert_eq!(meta("berth.toml"), (0o600, 10001, 10001));
        assert_eq!(meta("postgres_password"), (0o600, 999, 999));
        assert!(!first.contains("loose"), "{first}");
    } else {
        assert_eq!(
            first.trim(),
            "loose",
            "not root: 0644 stays, and it says so"
        );
        assert_eq!(meta("berth.toml").0, 0o644);
    }
    assert_eq!(
        run().trim_end_matches("loose\n"),
        "",
        "a second run changes nothing"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
