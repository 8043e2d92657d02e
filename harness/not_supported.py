"""Which gating checks a platform may leave unrun (reference/not-supported.yaml), and how a gate's
unrun checks are held to that list: a check not run that the list does not name fails the gate, and
so does one the list names that ran."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from harness import reference
from harness.errors import HarnessError

LIST_NAME = "not-supported.yaml"


def list_path() -> Path:
    return reference.REFERENCE_DIR / LIST_NAME


def declared(platform: str) -> dict[str, str]:
    """Test node id → why `platform` may leave it unrun."""
    path = list_path()
    body = yaml.safe_load(path.read_text()) or {}
    if platform not in body:
        raise HarnessError(f"{path} says nothing of the {platform} platform: give it an entry (`{platform}: {{}}` when it runs every check)")
    entries = body[platform] or {}
    if not isinstance(entries, dict) or not all(isinstance(v, str) and v.strip() for v in entries.values()):
        raise HarnessError(f"{path}: {platform} maps each test node id to the reason it may not run")
    return {str(k): " ".join(v.split()) for k, v in entries.items()}


def node_id(suite: str, test: str) -> str:
    return f"scenarios/test_{suite}.py::{test}"


def unrun(suites: Iterable[tuple[str, Iterable[Mapping[str, Any]]]]) -> list[dict[str, str]]:
    """Every not-supported test of the suites that ran: {"test": node id, "reason"}."""
    return [
        {"test": node_id(suite, t["name"]), "reason": t.get("reason") or "not supported"}
        for suite, tests in suites
        for t in tests
        if t["outcome"] == "not_supported"
    ]


def differences(
    platform: str, allowed: Mapping[str, str], suites: Iterable[tuple[str, Iterable[Mapping[str, Any]]]]
) -> list[str]:
    """Why the checks these suites left unrun differ from what the list allows `platform`, one
    sentence each; empty when they match. A listed test of a suite that did not run is no difference."""
    suites = [(suite, list(tests)) for suite, tests in suites]
    outcome = {node_id(suite, t["name"]): t for suite, tests in suites for t in tests}
    problems = []
    for t in unrun(suites):
        if t["test"] not in allowed:
            problems.append(f"{t['test']} did not run ({t['reason']}), and {LIST_NAME} does not let the {platform} platform leave it unrun")
    for test in allowed:
        found = outcome.get(test)
        if found is not None and found["outcome"] != "not_supported":
            problems.append(
                f"{test} ran on the {platform} platform ({found['outcome']}), which {LIST_NAME} says it cannot: take it off the list"
            )
    return problems
