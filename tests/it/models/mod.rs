//! `berth models pull|list` against a stand-in for the Hugging Face Hub serving the real
//! all-MiniLM-L6-v2 (from `cargo xtask fixtures`).

use std::path::Path;
use std::process::Command;

use crate::support::hub::HubFake;
use crate::support::BIN;

const REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
const COMMIT_1: &str = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf";
const COMMIT_2: &str = "1111111111111111111111111111111111111111";

/// Runs `berth models ARGS` for `data`: (exit code, stdout, stderr).
fn models(data: &Path, hub: &HubFake, args: &[&str]) -> (i32, String, String) {
    models_with(data, hub, args, &[])
}

fn models_with(
    data: &Path,
    hub: &HubFake,
    args: &[&str],
    env: &[(&str, &Path)],
) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("models")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("BERTH_HUB_URL", &hub.url)
        .envs(env.iter().copied())
        .output()
        .expect("run berth models");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hub() -> HubFake {
    let hub = HubFake::start();
    hub.serve(REPO, COMMIT_1, &berth_embed::test_model_dir());
    hub
}

fn placed(data: &Path) -> std::path::PathBuf {
    data.join("models").join(REPO)
}

fn manifest(data: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(placed(data).join("berth-model.json")).unwrap()).unwrap()
}

fn leftovers(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("models"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn a_pulled_model_is_checked_placed_and_recorded() {
    let data = tempfile::tempdir().unwrap();
    let hub = hub();
    let (code, out, err) = models(data.path(), &hub, &["pull", REPO]);
    assert_eq!(code, 0, "pull failed: {out}{err}");
    let dir = placed(data.path());
    for f in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "1_Pooling/config.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} was not placed");
    }
    assert!(
        !dir.join("README.md").exists(),
        "files the embedder does not read are skipped"
    );
    let m = manifest(data.path());
    assert_eq!(m["commit"], COMMIT_1);
    let weights = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "model.safetensors")
        .expect("the weights are in the manifest");
    assert_eq!(weights["sha256"].as_str().unwrap().len(), 64);
    assert!(leftovers(data.path()).is_empty(), "staging left behind");
}

#[test]
fn a_pull_of_the_commit_in_place_downloads_nothing() {
    let data = tempfile::tempdir().unwrap();
    let hub = hub();
    assert_eq!(models(data.path(), &hub, &["pull", REPO]).0, 0);
    let (code, out, _) = models(data.path(), &hub, &["pull", REPO]);
    assert_eq!(code, 0);
    assert!(out.contains("up to date"), "{out}");
}

#[test]
fn a_corrupted_download_keeps_the_model_in_place() {
    let data = tempfile::tempdir().unwrap();
    let hub = hub();
    assert_eq!(models(data.path(), &hub, &["pull", REPO]).0, 0);
    hub.serve(REPO, COMMIT_2, &berth_embed::test_model_dir());
    hub.corrupt_weights(true);
    let (code, _, err) = models(data.path(), &hub, &["pull", REPO]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("model.safetensors arrived corrupted"), "{err}");
    assert_eq!(
        manifest(data.path())["commit"],
        COMMIT_1,
        "the old model was replaced"
    );
    assert!(placed(data.path()).join("model.safetensors").is_file());
    assert!(leftovers(data.path()).is_empty(), "staging left behind");
}

#[test]
fn a_dry_run_lists_the_files_and_writes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let hub = hub();
    let (code, out, err) = models(data.path(), &hub, &["pull", REPO, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("would download") && out.contains("model.safetensors"),
        "{out}"
    );
    assert!(!data.path().join("models").exists());
}

#[test]
fn an_unknown_model_is_named_in_the_error() {
    let data = tempfile::tempdir().unwrap();
    let (code, _, err) = models(data.path(), &hub(), &["pull", "nobody/no-such-model"]);
    assert_eq!(code, 1);
    assert!(err.contains("no model nobody/no-such-model"), "{err}");
}

#[test]
fn a_malformed_model_name_is_refused_before_any_download() {
    let data = tempfile::tempdir().unwrap();
    let (code, _, err) = models(data.path(), &hub(), &["pull", "../etc"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a model id"), "{err}");
}

#[test]
fn list_shows_pulled_models_with_their_commit() {
    let data = tempfile::tempdir().unwrap();
    let hub = hub();
    let (_, out, _) = models(data.path(), &hub, &["list"]);
    assert!(out.contains("no models"), "{out}");
    assert_eq!(models(data.path(), &hub, &["pull", REPO]).0, 0);
    let (code, out, _) = models(data.path(), &hub, &["list"]);
    assert_eq!(code, 0);
    assert!(out.contains(REPO) && out.contains(&COMMIT_1[..12]), "{out}");
}

#[test]
fn over_https_a_private_ca_is_trusted_only_when_given() {
    let data = tempfile::tempdir().unwrap();
    let hub = HubFake::start_tls();
    hub.serve(REPO, COMMIT_1, &berth_embed::test_model_dir());
    let (code, _, err) = models(data.path(), &hub, &["pull", REPO]);
    assert_eq!(code, 1, "an unknown CA must be refused: {err}");
    assert!(err.contains("certificate"), "the error says why: {err}");
    let ca = data.path().join("ca.pem");
    std::fs::write(&ca, hub.ca_pem.as_deref().unwrap()).unwrap();
    let (code, out, err) = models_with(
        data.path(),
        &hub,
        &["pull", REPO],
        &[("BERTH_CA_BUNDLE", &ca)],
    );
    assert_eq!(code, 0, "with ca_bundle the pull succeeds: {out}{err}");
    assert_eq!(manifest(data.path())["commit"], COMMIT_1);
}

#[test]
fn a_ca_bundle_that_is_not_pem_is_refused_clearly() {
    let data = tempfile::tempdir().unwrap();
    let bad = data.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let (code, _, err) = models_with(
        data.path(),
        &hub(),
        &["pull", REPO],
        &[("BERTH_CA_BUNDLE", &bad)],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ca_bundle") && err.contains("certificates"),
        "{err}"
    );
}

#[test]
fn a_model_that_cannot_be_loaded_stops_the_server_saying_why() {
    let data = tempfile::tempdir().unwrap();
    let model = data.path().join("broken-model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::copy(
        berth_embed::test_model_dir().join("config.json"),
        model.join("config.json"),
    )
    .unwrap();
    std::fs::write(model.join("model.safetensors"), b"not weights").unwrap();
    let (code, err) = crate::support::run_to_exit(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
        &[
            ("BERTH_EMBED_API", "builtin"),
            ("BERTH_EMBED_MODEL_DIR", model.to_str().unwrap()),
        ],
    );
    assert_eq!(code, 2, "a configuration error: {err}");
    assert!(err.contains("not a safetensors file"), "{err}");
}
