use super::*;

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
