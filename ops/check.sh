#!/usr/bin/env bash
# Checks the operations files with Prometheus's own tool: the alert rules parse and their unit
# tests pass, and every query of the Grafana dashboard is valid PromQL (each is checked as a
# recording rule, with Grafana's variables replaced by what Grafana would put there).
# Needs promtool (Debian's `prometheus` package) and python3.
set -euo pipefail
cd "$(dirname "$0")"
promtool check rules prometheus/alerts.yml
promtool test rules prometheus/alerts.test.yml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - grafana/loyalty.json > "$tmp/dashboard-rules.yml" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
ids = [p["id"] for p in dashboard["panels"]]
assert len(ids) == len(set(ids)), "panel ids repeat"
print("groups:\n  - name: dashboard\n    rules:")
n = 0
for panel in dashboard["panels"]:
    assert {"id", "type", "title", "gridPos"} <= panel.keys(), panel
    for target in panel.get("targets", []):
        expr = (target["expr"].replace("$__rate_interval", "5m")
                .replace('=~"$instance"', '=~".*"'))
        assert "$" not in expr, f"unreplaced variable in {panel['title']}: {expr}"
        n += 1
        print(f"      - record: dashboard:panel_{panel['id']}_{target['refId']}")
        print(f"        expr: {json.dumps(expr)}")
print(f"# {n} queries", file=sys.stderr)
PY
promtool check rules "$tmp/dashboard-rules.yml"
echo "ops: alert rules, their tests and the dashboard's queries are valid"
