use super::*;

#[test]
fn reads_both_ps_formats() {
    let line = r#"{"Name":"berth-app-1","Service":"app","State":"running","Health":"healthy","ExitCode":0,"Publishers":[{"URL":"127.0.0.1","TargetPort":8080,"PublishedPort":8080,"Protocol":"tcp"}]}"#;
    let one = parse_ps(line).unwrap();
    assert_eq!(one[0].service, "app");
    assert_eq!(one[0].publishers.as_ref().unwrap()[0].published_port, 8080);
    let array = format!("[{line}]");
    assert_eq!(parse_ps(&array).unwrap(), one);
    assert!(parse_ps("\n").unwrap().is_empty());
}

#[test]
fn env_files_are_read_like_compose_reads_them() {
    let vars = parse_env_file("# c\nA=1\nexport B=\"two words\"\n\nC='x'\nbad line\n");
    assert_eq!(vars["A"], "1");
    assert_eq!(vars["B"], "two words");
    assert_eq!(vars["C"], "x");
    assert_eq!(vars.len(), 3);
}

#[test]
fn passwords_are_random_alphanumerics() {
    let a = random_password(32).unwrap();
    let b = random_password(32).unwrap();
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(a, b);
}

fn stack_with(from: &str, to: &str) -> Stack {
    let root = crate::util::project_root();
    let text = fs::read_to_string(root.join(crate::stack::STACK_PATH)).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    Stack::parse(
        crate::stack::STACK_PATH.into(),
        text.replacen(from, to, 1),
        &root,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn real_stack() -> Stack {
    Stack::load(&crate::util::project_root()).unwrap()
}

const ROOT: Rights = Rights {
    root: true,
    uid: 0,
    remapped: None,
};

#[test]
fn each_secret_belongs_to_the_user_of_the_services_that_mount_it() {
    let stack = real_stack();
    for stage in ["prod", "dev"] {
        let stage = stack.stage(stage).unwrap();
        // app and backup both run as 10001:10001.
        assert_eq!(
            secret_access(&stage, "berth_config"),
            SecretAccess::Owner {
                uid: 10001,
                gid: Some(10001)
            }
        );
        assert_eq!(
            secret_access(&stage, "postgres_password"),
            SecretAccess::Owner {
                uid: 999,
                gid: Some(999)
            }
        );
        assert_eq!(
            secret_access(&stage, "grafana_admin_password"),
            SecretAccess::Owner {
                uid: 472,
                gid: Some(0)
            }
        );
        assert_eq!(
            secret_access(&stage, "nobody_mounts_this"),
            SecretAccess::Unmounted
        );
    }
}

#[test]
fn readers_with_different_uids_share_a_group_or_fall_back_to_0644() {
    // redis (999:999) reads berth_config too: app and backup are 10001:10001.
    let stack = stack_with(
        "command = [\"redis-server\"",
        "secrets = [\"berth_config\"]\ncommand = [\"redis-server\"",
    );
    let access = secret_access(&stack.stage("prod").unwrap(), "berth_config");
    let SecretAccess::World(why) = &access else {
        panic!("{access:?}")
    };
    assert!(
        why.contains("`app` (10001:10001)") && why.contains("`redis` (999:999)"),
        "{why}"
    );
    assert_eq!(SecretFile::of(&access, &ROOT).mode, 0o644);

    // The same, with redis in group 10001: 0640 root:10001.
    let stack = stack_with(
        "user = \"999:999\"\ncommand = [\"redis-server\"",
        "user = \"999:10001\"\nsecrets = [\"berth_config\"]\ncommand = [\"redis-server\"",
    );
    let access = secret_access(&stack.stage("prod").unwrap(), "berth_config");
    assert_eq!(access, SecretAccess::Group { gid: 10001 });
    let file = SecretFile::of(&access, &ROOT);
    assert_eq!(
        (file.mode, file.uid, file.gid),
        (0o640, Some(0), Some(10001))
    );

    // Root without capabilities reads as uid 0 / gid 0; grafana (472:0) shares gid 0.
    let stack = stack_with(
        "description = \"Ollama on the CPU\"\n",
        "description = \"Ollama on the CPU\"\nsecrets = [\"grafana_admin_password\"]\n",
    );
    let access = secret_access(&stack.stage("prod").unwrap(), "grafana_admin_password");
    assert_eq!(access, SecretAccess::Group { gid: 0 });
}

#[test]
fn only_root_gives_files_away() {
    let owner = SecretAccess::Owner {
        uid: 999,
        gid: Some(999),
    };
    let root = SecretFile::of(&owner, &ROOT);
    assert_eq!(
        (root.mode, root.uid, root.gid),
        (0o600, Some(999), Some(999))
    );
    assert_eq!(root.describe(), "0600, owner 999:999");
    let user = Rights {
        root: false,
        uid: 1000,
        remapped: None,
    };
    let mine = SecretFile::of(&owner, &user);
    assert_eq!((mine.mode, mine.uid), (0o644, None));
    assert!(mine.limited_by_rights);
    // An operator whose uid is the service's needs no chown.
    let same = Rights {
        root: false,
        uid: 999,
        remapped: None,
    };
    assert_eq!(SecretFile::of(&owner, &same).mode, 0o600);
    // Unmounted secrets are 0600 for anyone.
    assert_eq!(SecretFile::of(&SecretAccess::Unmounted, &user).mode, 0o600);
    // Remapped uids: a chown to 999 would reach the wrong user.
    let remapped = Rights {
        root: true,
        uid: 0,
        remapped: Some("userns".into()),
    };
    let file = SecretFile::of(&owner, &remapped);
    assert_eq!(
        (file.mode, file.uid, file.limited_by_rights),
        (0o644, None, false)
    );
    assert_eq!(file.describe(), "0644: userns");
}

fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("xtask-secrets-{name}-"))
        .tempdir()
        .unwrap()
}

