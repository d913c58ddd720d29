"""Security posture tasks: TLS certificates, access logs, vulnerability reports, credentials, open alerts.

Each returns `(outcomes, metric points)`; the rules live in `vvops.checks.security`. `now` always comes in as
a parameter so a run can be replayed for a given time.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import ssl
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.infra import CheckResult, resolve_path
from tasks.policies import NETWORK_RETRIES
from vvops.checks import CheckOutcome
from vvops.checks.security import (
    OpenAlert,
    analyse_access_logs,
    evaluate_certificate,
    evaluate_credentials,
    evaluate_open_alerts,
    evaluate_vulnerabilities,
    parse_certificate,
    parse_vulnerability_report,
    read_access_log,
)
from vvops.metrics import MetricPoint


def fetch_peer_certificate(host: str, port: int, timeout_s: float) -> bytes:
    """The DER certificate the server presents, read even when expired or untrusted (verification is ours)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"{host}:{port} presented no certificate")
    return der


@task(name="check-tls-endpoint", cache_policy=NO_CACHE, timeout_seconds=60, **NETWORK_RETRIES)
def check_tls_endpoint(*, host: str, port: int, timeout_s: float, threshold: Any, now: datetime) -> CheckResult:
    """A real TLS handshake with the endpoint; its certificate's expiry, issuer and hostname match."""
    cert = parse_certificate(fetch_peer_certificate(host, port, timeout_s))
    target = f"{host}:{port}"
    outcome = evaluate_certificate(target=target, cert=cert, now=now, threshold=threshold, hostname=host)
    return [outcome], [MetricPoint("security.tls.days_to_expiry", outcome.value, {"target": target}, ts=now)]


def tls_error_outcome(host: str, port: int) -> Any:
    def _on_error(exc: BaseException) -> list[CheckOutcome]:
        from vvops.checks.security import _slug

        return [CheckOutcome(f"security.tls_certs.{_slug(f'{host}:{port}')}", "security", "error",
                             f"TLS handshake with {host}:{port} failed: {type(exc).__name__}: {exc}"[:500],
                             hint="is the endpoint up and serving TLS on that port? see infrastructure.http_endpoints",
                             served_by=f"{host}:{port}")]
    return _on_error


def nothing_configured(check_id: str, message: str, hint: str) -> CheckOutcome:
    """`unknown`: the check has nothing to look at (not ok, not counted as passing), with how to configure it."""
    return CheckOutcome(check_id, "security", "unknown", message, hint=hint)


TLS_HINT = ("list the public endpoints under security.tls_certs params.hosts, or put the PEM files in a "
            "params.cert_files folder (checks.yaml)")


@task(name="check-certificate-files", cache_policy=NO_CACHE, timeout_seconds=60)
def check_certificate_files(*, cert_files: tuple[str, ...], threshold: Any, now: datetime,
                            hosts_configured: bool = True) -> CheckResult:
    """PEM certificates on disk (files or folders of *.pem / *.crt); a missing folder has nothing to check, which is
    `unknown` when no endpoint is configured either."""
    outcomes, points = [], []
    for entry in cert_files:
        base = resolve_path(entry)
        files = sorted([*base.glob("*.pem"), *base.glob("*.crt")]) if base.is_dir() else ([base] if base.is_file() else [])
        for file in files:
            check_id = f"security.tls_certs.file.{_file_slug(file)}"
            try:
                cert = parse_certificate(file.read_bytes())
            except Exception as exc:  # noqa: BLE001 - a key file or junk in the folder
                outcomes.append(CheckOutcome(check_id, "security", "error", f"{file.name} is not a certificate: {exc}"[:300]))
                continue
            outcome = evaluate_certificate(target=file.name, cert=cert, now=now, threshold=threshold, check_id=check_id)
            outcomes.append(outcome)
            points.append(MetricPoint("security.tls.days_to_expiry", outcome.value, {"target": file.name}, ts=now))
    if not outcomes and not hosts_configured:
        outcomes.append(nothing_configured("security.tls_certs", "no endpoint configured and no certificate file "
                                           f"found in {', '.join(cert_files)}: no certificate checked", TLS_HINT))
    return outcomes, points


def _file_slug(file: Path) -> str:
    from vvops.checks.security import _slug

    return _slug(file.stem)


@task(name="analyse-access-logs", cache_policy=NO_CACHE, timeout_seconds=300)
def analyse_access_logs_task(*, params: Any, thresholds: dict[str, Any], now: datetime) -> CheckResult:
    from datetime import timedelta

    since = now - timedelta(hours=params.window_hours) - timedelta(days=params.baseline_days)
    streams, missing, used = [], [], []
    for source in params.sources:
        path = resolve_path(source.path)
        if not path.exists() and not list(path.parent.glob(f"{path.name}*.gz")):
            missing.append(str(path))
            continue
        used.append(str(path))
        streams.append(read_access_log(path, source.format, since))  # streamed: logs can be large
    entries = itertools.chain.from_iterable(streams)
    if not params.sources:
        return [CheckOutcome("security.access_logs", "security", "unknown",
                             "nothing to check: no access logs configured for this environment",
                             hint="list the web servers' and RPC gateway's access logs under security.access_logs.sources "
                                  "in config/checks.yaml (path + format: combined | json)")], []
    outcomes = analyse_access_logs(entries=entries, now=now, window_hours=params.window_hours,
                                   baseline_days=params.baseline_days, admin_path_prefixes=params.admin_path_prefixes,
                                   thresholds=thresholds, min_auth_failures=params.min_auth_failures, sources=used)
    if missing:
        outcomes.append(CheckOutcome("security.access_logs.sources", "security", "warn",
                                     f"{len(missing)} configured access logs are missing: {', '.join(missing)}",
                                     hint="is the web server still logging there? fix the path in checks.yaml",
                                     details={"missing": missing}))
    points = [MetricPoint("security.access.auth_failures_peak_per_hour", outcomes[0].details["peak_per_hour"], ts=now),
              MetricPoint("security.access.admin_new_ip_requests", outcomes[1].value or 0.0, ts=now)]
    return outcomes, points


