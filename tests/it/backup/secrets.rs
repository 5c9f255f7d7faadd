//! The secrets archive: sealed with a passphrase, opened with private modes, refused when wrong or
//! damaged, and kept apart from the data archives.

use super::*;

const PASSPHRASE: &str = "correct horse battery staple";

/// `berth backup secrets ARGS` with `env`: its output.
fn secrets(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["backup", "secrets"])
        .args(args)
        .env_remove("BERTH_BACKUP_PASSPHRASE")
        .env_remove("BERTH_BACKUP_DIR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run berth backup secrets")
}

/// Every file under `dir` (relative path → bytes).
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                pending.push((entry.path(), format!("{name}/")));
            } else {
                out.insert(name, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    out
}

/// A secrets directory like the stack's, sealed into `out`: (the directory, the sealed file).
fn sealed_secrets(root: &Path, out: &Path) -> (PathBuf, PathBuf) {
    let dir = root.join("secrets");
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join("postgres_password"), "s3cret-db-password\n").unwrap();
    std::fs::write(
        dir.join("berth.toml"),
        "database_url = \"postgres://berth:s3cret@db:5432/berth\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tls/privkey.pem"),
        b"-----BEGIN PRIVATE KEY-----\n",
    )
    .unwrap();
    let out_s = out.to_str().unwrap();
    let result = secrets(
        &[
            "seal",
            "--from",
            dir.to_str().unwrap(),
            "--dir",
            out_s,
            "--stage",
            "prod",
        ],
        &[("BERTH_BACKUP_PASSPHRASE", PASSPHRASE)],
    );
    assert!(result.status.success(), "{}", text(&result));
    let sealed = PathBuf::from(String::from_utf8_lossy(&result.stdout).trim());
    (dir, sealed)
}

#[test]
fn secrets_seal_and_open_round_trip_with_private_modes() {
    let root = tempfile::tempdir().unwrap();
    let (dir, sealed) = sealed_secrets(root.path(), &root.path().join("backups"));
    let name = sealed.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("berth-secrets-prod-") && name.ends_with(".tar.age"),
        "{name}"
    );
    assert_eq!(mode(&sealed), 0o600);
    // Encrypted: no secret is readable in the file.
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!String::from_utf8_lossy(&bytes).contains("s3cret"));
    // No temporary file is left beside it.
    assert_eq!(
        std::fs::read_dir(sealed.parent().unwrap()).unwrap().count(),
        1
    );

    // Opened on "a new machine": a directory that does not exist yet, passphrase from a file.
    let pass_file = root.path().join("passphrase");
    std::fs::write(&pass_file, format!("{PASSPHRASE}\n")).unwrap();
    let restored = root.path().join("new-machine/secrets");
    let args = [
        "open",
        sealed.to_str().unwrap(),
        "--to",
        restored.to_str().unwrap(),
        "--passphrase-file",
        pass_file.to_str().unwrap(),
    ];
    let out = secrets(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(PASSPHRASE), "{}", text(&out));
    assert_eq!(tree(&restored), tree(&dir));
    assert_eq!(mode(&restored), 0o700);
    for file in ["postgres_password", "berth.toml", "tls/privkey.pem"] {
        assert_eq!(mode(&restored.join(file)), 0o600, "{file}");
    }

    // Again: identical files are left alone. A changed one is refused without --force…
    let out = secrets(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(restored.join("postgres_password"), "changed since\n").unwrap();
    let out = secrets(&args, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("postgres_password"), "{}", text(&out));
    assert_eq!(
        std::fs::read(restored.join("postgres_password")).unwrap(),
        b"changed since\n"
    );
    // …and overwritten with it.
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = secrets(&forced, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(tree(&restored), tree(&dir));

    // A passphrase shorter than 12 characters is refused for sealing; nothing is written.
    let out = secrets(
        &[
            "seal",
            "--from",
            dir.to_str().unwrap(),
            "--dir",
            root.path().join("other").to_str().unwrap(),
        ],
        &[("BERTH_BACKUP_PASSPHRASE", "too-short")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("too short"), "{}", text(&out));
    assert!(!root.path().join("other").exists());
    // Without any passphrase and no terminal: told how to give one.
    let out = secrets(
        &[
            "seal",
            "--from",
            dir.to_str().unwrap(),
            "--dir",
            root.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--passphrase-file"), "{}", text(&out));
}

#[test]
fn a_wrong_passphrase_or_a_damaged_secrets_file_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (_, sealed) = sealed_secrets(root.path(), &root.path().join("backups"));
    let bytes = std::fs::read(&sealed).unwrap();
    let target = root.path().join("restored");
    let open = |file: &Path, passphrase: &str| {
        secrets(
            &[
                "open",
                file.to_str().unwrap(),
                "--to",
                target.to_str().unwrap(),
            ],
            &[("BERTH_BACKUP_PASSPHRASE", passphrase)],
        )
    };

    let out = open(&sealed, "not the right passphrase");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("wrong passphrase"), "{}", text(&out));
    assert!(!target.exists());

    // One byte flipped: in the header, in the middle of the payload, in the last byte.
    let header_end = bytes.windows(4).position(|w| w == b"\n---").unwrap();
    for (what, at) in [
        ("header", header_end / 2),
        ("payload", (header_end + bytes.len()) / 2),
        ("last byte", bytes.len() - 1),
    ] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        let path = root.path().join(format!("flipped-{at}.tar.age"));
        std::fs::write(&path, &damaged).unwrap();
        let out = open(&path, PASSPHRASE);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        assert!(
            text(&out).contains("nothing was written"),
            "{what}: {}",
            text(&out)
        );
        assert!(!target.exists(), "{what}");
    }
    // Truncated.
    let path = root.path().join("truncated.tar.age");
    std::fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
    let out = open(&path, PASSPHRASE);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!target.exists());
    // Not an age file at all.
    let path = root.path().join("plain.tar.age");
    std::fs::write(&path, b"hello\n").unwrap();
    let out = open(&path, PASSPHRASE);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not a sealed secrets file"),
        "{}",
        text(&out)
    );
    assert!(!target.exists());
}

#[test]
fn data_archive_listing_and_rotation_leave_secrets_files_alone() {
    let site = Site::new();
    create_admin(&site.data(), "root", PW);
    let (_, sealed) = sealed_secrets(site.dir.path(), &site.backups());
    // A stage named like the secrets prefix must not confuse anything either.
    for _ in 0..3 {
        backup(&site.data(), &site.backups(), &["--keep", "1"]);
    }
    let mut args = vec![
        "backup", "create", "--stage", "secrets", "--keep", "1", "--dir",
    ];
    let backups = site.backups();
    args.push(backups.to_str().unwrap());
    let out = berth(&args, &site.data());
    assert!(out.status.success(), "{}", text(&out));
    assert!(sealed.exists(), "rotation deleted the secrets file");
    let archives = archives(&site.backups());
    assert_eq!(archives.len(), 2, "{archives:?}");
    let out = list_archives(&backups);
    let listed = text(&out);
    assert!(out.status.success(), "{listed}");
    assert!(!listed.contains(".tar.age"), "{listed}");
    assert!(!listed.contains("UNREADABLE"), "{listed}");
    assert_eq!(listed.lines().count(), 2, "{listed}");
}
