//! The stack file's checks, each shown on a broken copy of the real deploy/stack.toml: the error
//! must name the file, the line and column of the culprit, and what was expected.

use super::*;
use crate::util::project_root;

fn real_text() -> String {
    std::fs::read_to_string(project_root().join(STACK_PATH)).unwrap()
}

/// Errors of the real stack file with `from` replaced by `to` (which must occur once).
fn errors_with(from: &str, to: &str) -> String {
    let text = real_text();
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    let broken = text.replacen(from, to, 1);
    match Stack::parse(STACK_PATH.into(), broken, &project_root()) {
        Ok(_) => panic!("replacing {from:?} with {to:?} should have been refused"),
        Err(e) => e.to_string(),
    }
}

/// `deploy/stack.toml:LINE:COL` of the first occurrence of `needle` in the broken text.
fn location(from: &str, to: &str, needle: &str) -> String {
    let broken = real_text().replacen(from, to, 1);
    let source = Source {
        name: STACK_PATH.into(),
        text: broken.clone(),
    };
    let (line, col) = source.line_col(broken.find(needle).expect("needle in text"));
    format!("{STACK_PATH}:{line}:{col}")
}

#[test]
fn the_real_stack_file_is_valid() {
    let stack = Stack::load(&project_root()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.stage_names(), ["dev", "prod"]);
    for p in ["cpu", "gpu", "monitoring", "proxy", "full"] {
        assert!(
            stack.profile_names().contains(&p.to_string()),
            "profile {p}"
        );
    }
}

#[test]
fn unknown_keys_are_refused_with_their_place_and_the_expected_keys() {
    let err = errors_with("[services.redis]\n", "[services.redis]\nimagee = \"x\"\n");
    let at = location(
        "[services.redis]\n",
        "[services.redis]\nimagee = \"x\"\n",
        "imagee",
    );
    assert!(
        err.contains(&format!("{at}: error: unknown field `imagee`")),
        "{err}"
    );
    assert!(
        err.contains("= expected one of `description`, `image`, `build`"),
        "{err}"
    );
    assert!(
        err.contains("imagee = \"x\"\n  |") || err.contains("| imagee = \"x\""),
        "{err}"
    );
}

#[test]
fn type_errors_have_a_place() {
    let err = errors_with("retries = 5\n", "retries = \"five\"\n");
    let at = location("retries = 5\n", "retries = \"five\"\n", "\"five\"");
    assert!(
        err.contains(&format!("{at}: error: invalid type: string \"five\"")),
        "{err}"
    );
    assert!(err.contains("expected u32"), "{err}");
}

#[test]
fn a_dependency_on_an_undefined_service_is_refused() {
    let from = "depends_on = [\"db\", \"redis\"";
    let to = "depends_on = [\"dbb\", \"redis\"";
    let err = errors_with(from, to);
    let at = location(from, to, "\"dbb\"");
    assert!(
        err.contains(&format!(
            "{at}: error: service `app` depends on an undefined service `dbb`"
        )),
        "{err}"
    );
    assert!(
        err.contains("= expected one of `app`, `backup`, `db`, "),
        "{err}"
    );
}

#[test]
fn a_port_clash_is_refused() {
    let from = "host = \"${BERTH_PROMETHEUS_PORT}\"";
    let to = "host = \"${BERTH_HTTP_PORT}\"";
    let err = errors_with(from, to);
    assert!(
        err.contains(
            "port clash in stage `dev`: service `prometheus` publishes 127.0.0.1:8080/tcp, as service `app` does"
        ),
        "{err}"
    );
    // Pointing at prometheus' port entry.
    let at = location(from, to, "{ container = 9090");
    assert!(err.contains(&format!("{at}: error: port clash")), "{err}");
}

#[test]
fn services_that_never_run_together_may_share_a_port() {
    // ollama and ollama-gpu (conflicting profiles) publishing the same dev port is fine.
    let text = real_text().replacen(
        "[stages.dev.services.ollama]\n",
        "[stages.dev.services.ollama-gpu]\nports = [{ container = 11434, host = \"${BERTH_OLLAMA_PORT}\", bind = \"127.0.0.1\" }]\n\n[stages.dev.services.ollama]\n",
        1,
    );
    if let Err(e) = Stack::parse(STACK_PATH.into(), text, &project_root()) {
        panic!("{e}");
    }
}