@task(name="review-vulnerability-reports", cache_policy=NO_CACHE, timeout_seconds=120)
def review_vulnerability_reports(*, params: Any, thresholds: dict[str, Any], now: datetime) -> CheckResult:
    """Ingest every JSON/SARIF report in the folder; compare with the findings kept from the last run."""
    folder = resolve_path(params.folder)
    exts = {".json"} if "json" in params.formats or "osv" in params.formats else set()
    if "sarif" in params.formats:
        exts |= {".sarif"}
    reports = sorted(p for p in folder.glob("*") if p.is_file() and (p.suffix in exts or p.name.endswith(".sarif.json"))) \
        if folder.is_dir() else []
    findings, unreadable = [], []
    for report in reports:
        try:
            findings += parse_vulnerability_report(json.loads(report.read_text(encoding="utf-8")), report.name)
        except (ValueError, OSError) as exc:
            unreadable.append(f"{report.name} ({exc})"[:200])
    newest = max((datetime.fromtimestamp(p.stat().st_mtime, timezone.utc) for p in reports), default=None)
    state_path = resolve_path(params.state_file)
    previous = {}
    if state_path.is_file():
        try:
            previous = json.loads(state_path.read_text()).get("findings", {})
        except ValueError:
            previous = {}
    if not reports and not params.require_reports:
        return [CheckOutcome("security.vulnerability_reports", "security", "unknown",
                             f"nothing to check: no vulnerability scan reports in {folder}",
                             hint=f"have the scanners (pip-audit -f json, npm audit --json, osv-scanner --json, any "
                                  f"SARIF) write their reports to {folder} (security.vulnerability_reports.folder)",
                             details={"folder": str(folder), "findings": []})], []
    outcome, state = evaluate_vulnerabilities(findings=findings, previous=previous, now=now, thresholds=thresholds,
                                              newest_report_at=newest, max_report_age_days=params.max_report_age_days,
                                              unreadable=unreadable, require_reports=params.require_reports)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"updated_at": now.isoformat(), "findings": state}, indent=1, sort_keys=True))
    os.replace(tmp, state_path)
    counts = outcome.details["counts"]
    points = [MetricPoint("security.vulns.open", counts[s], {"severity": s}, ts=now) for s in ("critical", "high", "medium", "low")]
    points.append(MetricPoint("security.vulns.new", outcome.details["new_count"], ts=now))
    return [outcome], points


@task(name="review-credentials", cache_policy=NO_CACHE, timeout_seconds=30)
def review_credentials(*, params: Any, thresholds: dict[str, Any], now: datetime) -> CheckResult:
    if not params.credentials:
        return [nothing_configured("security.credentials", "no credentials listed: nothing's rotation is tracked",
                                   "list each key, token and certificate with its owner and last rotation under "
                                   "security.credentials params.credentials in checks.yaml")], []
    outcomes = evaluate_credentials(credentials=params.credentials, today=now.date(),
                                    threshold=thresholds.get("days_until_rotation_due"))
    points = [MetricPoint("security.credentials.days_until_rotation_due", o.value, {"credential": o.id.rsplit(".", 1)[-1]}, ts=now)
              for o in outcomes]
    return outcomes, points


@task(name="review-open-alerts", cache_policy=NO_CACHE, timeout_seconds=60, retries=2, retry_delay_seconds=[1, 2])
def review_open_alerts(*, now: datetime) -> CheckResult:
    from sqlalchemy import select

    from tasks.runtime import store_engine
    from vvops.store import Alert, session_scope

    with session_scope(store_engine()) as session:
        rows = session.execute(select(Alert.rule, Alert.severity, Alert.status, Alert.starts_at, Alert.acknowledged_at,
                                      Alert.labels).where(Alert.status.in_(("firing", "acknowledged")))).all()
    alerts = [OpenAlert(r.rule, r.severity, r.status, r.starts_at, r.status == "acknowledged" or r.acknowledged_at is not None,
                        r.labels or {}) for r in rows]
    outcome = evaluate_open_alerts(alerts=alerts, now=now)
    points = [MetricPoint("security.alerts.open", n, {"severity": s}, ts=now)
              for s, n in {s: outcome.details["by_severity"].get(s, 0) for s in ("P0", "P1", "P2", "P3")}.items()]
    return [outcome], points
