//! External scanners, each run only when installed (none is fetched: the report lists each as
//! run, skipped or failed, with why). Their findings join Berth's own, with their own rule ids.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use serde_json::Value;

use super::{Finding, ScannerRun, Severity};

pub const SCANNERS: &[&str] = &["hadolint", "trivy", "grype", "checkov"];

pub fn run_all(root: &Path, dockerfiles: &[String]) -> (Vec<ScannerRun>, Vec<Finding>) {
    let mut runs = Vec::new();
    let mut findings = Vec::new();
    for name in SCANNERS {
        if which::which(name).is_err() {
            runs.push(ScannerRun {
                name: name.to_string(),
                status: "skipped".into(),
                detail: "not installed (not packaged for Debian bookworm; install it to include it, see docs/security.md)".into(),
            });
            continue;
        }
        let invocations: Vec<Vec<String>> = match *name {
            "hadolint" => dockerfiles
                .iter()
                .map(|f| {
                    vec![
                        "--format".into(),
                        "json".into(),
                        "--no-fail".into(),
                        f.clone(),
                    ]
                })
                .collect(),
            "trivy" => vec![strings(&[
                "config", "--format", "json", "--quiet", "docker",
            ])],
            "grype" => vec![strings(&["dir:.", "--output", "json", "--quiet"])],
            _ => vec![strings(&[
                "--directory",
                "docker",
                "--framework",
                "dockerfile",
                "--output",
                "json",
                "--quiet",
                "--soft-fail",
            ])],
        };
        let mut status = "run";
        let mut detail = Vec::new();
        let before = findings.len();
        for args in invocations {
            let out = Command::new(name)
                .current_dir(root)
                .args(&args)
                .stdin(Stdio::null())
                .output();
            let parsed = out
                .as_ref()
                .ok()
                .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok());
            match parsed {
                Some(v) => findings.extend(parse(name, &v)),
                None => {
                    status = "failed";
                    detail.push(match out {
                        Ok(o) => format!(
                            "`{name} {}` printed no JSON: {}",
                            args.join(" "),
                            String::from_utf8_lossy(&o.stderr)
                                .lines()
                                .last()
                                .unwrap_or("")
                        ),
                        Err(e) => format!("cannot run {name}: {e}"),
                    });
                }
            }
        }
        detail.insert(0, format!("{} finding(s)", findings.len() - before));
        runs.push(ScannerRun {
            name: name.to_string(),
            status: status.into(),
            detail: detail.join("; "),
        });
    }
    (runs, findings)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn severity(word: &str) -> Severity {
    match word.to_ascii_lowercase().as_str() {
        "critical" | "high" => Severity::High,
        "medium" | "error" => Severity::Medium,
        _ => Severity::Low,
    }
}

fn external(
    tool: &str,
    rule: &str,
    sev: Severity,
    file: &str,
    line: Option<usize>,
    subject: &str,
    message: String,
) -> Finding {
    Finding {
        rule: rule.to_string(),
        severity: sev,
        source: tool.to_string(),
        target: format!("{file}:{subject}"),
        file: file.to_string(),
        line,
        message,
        accepted: None,
    }
}

/// Findings from a scanner's JSON output (the formats their docs describe).
pub fn parse(tool: &str, v: &Value) -> Vec<Finding> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let line = |v: &Value| v.as_u64().map(|n| n as usize);
    let mut out = Vec::new();
    match tool {
        "hadolint" => {
            for f in v.as_array().into_iter().flatten() {
                out.push(external(
                    tool,
                    &s(&f["code"]),
                    severity(&s(&f["level"])),
                    &s(&f["file"]),
                    line(&f["line"]),
                    &s(&f["code"]),
                    s(&f["message"]),
                ));
            }
        }
        "trivy" => {
            for r in v["Results"].as_array().into_iter().flatten() {
                for m in r["Misconfigurations"].as_array().into_iter().flatten() {
                    let file = format!("docker/{}", s(&r["Target"]));
                    out.push(external(
                        tool,
                        &s(&m["ID"]),
                        severity(&s(&m["Severity"])),
                        &file,
                        line(&m["CauseMetadata"]["StartLine"]),
                        &s(&m["ID"]),
                        format!("{}: {}", s(&m["Title"]), s(&m["Message"])),
                    ));
                }
            }
        }
        "grype" => {
            for m in v["matches"].as_array().into_iter().flatten() {
                let vuln = &m["vulnerability"];
                let pkg = format!(
                    "{}@{}",
                    s(&m["artifact"]["name"]),
                    s(&m["artifact"]["version"])
                );
                let file = m["artifact"]["locations"][0]["path"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string();
                out.push(external(
                    tool,
                    &s(&vuln["id"]),
                    severity(&s(&vuln["severity"])),
                    &file,
                    None,
                    &pkg,
                    format!("{} in {pkg}", s(&vuln["id"])),
                ));
            }
        }
        "checkov" => {
            let reports: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for r in reports {
                for c in r["results"]["failed_checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let file = format!("docker{}", s(&c["file_path"]));
                    let sev = c["severity"].as_str().map_or(Severity::Medium, severity);
                    out.push(external(
                        tool,
                        &s(&c["check_id"]),
                        sev,
                        &file,
                        line(&c["file_line_range"][0]),
                        &s(&c["check_id"]),
                        s(&c["check_name"]),
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_each_format() {
        let h = parse(
            "hadolint",
            &json!([{"code": "DL3007", "level": "warning", "file": "docker/Dockerfile", "line": 3, "message": "latest"}]),
        );
        assert_eq!(
            (h[0].rule.as_str(), h[0].severity, h[0].line),
            ("DL3007", Severity::Low, Some(3))
        );
        let t = parse(
            "trivy",
            &json!({"Results": [{"Target": "Dockerfile", "Misconfigurations": [
            {"ID": "DS002", "Severity": "HIGH", "Title": "root user", "Message": "m", "CauseMetadata": {"StartLine": 7}}]}]}),
        );
        assert_eq!(
            (t[0].file.as_str(), t[0].severity),
            ("docker/Dockerfile", Severity::High)
        );
        let g = parse(
            "grype",
            &json!({"matches": [{"vulnerability": {"id": "CVE-1", "severity": "Critical"},
            "artifact": {"name": "openssl", "version": "1", "locations": [{"path": "/Cargo.lock"}]}}]}),
        );
        assert_eq!(
            (g[0].target.as_str(), g[0].severity),
            ("Cargo.lock:openssl@1", Severity::High)
        );
        let c = parse(
            "checkov",
            &json!({"results": {"failed_checks": [{"check_id": "CKV_DOCKER_2", "check_name": "health", "file_path": "/Dockerfile", "file_line_range": [1, 9], "severity": null}]}}),
        );
        assert_eq!(
            (c[0].file.as_str(), c[0].severity),
            ("docker/Dockerfile", Severity::Medium)
        );
    }
}
