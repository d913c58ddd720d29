"""Security posture checks: real TLS handshakes with generated certificates, access logs, vulnerability
reports, credentials, open alerts, and the sub-flow under the Prefect test server."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from freezegun import freeze_time

from tasks.security import (
    analyse_access_logs_task,
    check_certificate_files,
    check_tls_endpoint,
    review_vulnerability_reports,
)
from tests.fixtures.tls_fixtures import make_certificate
from vvops.checks.security import (
    evaluate_certificate,
    evaluate_credentials,
    hostname_matches,
    parse_access_line,
    parse_certificate,
)
from vvops.config.check_params import AccessLogSource, AccessLogsParams, Credential, VulnerabilityReportsParams
from vvops.config.schema import Threshold

DAYS = Threshold(warn=30, crit=7, direction="below", unit="days")
ACCESS_THRESHOLDS = {
    "auth_failure_spike_ratio": Threshold(warn=3, crit=10, direction="above", unit="x baseline"),
    "auth_failures_per_hour": Threshold(warn=50, crit=500, direction="above", unit="requests/h"),
    "admin_requests_from_new_ips": Threshold(warn=1, crit=20, direction="above", unit="requests"),
}
VULN_THRESHOLDS = {"critical_findings": Threshold(crit=1, direction="above", unit="findings"),
                   "high_findings": Threshold(warn=1, crit=5, direction="above", unit="findings")}


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- certificates


def test_expiry_thresholds_with_a_frozen_clock():
    cert = parse_certificate(make_certificate(["api.vv.example"], not_after=datetime(2030, 1, 10, tzinfo=timezone.utc),
                                              not_before=datetime(2029, 1, 1, tzinfo=timezone.utc))[0])
    cases = {"2030-01-05 00:00:00": ("crit", 5.0), "2029-12-21 00:00:00": ("warn", 20.0),
             "2029-11-01 00:00:00": ("ok", 70.0), "2030-01-11 00:00:00": ("crit", -1.0)}
    for frozen, (status, days) in cases.items():
        with freeze_time(frozen):
            outcome = evaluate_certificate(target="api", cert=cert, now=datetime.now(timezone.utc), threshold=DAYS,
                                           hostname="api.vv.example")
        assert (outcome.status, outcome.value) == (status, days), frozen
    assert "expired 2030-01-10" in outcome.message


def test_hostname_matching_rules():
    cert = parse_certificate(make_certificate(["*.vv.example", "vv.example", "127.0.0.1"], _now() + timedelta(days=90))[0])
    assert hostname_matches("api.vv.example", cert) and hostname_matches("vv.example", cert)
    assert hostname_matches("127.0.0.1", cert)
    assert not hostname_matches("a.b.vv.example", cert) and not hostname_matches("evil.example", cert)
    assert not hostname_matches("127.0.0.2", cert)


@pytest.mark.parametrize("days,status", [(5, "crit"), (20, "warn"), (200, "ok")])
def test_tls_handshake_reads_expiry_of_the_served_certificate(tls_server, days, status):
    cert_pem, key_pem = make_certificate(["127.0.0.1", "localhost"], _now() + timedelta(days=days))
    port = tls_server(cert_pem, key_pem)

    (outcome,), points = check_tls_endpoint.fn(host="127.0.0.1", port=port, timeout_s=3, threshold=DAYS, now=_now())

    assert outcome.status == status, outcome.message
    assert outcome.value == pytest.approx(days, abs=0.01)
    assert outcome.details["issuer"] == "CN=VV Test CA" and outcome.details["hostname_ok"] is True
    assert points[0].name == "security.tls.days_to_expiry"


def test_tls_hostname_mismatch_is_crit(tls_server):
    port = tls_server(*make_certificate(["api.other.example"], _now() + timedelta(days=200)))

    (outcome,), _ = check_tls_endpoint.fn(host="127.0.0.1", port=port, timeout_s=3, threshold=DAYS, now=_now())

    assert outcome.status == "crit" and "does not cover 127.0.0.1" in outcome.message
    assert outcome.details["hostname_ok"] is False


def test_certificate_files_in_a_folder(tmp_path):
    (tmp_path / "api.pem").write_bytes(make_certificate(["api.vv.example"], _now() + timedelta(days=3))[0])
    (tmp_path / "junk.pem").write_text("not a cert")

    outcomes, _ = check_certificate_files.fn(cert_files=(str(tmp_path),), threshold=DAYS, now=_now())

    by_id = {o.id: o.status for o in outcomes}
    assert by_id == {"security.tls_certs.file.api": "crit", "security.tls_certs.file.junk": "error"}


def test_no_certificate_to_check_is_unknown_with_a_hint(tmp_path):
    outcomes, points = check_certificate_files.fn(cert_files=(str(tmp_path / "none"),), threshold=DAYS, now=_now(),
                                                  hosts_configured=False)
    assert [(o.id, o.status) for o in outcomes] == [("security.tls_certs", "unknown")] and points == []
    assert "params.hosts" in outcomes[0].hint
    with_hosts, _ = check_certificate_files.fn(cert_files=(str(tmp_path / "none"),), threshold=DAYS, now=_now())
    assert with_hosts == []  # the endpoints are checked by their own tasks


def test_no_credentials_listed_is_unknown_with_a_hint():
    from types import SimpleNamespace

    from tasks.security import review_credentials

    (outcome,), points = review_credentials.fn(params=SimpleNamespace(credentials=()), thresholds={}, now=_now())
    assert outcome.status == "unknown" and "checks.yaml" in outcome.hint and points == []


# --------------------------------------------------------------------------- access logs

NOW = datetime(2026, 11, 26, 12, 30, tzinfo=timezone.utc)


def _clf(ts: datetime, ip: str, path: str, status: int) -> str:
    return (f'{ip} - - [{ts.strftime("%d/%b/%Y:%H:%M:%S +0000")}] "GET {path} HTTP/1.1" {status} 512 '
            f'"-" "curl/8.0"')


def _write_log(tmp_path, burst: int, new_admin_ip: bool) -> AccessLogsParams:
    lines = []
    for day in range(8, 0, -1):  # baseline: 2 failures an hour, admin used from 10.0.0.5 every day
        for hour in range(24):
            ts = NOW - timedelta(days=day, hours=hour)
            lines += [_clf(ts, "10.0.0.9", "/api/vault", 403), _clf(ts, "10.0.0.8", "/login", 401),
                      _clf(ts, "10.0.0.1", "/api/vault", 200)]
        lines.append(_clf(NOW - timedelta(days=day, hours=3), "10.0.0.5", "/admin/params", 200))
    for hour in range(23, 0, -1):
        lines.append(_clf(NOW - timedelta(hours=hour), "10.0.0.9", "/api/vault", 403))
    lines += [_clf(NOW - timedelta(minutes=20, seconds=i % 600), "203.0.113.7", "/api/vault", 403) for i in range(burst)]
    lines.append(_clf(NOW - timedelta(hours=2), "10.0.0.5", "/admin/params", 200))
    if new_admin_ip:
        lines += [_clf(NOW - timedelta(hours=1, minutes=i), "198.51.100.23", "/api/admin/upgrade", 200) for i in range(3)]
    lines.append("garbage line that is not a log entry")
    (tmp_path / "access.log").write_text("\n".join(lines) + "\n")
    return AccessLogsParams(sources=(AccessLogSource(path=str(tmp_path / "access.log"), format="combined"),),
                            admin_path_prefixes=("/admin", "/api/admin"))


def test_a_burst_of_403s_is_flagged_against_the_same_hours_of_previous_days(tmp_path):
    quiet, _ = analyse_access_logs_task.fn(params=_write_log(tmp_path, burst=0, new_admin_ip=False),
                                           thresholds=ACCESS_THRESHOLDS, now=NOW)
    assert {o.id: o.status for o in quiet} == {"security.access_logs.auth_failures": "ok",
                                               "security.access_logs.admin_access": "ok"}

    warn, _ = analyse_access_logs_task.fn(params=_write_log(tmp_path, burst=60, new_admin_ip=False),
                                          thresholds=ACCESS_THRESHOLDS, now=NOW)
    crit, _ = analyse_access_logs_task.fn(params=_write_log(tmp_path, burst=600, new_admin_ip=False),
                                          thresholds=ACCESS_THRESHOLDS, now=NOW)

    assert warn[0].status == "crit"  # 61 failures in an hour that usually has 2: 30x the baseline
    assert warn[0].details["peak_per_hour"] == 61 and warn[0].value == pytest.approx(30.5)
    assert crit[0].status == "crit" and crit[0].details["peak_per_hour"] == 601


def test_auth_failure_rate_alone_warns_without_a_baseline_spike(tmp_path):
    params = _write_log(tmp_path, burst=60, new_admin_ip=False)
    thresholds = {**ACCESS_THRESHOLDS, "auth_failure_spike_ratio": Threshold(warn=100, crit=200, direction="above", unit="x")}

    (auth, _), _ = analyse_access_logs_task.fn(params=params, thresholds=thresholds, now=NOW)

    assert (auth.status, auth.value) == ("warn", 61.0)


def test_a_new_ip_on_admin_paths_is_flagged(tmp_path):
    (_, admin), _ = analyse_access_logs_task.fn(params=_write_log(tmp_path, burst=0, new_admin_ip=True),
                                                thresholds=ACCESS_THRESHOLDS, now=NOW)

    assert admin.status == "warn" and admin.value == 3.0
    assert admin.details["new_ips"] == ["198.51.100.23"] and admin.details["admin_requests"] == 4


def test_json_lines_logs_and_missing_sources(tmp_path):
    records = [{"ts": (NOW - timedelta(minutes=5 + i % 30)).isoformat(), "remote_addr": "192.0.2.1",
                "method": "POST", "path": "/admin/login?x=1", "status": 401} for i in range(80)]
    (tmp_path / "api.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n{broken\n")
    params = AccessLogsParams(sources=(AccessLogSource(path=str(tmp_path / "api.jsonl"), format="jsonl"),
                                       AccessLogSource(path=str(tmp_path / "gone.log"), format="common")),
                              admin_path_prefixes=("/admin",))

    outcomes, _ = analyse_access_logs_task.fn(params=params, thresholds=ACCESS_THRESHOLDS, now=NOW)

    by_id = {o.id: o for o in outcomes}
    assert by_id["security.access_logs.auth_failures"].status == "crit"  # 80 vs a baseline of 0 (floor 1): 80x
    assert by_id["security.access_logs.admin_access"].status == "crit"  # 80 admin requests from a new IP
    assert by_id["security.access_logs.sources"].status == "warn"
    assert parse_access_line(json.dumps(records[0]), "jsonl").path == "/admin/login"


# --------------------------------------------------------------------------- vulnerability reports

PIP_AUDIT = {"dependencies": [{"name": "requests", "version": "2.19.0", "vulns": [
    {"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": ["CVE-2018-18074"]}]},
    {"name": "idna", "version": "3.7", "vulns": []}]}
OSV_SCANNER = {"results": [{"source": {"path": "uv.lock"}, "packages": [{
    "package": {"name": "urllib3", "version": "1.26.0", "ecosystem": "PyPI"},
    "vulnerabilities": [{"id": "GHSA-aaaa", "database_specific": {"severity": "CRITICAL"}},
                        {"id": "GHSA-bbbb", "database_specific": {"severity": "MODERATE"}},
                        {"id": "GHSA-cccc"}],
    "groups": [{"ids": ["GHSA-cccc"], "max_severity": "7.5"}]}]}]}
SLITHER = {"success": True, "results": {"detectors": [
    {"check": "reentrancy-eth", "impact": "High", "confidence": "Medium", "id": "abc1",
     "first_markdown_element": "contracts/VaultV1.sol#L10"},
    {"check": "naming-convention", "impact": "Informational", "confidence": "High", "id": "abc2"}]}}


def test_vulnerability_reports_counted_by_severity_with_new_since_last_run(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "pip-audit.json").write_text(json.dumps(PIP_AUDIT))
    (folder / "slither.json").write_text(json.dumps(SLITHER))
    params = VulnerabilityReportsParams(folder=str(folder), state_file=str(tmp_path / "state.json"))
    day1 = _now()

    (first,), _ = review_vulnerability_reports.fn(params=params, thresholds=VULN_THRESHOLDS, now=day1)
    assert first.details["counts"]["high"] == 2 and first.details["counts"]["info"] == 1
    assert first.details["new_count"] == 3 and first.status == "warn"

    (folder / "osv.json").write_text(json.dumps(OSV_SCANNER))
    (second,), points = review_vulnerability_reports.fn(params=params, thresholds=VULN_THRESHOLDS,
                                                        now=day1 + timedelta(days=2))

    counts = second.details["counts"]
    assert (counts["critical"], counts["high"], counts["medium"], counts["info"]) == (1, 3, 1, 1)
    assert second.details["new_count"] == 3 and second.status == "crit"
    assert second.details["oldest_open_days"] == 2.0
    assert any(p.name == "security.vulns.new" and p.value == 3 for p in points)

    (folder / "slither.json").unlink()
    (third,), _ = review_vulnerability_reports.fn(params=params, thresholds=VULN_THRESHOLDS, now=day1 + timedelta(days=3))
    assert third.details["new_count"] == 0 and len(third.details["resolved"]) == 2
    # every finding goes to the stored result, as the monthly review reads it (open ones and the ones fixed now)
    from vvops.reviews.monthly import vulnerability_status

    status = vulnerability_status({"details": second.details}, now=day1 + timedelta(days=2), start=day1)
    assert {r["severity"]: r["open"] for r in status["by_severity"]}["critical"] == 1
    fixed = [f for f in third.details["findings"] if f.get("fixed_at")]
    assert len(fixed) == 2 and all(f["severity"] for f in fixed)


def test_no_reports_warns_only_when_required(tmp_path):
    params = VulnerabilityReportsParams(folder=str(tmp_path / "none"), state_file=str(tmp_path / "s.json"))
    (required,), _ = review_vulnerability_reports.fn(params=params, thresholds=VULN_THRESHOLDS, now=_now())
    optional = params.model_copy(update={"require_reports": False})
    (relaxed,), _ = review_vulnerability_reports.fn(params=optional, thresholds=VULN_THRESHOLDS, now=_now())
    assert (required.status, relaxed.status) == ("warn", "unknown")  # nothing to check is never "ok"
    assert "write their reports to" in relaxed.hint


def test_no_access_logs_configured_is_unknown_with_a_hint():
    (outcome,), points = analyse_access_logs_task.fn(params=AccessLogsParams(sources=()), thresholds=ACCESS_THRESHOLDS,
                                                     now=NOW)
    assert outcome.status == "unknown" and "config/checks.yaml" in outcome.hint and points == []


# --------------------------------------------------------------------------- credentials


def test_credential_rotation_status():
    creds = [Credential(name="overdue", kind="api_key", stored_in="env:A", owner="mei", created=date(2026, 1, 1),
                        rotation_days=90),
             Credential(name="soon", kind="bot_token", stored_in="env:B", owner="kwame", created=date(2025, 1, 1),
                        rotated=date(2026, 6, 1), rotation_days=180),
             Credential(name="fresh", kind="signing_key", stored_in="prefect-block:x", owner="oscar",
                        created=date(2026, 11, 1), rotation_days=180)]
    threshold = Threshold(warn=14, crit=0, direction="below", unit="days")

    outcomes = evaluate_credentials(credentials=creds, today=date(2026, 11, 20), threshold=threshold)

    assert [(o.id, o.status, o.value) for o in outcomes] == [
        ("security.credentials.overdue", "crit", -233.0), ("security.credentials.soon", "warn", 8.0),
        ("security.credentials.fresh", "ok", 161.0)]
    assert "mei rotates overdue" in outcomes[0].hint


# --------------------------------------------------------------------------- the sub-flow


@pytest.mark.prefect
@pytest.mark.devnet
def test_security_posture_subflow_reviews_open_alerts(ops_flows, quiet_store, ops_store_engine):
    from sqlalchemy import delete

    from flows.daily.security_posture import security_posture
    from vvops.store import Alert, session_scope

    with session_scope(ops_store_engine) as session:
        session.add(Alert(fingerprint="test-sec-1", rule="vault.paused", severity="P1", status="firing"))
        session.add(Alert(fingerprint="test-sec-2", rule="rpc.slow", severity="P3", status="acknowledged"))
    try:
        outcomes = security_posture(environment="devnet")
    finally:
        with session_scope(ops_store_engine) as session:
            session.execute(delete(Alert).where(Alert.fingerprint.in_(["test-sec-1", "test-sec-2"])))

    by_id = {o.id: o for o in outcomes}
    assert by_id["security.alerts"].status == "crit"
    assert by_id["security.alerts"].details["by_severity"] == {"P1": 1, "P3": 1}
    assert by_id["security.access_logs"].status == "unknown"  # devnet: no access logs configured
    assert by_id["security.vulnerability_reports"].status == "unknown"  # devnet: no scan reports
    assert all(o.status != "error" for o in outcomes), [o for o in outcomes if o.status == "error"]
