use super::*;

#[test]
fn pins() {
    assert!(is_pinned("redis:8.0") && is_pinned("ghcr.io/a/b:1.2") && is_pinned("x@sha256:abc"));
    assert!(!is_pinned("redis") && !is_pinned("redis:latest") && !is_pinned("localhost:5000/x"));
}

#[test]
fn dockerfile_stages_and_args() {
    let (stages, args) = dockerfile_facts(
        "ARG BASE=debian\nFROM ${BASE} AS build\nARG VERSION=1 \\\n  REVISION\nfrom scratch as Runtime\n",
    );
    assert_eq!(
        stages,
        BTreeSet::from(["build".to_string(), "runtime".to_string()])
    );
    assert_eq!(
        args,
        BTreeSet::from([
            "BASE".to_string(),
            "VERSION".to_string(),
            "REVISION".to_string()
        ])
    );
}
