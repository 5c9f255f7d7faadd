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
