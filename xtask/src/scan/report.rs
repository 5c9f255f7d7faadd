//! The scan's reports: a terminal summary, Markdown for people, SARIF 2.1.0 for GitHub code
//! scanning (JSON is the [`Scan`] itself).

use serde_json::{json, Value};

use super::{policy::RULES, Scan, Severity};

fn counts(scan: &Scan) -> String {
    let open = |s: Severity| scan.open().filter(|f| f.severity == s).count();
    let accepted = scan
        .findings
        .iter()
        .filter(|f| f.accepted.is_some())
        .count();
    format!(
        "{} high, {} medium, {} low open; {accepted} accepted",
        open(Severity::High),
        open(Severity::Medium),
        open(Severity::Low)
    )
}

pub fn summary(scan: &Scan) -> String {
    let mut out = String::new();
    for f in scan.open() {
        let at = f.line.map_or(f.file.clone(), |l| format!("{}:{l}", f.file));
        out.push_str(&format!(
            "{:<6} {:<18} {}  ({at})\n",
            f.severity.name(),
            f.rule,
            f.message
        ));
    }
    for s in &scan.scanners {
        out.push_str(&format!(
            "scanner {}: {} ({})\n",
            s.name, s.status, s.detail
        ));
    }
    for n in &scan.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&format!(
        "scan: score {}/100: {}\n",
        scan.score,
        counts(scan)
    ));
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(scan: &Scan) -> String {
    let mut out = String::from("# Berth security scan\n\n");
    out.push_str(&format!(
        "**Score: {}/100** — {}. The scan fails on any open high finding.\n\n",
        scan.score,
        counts(scan)
    ));
    out.push_str("## Open findings\n\n");
    if scan.open().next().is_none() {
        out.push_str("None.\n\n");
    } else {
        out.push_str("| severity | rule | target | where | finding |\n|---|---|---|---|---|\n");
        for f in scan.open() {
            let at = f.line.map_or(f.file.clone(), |l| format!("{}:{l}", f.file));
            out.push_str(&format!(
                "| {} | {} | `{}` | {} | {} |\n",
                f.severity.name(),
                f.rule,
                f.target,
                at,
                cell(&f.message)
            ));
        }
        out.push('\n');
    }
    out.push_str("## Accepted findings\n\nAccepted in deploy/scan-accept.toml, with the reason given there.\n\n");
    let accepted: Vec<_> = scan
        .findings
        .iter()
        .filter(|f| f.accepted.is_some())
        .collect();
    if accepted.is_empty() {
        out.push_str("None.\n\n");
    } else {
        out.push_str("| severity | rule | target | reason |\n|---|---|---|---|\n");
        for f in accepted {
            out.push_str(&format!(
                "| {} | {} | `{}` | {} |\n",
                f.severity.name(),
                f.rule,
                f.target,
                cell(f.accepted.as_deref().unwrap_or(""))
            ));
        }
        out.push('\n');
    }
    if !scan.notes.is_empty() {
        out.push_str("## Notes\n\n");
        for n in &scan.notes {
            out.push_str(&format!("- {n}\n"));
        }
        out.push('\n');
    }
    out.push_str(
        "## Scanners\n\n| scanner | status | detail |\n|---|---|---|\n| berth policy | run | ",
    );
    out.push_str(&format!(
        "{} rules on {} |\n",
        RULES.len(),
        scan.scanned.join(", ")
    ));
    for s in &scan.scanners {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            s.name,
            s.status,
            cell(&s.detail)
        ));
    }
    out.push_str("\n## Rules\n\n| rule | severity | demands |\n|---|---|---|\n");
    for (id, sev, what) in RULES {
        out.push_str(&format!("| {id} | {} | {what} |\n", sev.name()));
    }
    out
}

/// SARIF 2.1.0: one run per source (berth, and each external scanner that found something).
/// Accepted findings carry a suppression with the reason, as code scanning expects.
pub fn sarif(scan: &Scan) -> Value {
    let mut sources: Vec<&str> = scan.findings.iter().map(|f| f.source.as_str()).collect();
    if !sources.contains(&"berth") {
        sources.insert(0, "berth");
    }
    sources.dedup();
    sources.sort();
    sources.dedup();
    let runs: Vec<Value> = sources
        .iter()
        .map(|source| {
            let findings: Vec<_> = scan.findings.iter().filter(|f| f.source == *source).collect();
            let rules: Vec<Value> = if *source == "berth" {
                RULES
                    .iter()
                    .map(|(id, sev, what)| {
                        json!({"id": id, "shortDescription": {"text": what},
                               "defaultConfiguration": {"level": level(*sev)}})
                    })
                    .collect()
            } else {
                let mut ids: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
                ids.sort();
                ids.dedup();
                ids.iter().map(|id| json!({"id": id})).collect()
            };
            let results: Vec<Value> = findings
                .iter()
                .map(|f| {
                    let mut region = json!({});
                    if let Some(l) = f.line {
                        region = json!({"startLine": l});
                    }
                    let mut r = json!({
                        "ruleId": f.rule,
                        "level": level(f.severity),
                        "message": {"text": f.message},
                        "locations": [{"physicalLocation": {
                            "artifactLocation": {"uri": f.file, "uriBaseId": "%SRCROOT%"},
                            "region": region}}],
                        "partialFingerprints": {"target": f.target},
                    });
                    if f.line.is_none() {
                        r["locations"][0]["physicalLocation"]
                            .as_object_mut()
                            .expect("object")
                            .remove("region");
                    }
                    if let Some(reason) = &f.accepted {
                        r["suppressions"] = json!([{"kind": "external", "justification": reason}]);
                    }
                    r
                })
                .collect();
            json!({
                "tool": {"driver": {"name": if *source == "berth" { "berth-scan" } else { source },
                                    "informationUri": "https://github.com/berth-project/berth/blob/main/docs/security.md",
                                    "rules": rules}},
                "results": results,
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": runs,
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}