fn mode_of(path: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn secrets_are_made_then_left_alone_and_loose_files_are_tightened() {
    let stack = real_stack();
    let stage = stack.stage("prod").unwrap();
    let base = scratch("user");
    let dir = base.path().join("secrets");
    // As a user that is not root (whoever we really are, chown is never attempted).
    let me = Rights {
        root: false,
        uid: effective_uid(),
        remapped: None,
    };
    let dry = ensure_secrets_as(&dir, &stack, &stage, &me, true).unwrap();
    assert!(!dir.exists(), "a dry run writes nothing");
    let done = ensure_secrets_as(&dir, &stack, &stage, &me, false).unwrap();
    assert_eq!(dry, done);
    assert!(done[0].starts_with("create "), "{done:?}");
    assert!(done
        .iter()
        .any(|l| l.starts_with("generate ") && l.contains("; 0644)")));
    assert!(
        done.last().unwrap().contains("protects them")
            && done.last().unwrap().contains("setup --no-up` as root"),
        "one line says how to get 0600: {done:?}"
    );
    assert_eq!(mode_of(&dir).0, 0o700);
    assert_eq!(mode_of(&dir.join("postgres_password")).0, 0o644);
    let config = fs::read_to_string(dir.join("berth.toml")).unwrap();
    let password = fs::read_to_string(dir.join("postgres_password")).unwrap();
    assert!(config.contains(&format!(":{password}@db:5432/")));
    assert!(
        ensure_secrets_as(&dir, &stack, &stage, &me, false)
            .unwrap()
            .is_empty(),
        "a re-run that changes nothing says nothing"
    );
    // Opened up by hand: taken back to 0644 (and the directory to 0700).
    fs::set_permissions(dir.join("berth.toml"), fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let done = ensure_secrets_as(&dir, &stack, &stage, &me, false).unwrap();
    assert_eq!(done.len(), 3, "{done:?}");
    assert!(done[0].contains("to 0700 (was 0755)"), "{done:?}");
    assert!(
        done[1].contains("berth.toml to 0644") && done[1].contains("(was 0666"),
        "{done:?}"
    );
    assert_eq!(mode_of(&dir.join("berth.toml")).0, 0o644);
    assert_eq!(fs::read_to_string(dir.join("berth.toml")).unwrap(), config);
}

#[test]
fn as_root_each_file_is_0600_and_owned_by_its_reader() {
    if effective_uid() != 0 {
        eprintln!("not root: the chown half of the secrets policy is not exercised here");
        return;
    }
    let stack = real_stack();
    let stage = stack.stage("prod").unwrap();
    let base = scratch("root");
    let dir = base.path().join("secrets");
    let done = ensure_secrets_as(&dir, &stack, &stage, &ROOT, false).unwrap();
    assert!(
        done.iter().all(|l| !l.contains("protects them")),
        "{done:?}"
    );
    assert_eq!(mode_of(&dir.join("berth.toml")), (0o600, 10001, 10001));
    assert_eq!(mode_of(&dir.join("postgres_password")), (0o600, 999, 999));
    assert_eq!(
        mode_of(&dir.join("grafana_admin_password")),
        (0o600, 472, 0)
    );
    assert!(ensure_secrets_as(&dir, &stack, &stage, &ROOT, false)
        .unwrap()
        .is_empty());
    // Files of the 0644 era are taken in hand on the next run.
    let old = dir.join("postgres_password");
    std::os::unix::fs::chown(&old, Some(0), Some(0)).unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).unwrap();
    let done = ensure_secrets_as(&dir, &stack, &stage, &ROOT, true).unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(mode_of(&old), (0o644, 0, 0), "a dry run changes nothing");
    let done = ensure_secrets_as(&dir, &stack, &stage, &ROOT, false).unwrap();
    assert!(
        done[0].ends_with("postgres_password to 0600, owner 999:999 (was 0644, owner 0:0)"),
        "{done:?}"
    );
    assert_eq!(mode_of(&old), (0o600, 999, 999));
}

#[test]
fn paths_normalize() {
    assert_eq!(
        normalize(Path::new("/r/docker/../secrets")),
        PathBuf::from("/r/secrets")
    );
}
