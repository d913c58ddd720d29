"""Monthly Security review: access review (on-chain roles vs config) and patch compliance (installed vs uv.lock,
pip-audit findings with fix versions). Pure functions on constructed inputs, and the flow on the devnet."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from vvops.reviews.access import TIMELOCK_ROLES, access_review, access_section, replay_role_events
from vvops.reviews.monthly import render_access_markdown, render_patches_markdown
from vvops.reviews.patches import lock_mismatches, parse_lock, patch_compliance, patch_due

UTC = timezone.utc
TIMELOCK = "0x" + "11" * 20
GUARDIAN = "0x" + "22" * 20
GOV = "0x" + "33" * 20
STRANGER = "0x" + "44" * 20
IMPL = "0x" + "55" * 20


def _review(*, owner=TIMELOCK, proposers=(GOV,), implementation=IMPL):
    return access_review(
        vault_roles={"owner": owner, "guardian": GUARDIAN}, expected_roles={"owner": TIMELOCK, "guardian": GUARDIAN},
        implementation=implementation, approved_implementations=[IMPL],
        timelock_holders={"PROPOSER_ROLE": list(proposers), "EXECUTOR_ROLE": [GOV]},
        expected_timelock_holders={"PROPOSER_ROLE": [GOV], "EXECUTOR_ROLE": [GOV]},
        labels={TIMELOCK: "timelock", GOV: "governance"})


def _flagged(rows):
    return [(r["contract"], r["role"], r["holder"]) for r in rows if not r["ok"]]


def test_clean_roles_pass():
    rows = _review()
    assert rows and all(r["ok"] for r in rows)
    assert {r["role"] for r in rows} == {"owner", "guardian", "implementation (ERC-1967)", "PROPOSER_ROLE",
                                         "EXECUTOR_ROLE"}


def test_wrong_owner_flagged():
    rows = _review(owner=STRANGER)
    assert _flagged(rows) == [("vault", "owner", STRANGER)]
    row = next(r for r in rows if r["role"] == "owner")
    assert row["expected"] == TIMELOCK and "unknown to config" in row["note"]


def test_proposer_not_in_config_flagged_and_missing_expected_holder_flagged():
    assert _flagged(_review(proposers=(GOV, STRANGER))) == [("timelock", "PROPOSER_ROLE", STRANGER)]
    # governance lost the role: the expected holder shows up as missing
    rows = _review(proposers=())
    assert _flagged(rows) == [("timelock", "PROPOSER_ROLE", "—")]
    assert "lacks the role" in next(r for r in rows if not r["ok"])["note"]


def test_unapproved_implementation_flagged():
    assert _flagged(_review(implementation=STRANGER)) == [("vault", "implementation (ERC-1967)", STRANGER)]


def test_role_events_replay_and_unreachable_chain():
    p = TIMELOCK_ROLES["PROPOSER_ROLE"]
    holders = replay_role_events([{"name": "RoleGranted", "role": p, "account": GOV},
                                  {"name": "RoleGranted", "role": p, "account": STRANGER},
                                  {"name": "RoleRevoked", "role": p, "account": STRANGER}])
    assert holders == {"PROPOSER_ROLE": [GOV]}
    section = access_section({"available": False, "error": "RpcUnavailable: connection refused"})
    assert section["available"] is False and section["rows"] == []
    assert "Chain not reachable" in "\n".join(render_access_markdown(section))


LOCK = """
version = 1
[[package]]
name = "Requests"
version = "2.31.0"
[[package]]
name = "urllib3"
version = "2.2.1"
[[package]]
name = "colorama"
version = "0.4.6"
[[package]]
name = "myproj"
source = { virtual = "." }
"""


def test_installed_differs_from_lock_flagged():
    locked = parse_lock(LOCK)
    assert locked == {"requests": "2.31.0", "urllib3": "2.2.1", "colorama": "0.4.6"}
    rows = lock_mismatches({"requests": "2.31.0", "urllib3": "2.0.7", "prefect": "3.9.0"}, locked)
    assert rows == [{"package": "urllib3", "installed": "2.0.7", "locked": "2.2.1", "status": "behind lock"}]
    assert lock_mismatches({"Requests": "2.31"}, locked) == []  # same version, different spelling


def test_pip_audit_finding_with_fix_gives_patch_due_row():
    report = {"dependencies": [
        {"name": "urllib3", "version": "2.2.1",
         "vulns": [{"id": "GHSA-xxxx", "aliases": ["CVE-2099-1"], "fix_versions": ["1.26.19", "2.2.2"]}]},
        {"name": "requests", "version": "2.31.0",
         "vulns": [{"id": "PYSEC-1", "fix_versions": ["2.30.0"]}]},          # already past the fix
        {"name": "jinja2", "version": "3.1.3", "vulns": [{"id": "X", "fix_versions": ["3.1.4"]}]},  # not ours
        {"name": "colorama", "version": "0.4.6", "vulns": []},
    ]}
    rows = patch_due(report, {"urllib3": "2.2.1", "requests": "2.31.0"}, {"urllib3": "2.2.1", "requests": "2.31.0"})
    assert [(r["package"], r["status"]) for r in rows] == [("urllib3", "patch due"), ("requests", "fixed")]
    due = rows[0]
    assert due["vulnerability"] == "GHSA-xxxx" and due["target"] == "2.2.2" and due["installed"] == "2.2.1"
    assert due["fix_versions"] == "1.26.19, 2.2.2"
    # an older major line that carries its own fix is not due
    assert patch_due(report, {"urllib3": "1.26.19"})[0]["status"] == "fixed"
    assert patch_due({"dependencies": [{"name": "urllib3", "version": "2.2.1", "vulns": [{"id": "Y"}]}]},
                     {"urllib3": "2.2.1"})[0]["status"] == "no fix available"
    section = patch_compliance(installed={"urllib3": "2.2.1"}, locked={"urllib3": "2.2.1"}, report=report,
                               report_name="pip-audit.json", report_time=datetime(2026, 2, 3, tzinfo=UTC))
    assert section["patch_due"] == 1 and section["mismatches"] == []
    assert "1 patch(es) due" in "\n".join(render_patches_markdown(section))


@pytest.mark.devnet
def test_monthly_review_has_access_and_patch_sections(ops_flows):
    from flows.monthly_review import monthly_review

    monthly = monthly_review(environment="devnet", as_of=datetime(1996, 7, 1, tzinfo=UTC), notify_slack=False)
    access = monthly["security"]["access"]
    assert access["available"], access["error"]
    assert access["rows"] and all(r["ok"] for r in access["rows"]), [r for r in access["rows"] if not r["ok"]]
    roles = {(r["contract"], r["role"]) for r in access["rows"]}
    assert {("vault", "owner"), ("vault", "guardian"), ("vault", "implementation (ERC-1967)"),
            ("timelock", "PROPOSER_ROLE"), ("timelock", "EXECUTOR_ROLE")} <= roles
    patches = monthly["security"]["patches"]
    assert patches["lock_available"] and patches["installed"] > 0 and "findings" in patches
    md = Path(monthly["report_dir"], "monthly-review.md").read_text()
    assert "### Access review" in md and "### Patch compliance" in md
