"""Daily Operations / Security Posture: security alert review, access log analysis, certificate and credential
status, vulnerability scan results — every check concurrently, driven by config/checks.yaml."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from tasks.infra import as_utc, finish_section
from tasks.runtime import ops_config
from tasks.security import (
    analyse_access_logs_task,
    check_certificate_files,
    check_tls_endpoint,
    review_credentials,
    review_open_alerts,
    review_vulnerability_reports,
    tls_error_outcome,
)
from vvops.checks import CheckOutcome

AREA = "security"


@flow(name="security-posture", log_prints=True)
def security_posture(environment: str = "devnet", now: datetime | None = None) -> list[CheckOutcome]:
    """TLS certificates (handshake + files), access logs, vulnerability reports, credentials, open alerts."""
    now = as_utc(now)
    cfg = ops_config(environment)
    pending = []

    tls = cfg.check("security.tls_certs")
    if tls.enabled:
        p = tls.typed_params()
        threshold = tls.thresholds.get("days_to_expiry")
        for h in p.hosts:
            future = check_tls_endpoint.with_options(task_run_name=f"tls-{h.host}-{h.port}").submit(
                host=h.host, port=h.port, timeout_s=p.timeout_s, threshold=threshold, now=now)
            pending.append((f"{tls.id}.{h.host}", AREA, future, tls_error_outcome(h.host, h.port)))
        # with neither hosts nor files found the task reports `unknown` (nothing checked is not a pass)
        pending.append((f"{tls.id}.files", AREA,
                        check_certificate_files.submit(cert_files=p.cert_files, threshold=threshold, now=now,
                                                       hosts_configured=bool(p.hosts)), None))

    for check_id, task_fn in (("security.access_logs", analyse_access_logs_task),
                              ("security.vulnerability_reports", review_vulnerability_reports),
                              ("security.credentials", review_credentials)):
        check = cfg.check(check_id)
        if check.enabled:
            future = task_fn.submit(params=check.typed_params(), thresholds=dict(check.thresholds), now=now)
            pending.append((check_id, AREA, future, None))
    pending.append(("security.alerts", AREA, review_open_alerts.submit(now=now), None))

    return finish_section(pending)
