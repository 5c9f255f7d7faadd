//! The deploy's migration step. The new release runs beside the old one on one database, so
//! its migrations run as their own step before it starts, and a **contract** migration (one the
//! old release cannot work with) is refused while the old release serves, unless the operator
//! says `--allow-contract`. The release's migrations are asked of its image (`berth migrate
//! list`, no database needed); the database's from the target's PostgreSQL.

use super::*;

/// One migration a release carries (`berth migrate list`).
#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct Known {
    pub(super) version: i64,
    pub(super) description: String,
    pub(super) kind: String,
}

impl Known {
    fn show(&self) -> String {
        format!("{} {} ({})", self.version, self.description, self.kind)
    }
}

/// The migrations `image` carries, asked of the local image.
pub(super) fn release_migrations(image: &str) -> Result<Vec<Known>> {
    let sh = xshell::Shell::new()?;
    let command = xshell::cmd!(sh, "docker run --rm --network none {image} migrate list");
    let out = crate::util::process::read_cmd(command)
        .with_context(|| format!("asking {image} for its migrations (`berth migrate list`)"))?;
    serde_json::from_str(&out).with_context(|| format!("{image}'s `berth migrate list`: {out}"))
}

/// The versions the target's database has applied: none when it has no schema yet.
pub(super) fn applied_versions(t: &Target, l: &Layout) -> Result<Vec<i64>> {
    let (user, name) = database_user_and_name(t);
    let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    let script = format!(
        "{} 2>&1",
        l.compose(
            "unused",
            &format!(
                "exec -T db psql --no-psqlrc --tuples-only --no-align --username={} --dbname={} --command={}",
                quote(&user),
                quote(&name),
                quote(sql)
            )
        )
    );
    let out = t.remote.run(&script, None)?;
    if !out.ok() {
        if out.stdout.contains("does not exist") {
            return Ok(Vec::new());
        }
        bail!(
            "cannot read the applied migrations on target `{}`: {}",
            t.name,
            out.stdout.trim()
        );
    }
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse()
                .with_context(|| format!("a migration version from psql: {l}"))
        })
        .collect()
}

/// What the deploy will apply; refuses a pending contract migration while `serving` (the
/// previous release) runs, unless `allow_contract`.
pub(super) fn plan<'a>(
    release: &'a [Known],
    applied: &[i64],
    serving: Option<&str>,
    allow_contract: bool,
) -> Result<Vec<&'a Known>> {
    let pending: Vec<&Known> = release
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect();
    let contract: Vec<String> = pending
        .iter()
        .filter(|m| m.kind != "expand")
        .map(|m| m.show())
        .collect();
    if let (Some(serving), false, false) = (serving, contract.is_empty(), allow_contract) {
        bail!(
            "refusing to deploy: this release carries contract migration(s) {} that the \
             database lacks, and release {serving} still serves on it. The new release runs \
             beside the old one during the switch, and the old one cannot work on the schema a \
             contract migration leaves. Stop the previous release first (expect an outage), or \
             pass --allow-contract to apply it anyway. Nothing was changed",
            contract.join(", ")
        );
    }
    Ok(pending)
}

/// Applies the release's pending migrations with its own image, before it starts.
pub(super) fn apply(t: &Target, l: &Layout, image: &str, allow_contract: bool) -> Result<()> {
    println!("deploy: applying the release's migrations (berth migrate up)");
    let flag = if allow_contract {
        " --allow-contract"
    } else {
        ""
    };
    let out = t.remote.must(
        "applying the migrations",
        &format!(
            "{} 2>&1",
            l.compose(
                image,
                &format!("run --rm --no-deps {APP_SERVICE} migrate up{flag}")
            )
        ),
    )?;
    for line in out.lines().filter(|l| l.starts_with("migrate:")) {
        println!("deploy: {line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Vec<Known> {
        [
            (6, "bm25", "expand"),
            (20270101000000, "drop old column", "contract"),
        ]
        .into_iter()
        .map(|(version, description, kind)| Known {
            version,
            description: description.into(),
            kind: kind.into(),
        })
        .collect()
    }

    #[test]
    fn a_contract_migration_is_refused_while_the_previous_release_serves() {
        let release = release();
        let err = plan(&release, &[6], Some("0.1.0"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("20270101000000 drop old column (contract)")
                && err.contains("release 0.1.0 still serves")
                && err.contains("--allow-contract"),
            "{err}"
        );
    }

    #[test]
    fn a_contract_migration_goes_ahead_when_allowed_or_nothing_serves() {
        let release = release();
        let pending = plan(&release, &[6], Some("0.1.0"), true).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(plan(&release, &[], None, false).unwrap().len(), 2);
        assert!(plan(&release, &[6, 20270101000000], Some("0.1.0"), false)
            .unwrap()
            .is_empty());
    }
}
