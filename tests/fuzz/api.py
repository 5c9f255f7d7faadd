"""Fuzzes Berth's HTTP API from its OpenAPI document with schemathesis; run by `cargo xtask fuzz`.

Signs in as the given administrator, makes a personal API token (so generated requests get
past 401), then runs `schemathesis run` against /api/openapi.json with only the check that
matters here: no response is a 5xx. Writes {"inputs": N, "failures": M, ...} to --report.
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
    ndjson = out_dir / "api-events.ndjson"
    st = pathlib.Path(sys.executable).parent / "schemathesis"
    cmd = [
        str(st),
        "run",
        f"{args.base}/api/openapi.json",
        "--url",
        f"{args.base}/api/v1",
        "--checks",
        "not_a_server_error",
        "--max-time",
        str(args.seconds),
        "--workers",
        "2",
        "--header",
        f"Authorization: Bearer {token}",
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
    print("fuzz api:", " ".join(c if "Bearer" not in c else "Authorization: Bearer ***" for c in cmd), flush=True)
    code = subprocess.call(cmd)

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
    report = {
        "inputs": inputs,
        "failures": failures,
        "failed_operations": sorted(set(failed)),
        "schemathesis_exit": code,
    }
    pathlib.Path(args.report).write_text(json.dumps(report, indent=2))
    print(f"fuzz api: {inputs} inputs, {failures} failures, schemathesis exit {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