#[test]
fn a_missing_secret_is_refused() {
    let from = "secrets = [\"postgres_password\"]";
    let to = "secrets = [\"postgres_pasword\"]";
    let err = errors_with(from, to);
    let at = location(from, to, "\"postgres_pasword\"");
    assert!(
        err.contains(&format!(
            "{at}: error: service `db` uses an undeclared secret `postgres_pasword`"
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "= expected one of `berth_config`, `grafana_admin_password`, `postgres_password`"
        ),
        "{err}"
    );
}

#[test]
fn an_unknown_profile_is_refused() {
    let from = "profiles = [\"monitoring\"]\nuser = \"65534:65534\"";
    let to = "profiles = [\"monitor\"]\nuser = \"65534:65534\"";
    let err = errors_with(from, to);
    let at = location(from, to, "\"monitor\"");
    assert!(
        err.contains(&format!("{at}: error: no profile named `monitor`")),
        "{err}"
    );
}

#[test]
fn an_undeclared_variable_is_refused() {
    let from = "BERTH_LOG_LEVEL = \"${BERTH_LOG_LEVEL}\"";
    let to = "BERTH_LOG_LEVEL = \"${BERTH_LOGLEVEL}\"";
    let err = errors_with(from, to);
    let at = location(from, to, "${BERTH_LOGLEVEL}");
    assert!(
        err.contains(&format!(
            "{at}: error: undeclared variable `BERTH_LOGLEVEL`"
        )),
        "{err}"
    );
}

#[test]
fn hardening_rules_are_enforced() {
    // No health check on a long-running service.
    let err = errors_with("healthcheck = { test = [\"redis-cli\", \"ping\"] }\n", "");
    assert!(err.contains("service `redis` has no health check"), "{err}");
    // Root without a reason.
    let err = errors_with(
        "image = \"redis:8.0\"\ndata = true\nuser = \"999:999\"\n",
        "image = \"redis:8.0\"\ndata = true\nuser = \"0:0\"\n",
    );
    assert!(err.contains("service `redis` runs as root"), "{err}");
    // A data service published in prod.
    let err = errors_with(
        "healthcheck = { test = [\"redis-cli\", \"ping\"] }\n",
        "healthcheck = { test = [\"redis-cli\", \"ping\"] }\nports = [{ container = 6379, host = 6379 }]\n",
    );
    assert!(
        err.contains("data service `redis` publishes a port in stage `prod`"),
        "{err}"
    );
    // Unpinned images.
    let err = errors_with("image = \"redis:8.0\"", "image = \"redis\"");
    assert!(err.contains("image `redis` is not pinned"), "{err}");
    // A malformed reference is refused as it is read, at its place, with the form expected.
    let err = errors_with("image = \"redis:8.0\"", "image = \"Redis:8.0\"");
    assert!(
        err.contains("invalid image reference `Redis:8.0` (its name part `Redis` is not")
            && err.contains("[REGISTRY/]NAME[:TAG][@sha256:DIGEST]"),
        "{err}"
    );
    assert!(
        err.contains(&location(
            "image = \"redis:8.0\"",
            "image = \"Redis:8.0\"",
            "\"Redis:8.0\""
        )),
        "{err}"
    );
}

#[test]
fn a_required_dependency_must_run_whenever_its_dependant_does() {
    let from = "{ service = \"ollama-pull\", optional = true }";
    let to = "\"ollama-pull\"";
    let err = errors_with(from, to);
    assert!(
        err.contains("service `app` can run without `ollama-pull`"),
        "{err}"
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let text = real_text()
        .replacen("image = \"redis:8.0\"", "image = \"redis\"", 1)
        .replacen(
            "networks = [\"edge\"]\ndepends_on = [\"app\"]",
            "networks = [\"edgy\"]\ndepends_on = [\"app\"]",
            1,
        );
    let err = Stack::parse(STACK_PATH.into(), text, &project_root())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("is not pinned") && err.contains("no network named `edgy`"),
        "{err}"
    );
    assert!(
        err.starts_with("2 errors in deploy/stack.toml:\n\n"),
        "{err}"
    );
}

#[test]
fn profiles_resolve_with_inclusions_and_conflicts() {
    let stack = Stack::load(&project_root()).unwrap();
    let full = stack.profiles(&["full".into()]).unwrap();
    assert_eq!(
        full.into_iter().collect::<Vec<_>>(),
        ["cpu", "full", "monitoring", "proxy"]
    );
    let err = stack
        .profiles(&["full".into(), "gpu".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot run together"), "{err}");
    let err = stack.profiles(&["gpus".into()]).unwrap_err().to_string();
    assert!(
        err.contains("no profile `gpus`") && err.contains("cpu, full, gpu"),
        "{err}"
    );
}

#[test]
fn generated_compose_files_are_hardened() {
    let stack = Stack::load(&project_root()).unwrap();
    for (path, text) in stack.generate() {
        if !path.ends_with(".yaml") {
            continue;
        }
        let services = text.matches("\n    image: ").count();
        assert!(services >= 9, "{path}: {services} services");
        for must in [
            "    cap_drop:\n      - ALL\n",
            "    security_opt:\n      - \"no-new-privileges:true\"\n",
            "    read_only: true\n",
            "    deploy:\n      resources:\n        limits:\n",
        ] {
            assert_eq!(
                text.matches(must).count(),
                services,
                "{path}: every service has {must:?}"
            );
        }
        // Every published port binds to an address (127.0.0.1 unless configured).
        assert_eq!(
            text.matches("      - host_ip: ").count(),
            text.matches("        published: ").count()
        );
    }
    let prod = stack
        .generate()
        .into_iter()
        .find(|(p, _)| p == "docker/compose.yaml")
        .unwrap()
        .1;
    let db = &prod[prod.find("\n  db:\n").unwrap()..prod.find("\n  grafana:\n").unwrap()];
    assert!(!db.contains("ports:"), "db is not published in prod");
}

#[test]
fn a_malformed_value_is_refused_where_it_is_with_the_form_expected() {
    let from = "stop_grace_period = \"30s\"";
    let to = "stop_grace_period = \"30\"";
    let err = errors_with(from, to);
    let at = location(from, to, "\"30\"");
    assert!(
        err.contains(&format!("{at}: error: invalid duration `30`")),
        "{err}"
    );
    assert!(err.contains("= expected a duration such as `30s`"), "{err}");

    let err = errors_with("restart = \"unless-stopped\"", "restart = \"sometimes\"");
    assert!(err.contains("unknown variant `sometimes`"), "{err}");
    assert!(err.contains("`on-failure`"), "{err}");
}
