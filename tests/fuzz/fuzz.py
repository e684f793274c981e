#!/usr/bin/env python3
"""Schema fuzzer for the loyalty API. hypothesis-graphql generates operations from the served SDL
of both endpoints; each is sent over HTTP with a member token, an operator token and no token.
Every answer must be: not 5xx, JSON, errors only with codes from DESIGN s5 and never INTERNAL,
within the time bound. After the run, ledgerAudit must be ok. Hypothesis shrinks each distinct
failure to a minimal request. run.sh starts the server and calls this; see README "Fuzzing"."""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

import graphql
import requests
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from gen import Operation, operations
from seed import seed_data

VALID_CODES = {"UNAUTHENTICATED", "FORBIDDEN", "BLACKLISTED", "NOT_FOUND", "VALIDATION",
               "INSUFFICIENT_POINTS", "OUT_OF_STOCK", "LIMIT_REACHED", "ALREADY_DONE",
               "NOT_AVAILABLE", "RATE_LIMITED", "CAPTCHA_REQUIRED", "CONFLICT", "UNAVAILABLE",
               "INTERNAL"}
ENDPOINTS = {"member": "/graphql", "admin": "/admin/graphql"}
# Failures of size and time are recorded (the smallest example seen) but not shrunk: an
# oversized body stays oversized, and each step of shrinking a slow one costs seconds.
UNSHRUNK = {"slow", "too-large"}
# The brief's three token kinds, plus a SUPERADMIN on the admin endpoint: only it (or
# INTEGRATION) reaches recordPurchase, refundPurchase and confirmOrderPayment, the money paths.
TOKEN_KINDS = ("member", "operator", "superadmin", "none")
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "api" / "schema"


class FuzzFailure(AssertionError):
    """A response that breaks a check. Subclassed per (problem, field) so that Hypothesis keeps
    and shrinks each distinct failure on its own rather than only the first one."""

    record: dict = {}


class ServerDied(BaseException):
    """The server process is gone: nothing after this is meaningful, so the run stops at once
    (a BaseException, so Hypothesis does not try to shrink it)."""


class BudgetExhausted(BaseException):
    """A run's time budget ran out (shrinking slow failures is what takes the time): the run
    stops and reports the smallest example it saw of each failure, unshrunk."""


_failure_types: dict[str, type[FuzzFailure]] = {}


def failure_type(kind: str, field: str) -> type[FuzzFailure]:
    name = re.sub(r"\W", "_", f"{kind}_at_{field}")
    if name not in _failure_types:
        _failure_types[name] = type(name, (FuzzFailure,), {})
    return _failure_types[name]


