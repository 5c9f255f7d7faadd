use super::*;

/// The repository's stack file with `from` replaced by `to`, generated.
fn generate_with(from: &str, to: &str) -> Result<Vec<(String, String)>> {
    let root = crate::util::project_root();
    let text = std::fs::read_to_string(root.join(crate::stack::STACK_PATH)).unwrap();
    assert!(text.contains(from), "{from}");
    let stack = Stack::parse("stack.toml".into(), text.replacen(from, to, 1), &root)
        .unwrap_or_else(|e| panic!("{e}"));
    files(&stack)
}

#[test]
fn refuses_what_kubernetes_cannot_run_safely() {
    let err = |from: &str, to: &str| format!("{:#}", generate_with(from, to).unwrap_err());
    assert!(err(
        r#"connects_to = ["db", "redis", "ollama"]"#,
        r#"connects_to = ["db", "nosuch"]"#
    )
    .contains("`nosuch`, which is not a Kubernetes service"));
    // Ollama runs as root in compose: without a Kubernetes user it is refused.
    assert!(err(r#"user = "10002:10002""#, "")
        .contains("give [kubernetes.services.ollama] a non-root `user`"));
    assert!(err(r#"user = "10002:10002""#, r#"user = "0:0""#).contains("must not run as uid 0"));
    assert!(err(r#"database = "external""#, r#"database = "elsewhere""#)
        .contains("use \"statefulset\" or \"external\""));
    assert!(err(r#"db-data = "20Gi""#, r#"db-data = "lots""#).contains("give a size"));
    assert!(err(
        "[kubernetes.overlays.dev]\n",
        "[kubernetes.overlays.dev]\nautoscale = { min = 2, max = 3, cpu_percent = 50 }\n"
    )
    .contains("either `replicas` or `autoscale`"));
}

#[test]
fn output_is_deterministic_and_holds_no_secret_values() {
    let a = generate_with("namespace = \"berth\"", "namespace = \"berth\"").unwrap();
    let b = generate_with("namespace = \"berth\"", "namespace = \"berth\"").unwrap();
    assert_eq!(a, b);
    for (path, text) in &a {
        assert!(!text.contains("kind: Secret\n"), "{path} defines a Secret");
        assert!(!text.contains("postgres://"), "{path} holds a database URL");
    }
}

#[test]
fn converts_compose_units() {
    assert_eq!(seconds("1m30s").unwrap(), 90);
    assert!(seconds("5").is_err());
    assert_eq!(quantity("512m").unwrap(), "512Mi");
    assert_eq!(quantity("8g").unwrap(), "8Gi");
    assert!(quantity("8x").is_err());
    assert_eq!(millicores("0.5").unwrap(), 500);
    assert_eq!(ids("999:999").unwrap(), (999, 999));
    assert!(ids("root").is_err());
}

/// Migrations are their own step in every pod that opens the database: an init container runs
/// `berth migrate up` with the pod's settings, and the server applies none.
#[test]
fn app_and_worker_pods_migrate_in_an_init_container_and_serve_without_migrating() {
    let files = generate_with("namespace = \"berth\"", "namespace = \"berth\"").unwrap();
    for name in ["app", "worker"] {
        let (_, text) = files
            .iter()
            .find(|(path, _)| path.ends_with(&format!("base/{name}.yaml")))
            .unwrap_or_else(|| panic!("no base/{name}.yaml"));
        let docs = crate::util::k8s::parse_documents(text).unwrap();
        let pod =
            &docs.iter().find(|d| d["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"];
        let init = &pod["initContainers"][0];
        let server = &pod["containers"][0];
        assert_eq!(init["args"], json!(["migrate", "up"]), "{name}");
        assert_eq!(init["image"], server["image"], "{name}");
        assert_eq!(init["volumeMounts"], server["volumeMounts"], "{name}");
        assert!(init.get("readinessProbe").is_none() && init.get("ports").is_none());
        let env = server["env"].as_array().unwrap();
        assert!(
            env.contains(&json!({"name": "BERTH_MIGRATE", "value": "false"})),
            "{name}: {env:?}"
        );
    }
}
