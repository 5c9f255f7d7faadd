"""Fuzzes Berth's HTTP API from its OpenAPI document with schemathesis; run by `cargo xtask fuzz`.

Signs in as the given administrator, makes a personal API token, then runs `schemathesis run`
against /api/openapi.json with every check (`--checks all`: no 5xx, every status and body as
documented, invalid input refused, valid input accepted, ...) twice: with the token, and without
it (what anyone on the network can send). tests/fuzz/schemathesis.toml names the statuses of the
rules no schema can state. Writes {"inputs": N, "failures": M, ...} to --report.
"""

import argparse
import json
import pathlib
import subprocess
import sys

import requests


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    session = requests.Session()
    resp = session.post(
        f"{args.base}/api/v1/auth/sign-in",
        json={"username": args.username, "password": args.password},
        timeout=30,
    )
    resp.raise_for_status()
    csrf = resp.json()["csrf_token"]
    resp = session.post(
        f"{args.base}/api/v1/account/tokens",
        json={"name": "schemathesis"},
        headers={"x-csrf-token": csrf},
        timeout=30,
    )
    resp.raise_for_status()
    token = resp.json()["token"]
    # Something to find: a collection, so generated ids sometimes meet real routes' deeper code.
    session.post(
        f"{args.base}/api/v1/collections",
        json={"name": "fuzzed"},
        headers={"x-csrf-token": csrf},
        timeout=30,
    )

    out_dir = pathlib.Path(args.report).parent
    st = pathlib.Path(sys.executable).parent / "schemathesis"
    config = pathlib.Path(__file__).with_name("schemathesis.toml")
    inputs = 0
    failures = 0
    failed = []
    codes = []
    # Half the time signed in (the token), half as anyone.
    for who, header in (("signed in", f"Authorization: Bearer {token}"), ("anonymous", None)):
        ndjson = out_dir / f"api-events-{who.replace(' ', '-')}.ndjson"
        cmd = [
            str(st),
            "--config-file",
            str(config),
            "run",
            f"{args.base}/api/openapi.json",
            "--url",
            f"{args.base}/api/v1",
            "--checks",
            "all",
            "--max-time",
            str(max(args.seconds // 2, 1)),
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--no-shrink",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(ndjson),
            "--output-sanitize",
            "true",
        ]
        if header:
            cmd += ["--header", header]
        shown = " ".join(c if "Bearer" not in c else "Authorization: Bearer ***" for c in cmd)
        print(f"fuzz api ({who}):", shown, flush=True)
        codes.append(subprocess.call(cmd))
        n, m, labels = read_events(ndjson)
        inputs += n
        failures += m
        failed += [f"{label} ({who})" for label in labels]
    report = {
        "inputs": inputs,
        "failures": failures,
        "failed_operations": sorted(set(failed)),
        "schemathesis_exit": codes,
    }
    pathlib.Path(args.report).write_text(json.dumps(report, indent=2))
    print(f"fuzz api: {inputs} inputs, {failures} failures, schemathesis exits {codes}")
    return 0


def read_events(ndjson: pathlib.Path) -> tuple[int, int, list[str]]:
    """(inputs, failures, failed operations) from one run's ndjson report."""
    inputs = 0
    failures = 0
    failed = []
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        for kind, body in event.items():
            if not isinstance(body, dict):
                continue
            # ScenarioFinished events carry the recorded test cases and their checks.
            recorder = body.get("recorder")
            if kind.endswith("ScenarioFinished") and isinstance(recorder, dict):
                inputs += len(recorder.get("cases", {}))
                for checks in recorder.get("checks", {}).values():
                    for check in checks:
                        if check.get("status") in ("failure", "FAILURE", "Status.FAILURE"):
                            failures += 1
                            failed.append(body.get("label") or "?")
    return inputs, failures, failed


if __name__ == "__main__":
    sys.exit(main())
