use clap::Parser;

use super::*;
use crate::{Cli, Task};

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
}

#[test]
fn backup_alone_creates_and_subcommands_parse() {
    assert!(matches!(
        parse(&["backup"]).unwrap().task,
        Task::Backup(Args { action: None, .. })
    ));
    assert!(matches!(
        parse(&["backup", "--stage", "local", "--keep", "3"])
            .unwrap()
            .task,
        Task::Backup(Args { action: None, .. })
    ));
    assert!(matches!(
        parse(&["backup", "list", "--stage", "local"]).unwrap().task,
        Task::Backup(Args {
            action: Some(Action::List(_)),
            ..
        })
    ));
    assert!(matches!(
        parse(&["restore", "x.tar.gz", "--yes"]).unwrap().task,
        Task::Restore(_)
    ));
    assert_eq!(parse(&["restore"]).unwrap_err().exit_code(), 2);
    assert_eq!(
        parse(&["backup", "--keep", "many"])
            .unwrap_err()
            .exit_code(),
        2
    );
}

#[test]
fn drill_and_secrets_parse() {
    match parse(&["backup", "drill"]).unwrap().task {
        Task::Backup(Args {
            action: Some(Action::Drill(d)),
            ..
        }) => {
            assert!(d.archive.is_none() && !d.dry_run);
            assert_eq!(d.at.stage, "prod");
        }
        other => panic!("{other:?}"),
    }
    match parse(&[
        "backup",
        "drill",
        "x.tar.gz",
        "--stage",
        "local",
        "--dry-run",
    ])
    .unwrap()
    .task
    {
        Task::Backup(Args {
            action: Some(Action::Drill(d)),
            ..
        }) => {
            assert_eq!(d.archive.as_deref(), Some(Path::new("x.tar.gz")));
            assert!(d.dry_run);
        }
        other => panic!("{other:?}"),
    }
    match parse(&[
        "backup",
        "--secrets",
        "--stage",
        "dev",
        "--passphrase-file",
        "p",
    ])
    .unwrap()
    .task
    {
        Task::Backup(Args {
            action: None,
            create,
        }) => {
            assert!(create.secrets);
            assert_eq!(create.passphrase_file.as_deref(), Some(Path::new("p")));
            assert_eq!(create.at.stage, "dev");
        }
        other => panic!("{other:?}"),
    }
    match parse(&["restore", "--secrets", "s.tar.age", "--force", "--dry-run"])
        .unwrap()
        .task
    {
        Task::Restore(r) => {
            assert_eq!(r.secrets.as_deref(), Some(Path::new("s.tar.age")));
            assert!(r.archive.is_none() && r.force && r.dry_run);
        }
        other => panic!("{other:?}"),
    }
    // A passphrase is never an argument; the secrets options need --secrets; a data archive
    // and a secrets file are not restored together.
    for bad in [
        &["backup", "--secrets", "--passphrase", "x"][..],
        &["backup", "--passphrase-file", "p"],
        &["backup", "--secrets", "--keep", "3"],
        &["restore", "--force"],
        &["restore", "a.tar.gz", "--secrets", "s.tar.age"],
        &["restore", "--secrets", "s.tar.age", "--yes"],
    ] {
        assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
    }
    for bad in [
        &["restore", "--force", "a.tar.gz"][..],
        &["restore", "a.tar.gz", "--passphrase-file", "p"],
    ] {
        let Task::Restore(args) = parse(bad).unwrap().task else {
            panic!("{bad:?}")
        };
        let err = restore(args).unwrap_err().to_string();
        assert!(err.contains("apply to --secrets"), "{bad:?}: {err}");
    }
}

#[test]
fn local_drill_runs_the_host_binary_on_the_newest_local_archive() {
    let runner = Runner::new(&Where {
        stage: "local".into(),
        project_name: None,
        data_dir: None,
        dir: Some("/tmp/b".into()),
    })
    .unwrap();
    assert!(runner.app_embedding_env().is_empty());
    let shown = show(&runner.command_with_env(
        &[
            "backup".into(),
            "drill".into(),
            "--stage".into(),
            "local".into(),
        ],
        &[("BERTH_EMBED_MODEL".into(), "m".into())],
    ));
    assert!(
        shown.ends_with(&format!(
            "berth backup drill --stage local --data-dir {}",
            dev_data_dir().display()
        )),
        "{shown}"
    );
    assert!(!shown.contains("BERTH_EMBED_MODEL=m"), "{shown}");
    assert!(SecretsPlace::new(&Where {
        stage: "local".into(),
        project_name: None,
        data_dir: None,
        dir: None,
    })
    .is_err());
}

#[test]
fn local_stage_runs_the_host_binary_on_the_dev_data() {
    let runner = Runner::new(&Where {
        stage: "local".into(),
        project_name: None,
        data_dir: None,
        dir: None,
    })
    .unwrap();
    let shown = show(&runner.command(&["backup".into(), "create".into()]));
    assert!(shown.ends_with(&format!(
        "berth backup create --data-dir {}",
        dev_data_dir().display()
    )));
    // Listing reads the archives only: it takes no data directory.
    let shown = show(&runner.command(&["backup".into(), "list".into()]));
    assert!(shown.ends_with("berth backup list"), "{shown}");
}