class Api:
    def __init__(self, url: str, timeout: float, server_pid: int | None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.server_pid = server_pid

    def post(self, endpoint: str, body: str, token: str | None, accept: str = "application/json",
             device: str | None = None) -> tuple[requests.Response | None, float, str | None]:
        headers = {"Content-Type": "application/json", "Accept": accept, "Connection": "close"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if device is not None:
            headers["X-Device-Id"] = device
        started = time.monotonic()
        try:
            # Generous read timeout: slowness is judged against the bound, a hang is reported.
            response = requests.post(self.url + ENDPOINTS[endpoint], data=body.encode("utf-8"),
                                     headers=headers, timeout=(5, max(30, self.timeout * 5)))
            return response, time.monotonic() - started, None
        except requests.RequestException as e:
            return None, time.monotonic() - started, f"{type(e).__name__}: {e}"

    def gql(self, endpoint: str, query: str, variables: dict | None = None,
            token: str | None = None) -> dict:
        """A setup call that must succeed."""
        body = json.dumps({"query": query, "variables": variables or {}})
        response, _, error = self.post(endpoint, body, token)
        if response is None:
            raise SystemExit(f"setup request failed ({error}): {query}")
        try:
            answer = response.json()
        except ValueError:
            raise SystemExit(f"setup answer is not JSON (HTTP {response.status_code}): {query}\n"
                             f"{response.text[:500]}")
        if answer.get("errors"):
            raise SystemExit(f"setup request answered errors: {query}\n{json.dumps(answer)[:1000]}")
        return answer["data"]

    def alive(self) -> bool:
        if self.server_pid is not None:
            try:
                os.kill(self.server_pid, 0)
            except OSError:
                return False
        try:
            return requests.get(self.url + "/health", timeout=5).status_code < 500
        except requests.RequestException:
            return False

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.alive():
                return
            if self.server_pid is not None:
                try:
                    os.kill(self.server_pid, 0)
                except OSError:
                    raise SystemExit("the server exited while starting; see its log")
            time.sleep(0.2)
        raise SystemExit(f"the server did not answer /health within {seconds:.0f} s")


@functools.lru_cache(maxsize=8)
def root_fields(query: str) -> dict[str, str]:
    """alias (or name) -> field name, for the root selections of a document, through fragments."""
    try:
        doc = graphql.parse(query, no_location=True)
    except (graphql.GraphQLError, RecursionError):
        return {}
    names: dict[str, str] = {}

    def walk(selection_set):
        for selection in selection_set.selections:
            if isinstance(selection, graphql.FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                names[key] = selection.name.value
            elif isinstance(selection, graphql.InlineFragmentNode):
                walk(selection.selection_set)

    for definition in doc.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            walk(definition.selection_set)
    return names


def examine(op: Operation, response: requests.Response | None, elapsed: float,
            transport_error: str | None, bound: float) -> list[tuple[str, str, str]]:
    """The problems with one answer, as (kind, field, detail); empty when it is fine."""
    if response is None:
        if "Timeout" in (transport_error or ""):
            return [("hang", "?", f"no answer: {transport_error}")]
        return [("no-response", "?", f"connection failed: {transport_error}")]
    problems: list[tuple[str, str, str]] = []
    status = response.status_code
    try:
        answer = response.json()
    except ValueError:
        answer = None
    errors = answer.get("errors") if isinstance(answer, dict) else None
    codes = [((e.get("extensions") or {}).get("code") if isinstance(e, dict) else None)
             for e in (errors or [])]
    # 503 with UNAVAILABLE is the documented answer when a dependency is down.
    if status >= 500 and not (status == 503 and codes and set(codes) == {"UNAVAILABLE"}):
        problems.append(("http-5xx", "?", f"HTTP {status}"))
    if not isinstance(answer, dict) or not ({"data", "errors"} & answer.keys()):
        content_type = response.headers.get("Content-Type", "")
        problems.append(("too-large" if status == 413 else "not-json", f"http-{status}",
                         f"HTTP {status} {content_type}: not a GraphQL JSON answer: "
                         f"{response.text[:200]!r}"))
    fields = root_fields(op.query)
    for error, code in zip(errors or [], codes):
        path = error.get("path") if isinstance(error, dict) else None
        head = path[0] if path else None
        field = fields.get(head, str(head)) if head is not None else "?"
        if code == "INTERNAL":
            problems.append(("INTERNAL", field, str(error.get("message"))))
        elif code not in VALID_CODES:
            problems.append(("bad-code", field, f"error without a valid code: {json.dumps(error)[:300]}"))
    if elapsed > bound:
        # Named after the root field the document repeats most (the aliased one, if any).
        counts = Counter(fields.values())
        busiest = counts.most_common(1)[0][0] if counts else "?"
        problems.append(("slow", busiest,
                         f"answered in {elapsed:.2f} s, over the {bound:.1f} s bound"))
    return problems


def curl(api: Api, endpoint: str, token_kind: str, op: Operation) -> str:
    auth = {"member": " -H 'Authorization: Bearer $MEMBER_TOKEN'",
            "operator": " -H 'Authorization: Bearer $OPERATOR_TOKEN'",
            "superadmin": " -H 'Authorization: Bearer $SUPERADMIN_TOKEN'", "none": ""}[token_kind]
    device = f" -H 'X-Device-Id: {op.device}'" if op.device is not None else ""
    body = op.body()
    if len(body) > 1500:
        body = body[:1500] + f"... (a body of {len(body)} characters: see the JSON report)"
    return (f"curl -sS {api.url}{ENDPOINTS[endpoint]} -H 'Content-Type: application/json' "
            f"-H 'Accept: {op.accept}'{auth}{device} --data-binary @- <<'EOF'\n{body}\nEOF")


def tally(stats: Counter, fields: set[str], op: Operation, response: requests.Response | None
          ) -> None:
    """What the run reached: answers by error code, and the root fields that answered data."""
    try:
        answer = response.json() if response is not None else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        stats["no JSON"] += 1
        return
    codes = {(e.get("extensions") or {}).get("code") for e in answer.get("errors") or []
             if isinstance(e, dict)}
    stats.update(codes or {"ok"})
    # A root field ran when it answered data or an error of its own (its path) that is not a
    # refusal of the request: null data hides the fields that ran before a mutation failed.
    names = root_fields(op.query)
    data = answer.get("data")
    if isinstance(data, dict):
        fields.update(names.get(key, key) for key, value in data.items() if value is not None)
    for error in answer.get("errors") or []:
        path = error.get("path") if isinstance(error, dict) else None
        if path and (error.get("extensions") or {}).get("code") not in ("UNAUTHENTICATED",
                                                                          "FORBIDDEN"):
            fields.add(names.get(path[0], str(path[0])))


def make_test(api: Api, schema: graphql.GraphQLSchema, known: dict, endpoint: str,
              token_kind: str, token: str | None, examples: int, seed: int, bound: float,
              stats: Counter, fields: set[str], smallest: dict[str, dict], deadline: float,
              known_failures: set[str]):
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
              phases=[Phase.generate, Phase.shrink], print_blob=False, report_multiple_bugs=True)
    @hypothesis_seed(seed)
    @given(op=operations(schema, known))
    def fuzz(op: Operation) -> None:
        if time.monotonic() > deadline:
            raise BudgetExhausted()
        response, elapsed, error = api.post(endpoint, op.body(), token, op.accept, op.device)
        tally(stats, fields, op, response)
        problems = examine(op, response, elapsed, error, bound)
        if not problems:
            return
        if response is None and not api.alive():
            raise ServerDied(f"the server died on this request ({endpoint} endpoint, "
                             f"{token_kind} token):\n{op!r}\n{error}")
        # Failures an earlier round already shrank count as passes, so this round looks further.
        fresh = [p for p in problems if failure_type(p[0], p[1]).__name__ not in known_failures]
        if not fresh:
            return
        kind, field, _ = fresh[0]
        record = {
            "endpoint": endpoint, "path": ENDPOINTS[endpoint], "token": token_kind,
            "kind": kind, "field": field, "problems": [f"{k} at {f}: {d}" for k, f, d in problems],
            "shape": op.shape, "query": op.query, "variables": op.variables, "accept": op.accept,
            "device": op.device, "status": response.status_code if response is not None else None,
            "elapsed_s": round(elapsed, 3),
            "response": (response.text[:4000] if response is not None else error),
            "curl": curl(api, endpoint, token_kind, op),
        }
        kind_type = failure_type(kind, field)
        size = len(op.body())
        if kind_type.__name__ not in smallest or size < smallest[kind_type.__name__]["size"]:
            smallest[kind_type.__name__] = dict(record, size=size)
        if kind in UNSHRUNK:
            return
        failure = kind_type(format_record(record))
        failure.record = record
        raise failure

    return fuzz


def format_record(r: dict) -> str:
    lines = [f"{r['kind']} at `{r['field']}`: {r['endpoint']} endpoint ({r['path']}), "
             f"{r['token']} token"]
    lines += [f"  - {p}" for p in r["problems"]]
    lines.append(f"  shape: {r['shape']}")
    lines.append("  query:\n" + indent(clip(r["query"], 1500)))
    if r["variables"] is not None:
        lines.append("  variables:\n" + indent(clip(r["variables"], 1000)))
    lines.append(f"  headers: Accept: {r['accept']}; X-Device-Id: {r['device']!r}")
    lines.append(f"  response: HTTP {r['status']} in {r['elapsed_s']} s:\n"
                 + indent(clip(r["response"] or "", 1000)))
    lines.append("  reproduce:\n" + indent(r["curl"]))
    return "\n".join(lines)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines() or [""])


def collect_failures(exc: BaseException, flaky: bool = False) -> list[tuple[dict, bool, str]]:
    """(record, flaky, text) for every failure inside what Hypothesis raised."""
    is_flaky = flaky or "Flaky" in type(exc).__name__
    if isinstance(exc, FuzzFailure):
        return [(exc.record, is_flaky, str(exc))]
    if isinstance(exc, BaseExceptionGroup):
        found = []
        for inner in exc.exceptions:
            found += collect_failures(inner, is_flaky)
        return found
    return [({"kind": "fuzzer-error", "field": type(exc).__name__, "problems": [repr(exc)]},
             is_flaky, f"the fuzzer itself failed: {exc!r}")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--examples", type=int, default=200,
                        help="generated operations per endpoint and token kind")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--admin-user", required=True)
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--operator-user", required=True)
    parser.add_argument("--operator-password", required=True)
    parser.add_argument("--endpoints", default="member,admin")
    parser.add_argument("--tokens", default=",".join(TOKEN_KINDS))
    parser.add_argument("--bound", type=float, default=2.0, help="seconds an answer may take")
    parser.add_argument("--budget", type=float, default=120,
                        help="seconds each endpoint and token kind may take, shrinking included")
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--report", type=Path, help="write the failures here as JSON")
    parser.add_argument("--label", default="", help="names the database in the report")
    parser.add_argument("--verbose", action="store_true", help="list the fields never reached")
    args = parser.parse_args()

    api = Api(args.url, args.bound, args.server_pid)
    api.wait_ready()
    started = time.monotonic()
    superadmin = api.gql("admin", "mutation($u: String!, $p: String!) { adminLogin(username: $u, "
                         "password: $p) { accessToken } }",
                         {"u": args.admin_user, "p": args.admin_password})["adminLogin"]["accessToken"]
    operator = api.gql("admin", "mutation($u: String!, $p: String!) { adminLogin(username: $u, "
                       "password: $p) { accessToken } }",
                       {"u": args.operator_user, "p": args.operator_password})["adminLogin"]["accessToken"]
    member = api.gql("member", 'mutation { login(code: "alice") { accessToken } }')["login"]["accessToken"]
    known = seed_data(api, superadmin, member)
    print(f"== fuzz: seeded {len(known['ids'])} ids and {len(known['strings'])} strings "
          f"in {time.monotonic() - started:.1f} s", flush=True)
    tokens = {"member": member, "operator": operator, "superadmin": superadmin, "none": None}

    failures: list[tuple[dict, bool, str]] = []
    # On the member endpoint an admin token is refused alike whatever its role: one is enough.
    runs = [(e, t) for e in args.endpoints.split(",") for t in args.tokens.split(",")
            if not (e == "member" and t == "superadmin")]
    for index, (endpoint, token_kind) in enumerate(runs):
        schema = graphql.build_schema((SCHEMA_DIR / f"{endpoint}.graphql").read_text())
        run_seed = args.seed * 100 + index
        run_started = time.monotonic()
        stats: Counter = Counter()
        fields: set[str] = set()
        smallest: dict[str, dict] = {}
        # Hypothesis stops generating soon after its first failure, so an easy failure would
        # hide the others: rounds repeat, each treating what earlier rounds found as passing,
        # until a round of --examples finds nothing new (or the budget runs out).
        found: list[tuple[dict, bool, str]] = []
        known_failures: set[str] = set()
        for round_number in range(100):
            test = make_test(api, schema, known, endpoint, token_kind, tokens[token_kind],
                             args.examples, run_seed * 100 + round_number, args.bound, stats,
                             fields, smallest, run_started + args.budget, known_failures)
            new: list[tuple[dict, bool, str]] = []
            try:
                test()
            except BudgetExhausted:
                print(f"== fuzz: {endpoint} endpoint, {token_kind} token: the {args.budget:.0f} s "
                      "budget ran out; failures not yet shrunk are reported as first seen",
                      flush=True)
                for name, record in smallest.items():
                    if name not in known_failures:
                        record["note"] = "not shrunk: the run's time budget ran out"
                        record.pop("size", None)
                        found.append((record, False, format_record(record)))
                        known_failures.add(name)
                break
            except ServerDied as e:
                print(f"\n== fuzz: FAILED, server died\n{e}", flush=True)
                write_report(args, failures + found + [(
                    {"kind": "server-died", "field": "?", "endpoint": endpoint,
                     "token": token_kind, "problems": [str(e)]}, False, str(e))])
                return 1
            except Exception as e:  # noqa: BLE001 - Hypothesis raises the failures it found
                new = collect_failures(e)
            if not new:
                break
            found += new
            known_failures |= {failure_type(r["kind"], r["field"]).__name__ for r, _, _ in new}
        # The unshrunk kinds were never raised: their smallest example is the report.
        for name, record in smallest.items():
            if record["kind"] in UNSHRUNK and name not in known_failures:
                record.setdefault("note", "not shrunk (size or time): the smallest example seen")
                record.pop("size", None)
                found.append((record, False, format_record(record)))
        for record, _, _ in found:
            record.setdefault("endpoint", endpoint)
            record.setdefault("token", token_kind)
        failures += found
        print(f"== fuzz: {endpoint} endpoint, {token_kind} token: {len(found)} failure(s), "
              f"{round_number + 1} round(s) of {args.examples} examples, "
              f"{time.monotonic() - run_started:.0f} s", flush=True)
        requests_sent = sum(stats.values())
        roots = schema.query_type.fields.keys() | schema.mutation_type.fields.keys()
        print(f"   {requests_sent} requests (shrinking included); answers by code: "
              + ", ".join(f"{code} {n}" for code, n in stats.most_common())
              + f"; root fields that ran: {len(fields & roots)} of {len(roots)}",
              flush=True)
        if args.verbose:
            print(f"   never ran: {', '.join(sorted(roots - fields))}", flush=True)

    audit = api.gql("admin", "{ ledgerAudit { ok membersChecked violations } }", token=superadmin)
    audit = audit["ledgerAudit"]
    print(f"== fuzz: ledgerAudit ok={audit['ok']}, {audit['membersChecked']} members checked",
          flush=True)
    if not audit["ok"]:
        text = "ledgerAudit failed after the run:\n" + indent("\n".join(audit["violations"][:50]))
        failures.append(({"kind": "ledger-audit", "field": "ledgerAudit", "endpoint": "admin",
                          "token": "superadmin", "problems": audit["violations"]}, False, text))
    if not api.alive():
        failures.append(({"kind": "server-down", "field": "/health", "problems": []}, False,
                         "the server does not answer /health after the run"))

    write_report(args, failures)
    # One entry per distinct failure (endpoint, problem, field), with its smallest example.
    groups: dict[tuple, list[tuple[dict, bool, str]]] = {}
    for failure in failures:
        record = failure[0]
        groups.setdefault((record.get("endpoint"), record["kind"], record["field"]), []).append(failure)
    print(f"\n== fuzz: {len(groups)} distinct failure(s) in {time.monotonic() - started:.0f} s "
          f"(seed {args.seed}, {args.examples} examples per endpoint and token kind)")
    for number, group in enumerate(groups.values(), 1):
        record, flaky, text = min(group, key=lambda f: len(f[0].get("query") or "")
                                  + len(f[0].get("variables") or ""))
        notes = [record["note"]] if record.get("note") else []
        if flaky:
            notes.append("did not repeat on replay: state or timing dependent")
        tokens_seen = sorted({str(f[0].get("token")) for f in group})
        print(f"\n--- failure {number} (tokens: {', '.join(tokens_seen)})"
              + (f" [{'; '.join(notes)}]" if notes else "") + f": {text}")
    return 1 if failures else 0


def write_report(args: argparse.Namespace, failures: list[tuple[dict, bool, str]]) -> None:
    if args.report is None:
        return
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({
        "database": args.label, "seed": args.seed, "examples": args.examples,
        "failures": [dict(record, flaky=flaky) for record, flaky, _ in failures],
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
