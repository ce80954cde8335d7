"""The audit-check registry: a check registered by one module runs in every audit, and its
findings reach the levels, the exit status and the reports, with nothing else changed."""

from __future__ import annotations

import json

import pytest

from app.audits import registry
from app.audits.audit import run_audit
from app.audits.model import AuditOptions, Finding, Level
from app.audits.registry import Check, Scope
from app.cli import main
from app.store import Store


def _toy_findings(scan, groups) -> list[Finding]:
    # A toy rule: a database whose name starts with 'p' is flagged, naming its size.
    if scan.name.startswith("p"):
        return [Finding("toy-p-database", scan.name, f"'{scan.name}' starts with p and holds {scan.entries} entries.",
                        (), scan.entries)]
    return []


TOY = Check("toy", Scope.DATABASE, {"toy-p-database": Level.ERROR}, _toy_findings, "A toy check for tests")


@pytest.fixture
def toy():
    registry.register(TOY)
    yield TOY
    registry.unregister(TOY.name)


def test_a_registered_check_runs_and_reaches_levels_reports_and_exit_status(toy, planted_url, capsys):
    with Store.open(planted_url, read_only=True) as store:
        result = run_audit(store, "photos", AuditOptions(check_images=False, across=False))
    (found,) = [f for f in result.findings if f.kind == "toy-p-database"]
    assert found.level is Level.ERROR and found.database == "photos" and found.count > 0
    assert result.worst() is Level.ERROR
    code = main(["--store", planted_url, "audit", "photos", "--format", "json", "--fail-on", "error"])
    out = capsys.readouterr().out
    assert code != 0
    kinds = {(f["kind"], f["level"]) for f in json.loads(out)["findings"]}
    assert ("toy-p-database", "error") in kinds
    assert main(["--store", planted_url, "audit", "photos", "--fail-on", "never"]) == 0
    assert "starts with p" in capsys.readouterr().out


def test_without_the_check_its_kind_is_unknown(planted_url):
    assert "toy-p-database" not in registry.kinds()
    with Store.open(planted_url, read_only=True) as store:
        result = run_audit(store, "photos", AuditOptions(check_images=False, across=False))
    assert not [f for f in result.findings if f.kind.startswith("toy")]


def test_every_kind_has_one_level_and_checks_cannot_clash():
    kinds = registry.kinds()
    assert kinds["phash-mismatch"] is Level.ERROR and kinds["schema-older"] is Level.WARNING
    assert kinds["near-duplicate"] is Level.INFO and kinds["likely-mislabel"] is Level.WARNING
    with pytest.raises(ValueError, match="already has the level"):
        registry.register(Check("clash", Scope.STORE, {"schema-older": Level.INFO}, lambda checks: []))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Check("duplicates", Scope.STORE, {}, lambda checks: []))
    assert "clash" not in [c.name for c in registry.checks()]
