"""Security posture rules (playbook: Daily Operations / Security Posture), no Prefect here.

Certificates, access logs, vulnerability reports, credential rotation and open alerts. Every function takes
the current time as `now` so the rules are testable with fixed clocks.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from vvops.checks.infra import _threshold_text
from vvops.checks.outcome import CheckOutcome, worst_status

AREA = "security"


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    common_name: str | None
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    serial: str
    self_signed: bool


def parse_certificate(data: bytes) -> CertInfo:
    """Parse a DER or PEM certificate with `cryptography` (no trust decisions: expired certs parse too)."""
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID, NameOID

    cert = x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_certificate(data)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        sans += ext.get_values_for_type(x509.DNSName)
        sans += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    return CertInfo(subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                    common_name=str(cns[0].value) if cns else None, sans=tuple(sans),
                    not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                    serial=format(cert.serial_number, "x"), self_signed=cert.issuer == cert.subject)


def hostname_matches(host: str, cert: CertInfo) -> bool:
    """RFC 6125 matching: SANs when present (CN only without SANs), one left-most wildcard label, IPs exactly."""
    host = host.rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    names = list(cert.sans) or ([cert.common_name] if cert.common_name else [])
    for name in names:
        name = name.rstrip(".").lower()
        if ip is not None:
            try:
                if ipaddress.ip_address(name) == ip:
                    return True
            except ValueError:
                continue
            continue
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            head, _, rest = host.partition(".")
            if head and rest == name[2:] and "*" not in rest:
                return True
    return False


def evaluate_certificate(*, target: str, cert: CertInfo, now: datetime, threshold: Any,
                         hostname: str | None = None, check_id: str | None = None) -> CheckOutcome:
    """Days to expiry against the threshold; expired, not yet valid or a hostname mismatch is crit."""
    check_id = check_id or f"{AREA}.tls_certs.{_slug(target)}"
    days = (cert.not_after - now).total_seconds() / 86400
    status = threshold.evaluate(days) if threshold is not None else "ok"
    problems: list[str] = []
    if days <= 0:
        status = "crit"
        problems.append(f"expired {cert.not_after:%Y-%m-%d}")
    if cert.not_before > now:
        status = "crit"
        problems.append(f"not valid before {cert.not_before:%Y-%m-%d}")
    host_ok = None
    if hostname is not None:
        host_ok = hostname_matches(hostname, cert)
        if not host_ok:
            status = "crit"
            problems.append(f"does not cover {hostname} (names: {', '.join(cert.sans) or cert.common_name})")
    message = f"{target}: expires {cert.not_after:%Y-%m-%d} ({days:.1f} days), issuer {cert.issuer}"
    if problems:
        message += "; " + "; ".join(problems)
    hint = None
    if host_ok is False:
        hint = "the served certificate is for another name: check the load balancer / TLS termination config"
    elif status != "ok":
        hint = "renew the certificate (ACME/CA) and deploy it; check that auto-renewal runs"
    return CheckOutcome(check_id, AREA, status, message, value=round(days, 2), threshold=_threshold_text(threshold),
                        hint=hint, served_by=target,
                        details={"subject": cert.subject, "issuer": cert.issuer, "sans": list(cert.sans),
                                 "not_before": cert.not_before.isoformat(), "not_after": cert.not_after.isoformat(),
                                 "serial": cert.serial, "self_signed": cert.self_signed, "hostname_ok": host_ok})


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "x"


# --------------------------------------------------------------------------- access logs

_CLF = re.compile(
    r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+)(?: [^"]*)?" '
    r'(?P<status>\d{3}) (?P<size>\S+)(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?')


@dataclass(frozen=True)
class AccessEntry:
    ts: datetime
    ip: str
    method: str
    path: str
    status: int


def _parse_ts(value: Any) -> datetime | None:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), timezone.utc)
    if not isinstance(value, str):
        return None
    for fmt in ("%d/%b/%Y:%H:%M:%S %z",):
        try:
            return datetime.strptime(value, fmt).astimezone(timezone.utc)
        except ValueError:
            pass
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def parse_access_line(line: str, fmt: str) -> AccessEntry | None:
    """One log line (common / combined / jsonl) → AccessEntry; None for lines it cannot read."""
    line = line.strip()
    if not line:
        return None
    if fmt == "jsonl":
        try:
            rec = json.loads(line)
        except ValueError:
            return None
        if not isinstance(rec, dict):
            return None
        ts = _parse_ts(rec.get("ts", rec.get("time", rec.get("timestamp", rec.get("@timestamp")))))
        ip = rec.get("ip") or rec.get("remote_addr") or rec.get("client_ip") or rec.get("src_ip")
        path = rec.get("path") or rec.get("uri") or rec.get("url")
        status = rec.get("status", rec.get("status_code"))
        if ts is None or not ip or not path or status is None:
            return None
        try:
            return AccessEntry(ts, str(ip), str(rec.get("method", "GET")), str(path).split("?")[0], int(status))
        except (TypeError, ValueError):
            return None
    m = _CLF.match(line)
    if not m:
        return None
    ts = _parse_ts(m["ts"])
    if ts is None:
        return None
    return AccessEntry(ts, m["ip"], m["method"], m["path"].split("?")[0], int(m["status"]))


def read_access_log(path: Path, fmt: str, since: datetime) -> Iterator[AccessEntry]:
    """Entries at or after `since` from a log and its gzipped archives (`<name>*.gz` next to it)."""
    files = [p for p in sorted(path.parent.glob(f"{path.name}*.gz")) if p.is_file()]
    if path.is_file():
        files.append(path)
    for file in files:
        if datetime.fromtimestamp(file.stat().st_mtime, timezone.utc) < since:
            continue
        opener = gzip.open if file.suffix == ".gz" else open
        with opener(file, "rt", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                entry = parse_access_line(line, fmt)
                if entry is not None and entry.ts >= since:
                    yield entry


def analyse_access_logs(*, entries: Iterable[AccessEntry], now: datetime, window_hours: int, baseline_days: int,
                        admin_path_prefixes: tuple[str, ...], thresholds: dict[str, Any],
                        min_auth_failures: int = 10, sources: list[str] | None = None) -> list[CheckOutcome]:
    """Two verdicts: 401/403 spikes versus the same hours on the previous days, and admin-path access from new IPs.

    The window is the last `window_hours`; the baseline is the same hours of each of the `baseline_days` days
    before. An hour's spike ratio is its 401/403 count over the baseline mean for that hour (at least 1); it only
    counts from `min_auth_failures` failures in the hour so a handful of typos never pages anyone.
    """
    start = now - timedelta(hours=window_hours)
    earliest = start - timedelta(days=baseline_days)
    window_fail: Counter[int] = Counter()  # hour offset from start -> count
    base_fail: Counter[int] = Counter()    # hour offset (same hours, earlier days) -> total over days
    admin_window: list[AccessEntry] = []
    admin_ips_before: set[str] = set()
    total = 0
    for e in entries:
        if e.ts < earliest or e.ts > now:
            continue
        total += 1
        is_admin = any(e.path == p or e.path.startswith(p.rstrip("/") + "/") for p in admin_path_prefixes)
        if e.ts >= start:
            if e.status in (401, 403):
                window_fail[int((e.ts - start).total_seconds() // 3600)] += 1
            if is_admin:
                admin_window.append(e)
        else:
            if is_admin and e.status < 400:
                admin_ips_before.add(e.ip)
            if e.status in (401, 403):
                days_back = int((start - e.ts).total_seconds() // 86400) + 1
                if days_back <= baseline_days:
                    shifted = e.ts + timedelta(days=days_back)
                    base_fail[int((shifted - start).total_seconds() // 3600)] += 1
    # ----- auth failures
    peak_hour, peak = max(window_fail.items(), key=lambda kv: kv[1], default=(0, 0))
    ratios = {h: c / max(base_fail.get(h, 0) / baseline_days, 1.0) for h, c in window_fail.items() if c >= min_auth_failures}
    spike_hour, spike = max(ratios.items(), key=lambda kv: kv[1], default=(None, 0.0))
    rate_t, ratio_t = thresholds.get("auth_failures_per_hour"), thresholds.get("auth_failure_spike_ratio")
    rate_status = rate_t.evaluate(peak) if rate_t else "ok"
    ratio_status = ratio_t.evaluate(spike) if ratio_t and spike_hour is not None else "ok"
    status = worst_status([rate_status, ratio_status])
    top_ips = Counter(e.ip for e in admin_window if e.status in (401, 403)).most_common(5)
    by_ratio = ratio_status == status and status != "ok"
    peak_at = start + timedelta(hours=spike_hour if by_ratio else peak_hour)
    message = (f"{sum(window_fail.values())} 401/403 in the last {window_hours} h; busiest hour {peak} "
               f"(from {peak_at:%Y-%m-%d %H:00} UTC)")
    if spike_hour is not None:
        message += f", {spike:.1f}x its usual level"
    auth = CheckOutcome(
        f"{AREA}.access_logs.auth_failures", AREA, status, message,
        value=round(spike if by_ratio else float(peak), 2),
        threshold=_threshold_text(ratio_t if by_ratio else rate_t),
        hint=None if status == "ok" else "look for credential stuffing or a broken client; block abusive IPs at the edge",
        details={"window_failures": sum(window_fail.values()), "peak_per_hour": peak, "spike_ratio": round(spike, 2),
                 "baseline_days": baseline_days, "entries": total, "sources": sources or [],
                 "top_failing_admin_ips": top_ips})
    # ----- admin access
    new_hits = [e for e in admin_window if e.ip not in admin_ips_before]
    new_ips = sorted({e.ip for e in new_hits})
    admin_t = thresholds.get("admin_requests_from_new_ips")
    admin_status = admin_t.evaluate(len(new_hits)) if admin_t else "ok"
    admin = CheckOutcome(
        f"{AREA}.access_logs.admin_access", AREA, admin_status,
        f"{len(admin_window)} admin-path requests in the last {window_hours} h; {len(new_hits)} from "
        f"{len(new_ips)} IPs not seen on admin paths in the previous {baseline_days} days"
        + (f": {', '.join(new_ips[:10])}" if new_ips else ""),
        value=float(len(new_hits)), threshold=_threshold_text(admin_t),
        hint=None if admin_status == "ok" else "confirm with the team who used the admin paths from these IPs; "
                                               "if nobody did, treat it as a security incident",
        details={"admin_requests": len(admin_window), "new_ips": new_ips,
                 "new_ip_requests": len(new_hits), "known_ips": len(admin_ips_before),
                 "admin_statuses": dict(Counter(str(e.status) for e in admin_window))})
    return [auth, admin]


# --------------------------------------------------------------------------- vulnerability reports

SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")


@dataclass(frozen=True)
class Finding:
    key: str
    tool: str
    ident: str
    severity: str
    subject: str
    report: str = ""


def _cvss_severity(score: float) -> str:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0:
        return "low"
    return "info"


def _osv_severity(vuln: dict[str, Any], group_max: str | None = None) -> str:
    db = vuln.get("database_specific") or {}
    sev = db.get("severity") if isinstance(db, dict) else None
    if isinstance(sev, str) and sev.lower() in SEVERITIES:
        return sev.lower()
    if isinstance(sev, str) and sev.lower() == "moderate":
        return "medium"
    for value in [group_max] + [s.get("score") for s in vuln.get("severity") or [] if isinstance(s, dict)]:
        try:
            return _cvss_severity(float(value))
        except (TypeError, ValueError):
            continue
    return "unknown"


def parse_vulnerability_report(doc: Any, report: str = "") -> list[Finding]:
    """Findings from pip-audit JSON, OSV (one record, a list, or osv-scanner output), Slither JSON or SARIF.

    pip-audit carries no severity: its findings count as `high` (an unrated known vulnerability in a dependency
    is treated as serious until someone rates it).
    """
    out: list[Finding] = []
    if isinstance(doc, dict) and "dependencies" in doc:  # pip-audit
        for dep in doc["dependencies"]:
            for v in dep.get("vulns") or []:
                subject = f"{dep.get('name')}=={dep.get('version')}"
                out.append(Finding(f"pip-audit:{v.get('id')}:{subject}", "pip-audit", str(v.get("id")), "high", subject, report))
    elif isinstance(doc, dict) and "results" in doc and isinstance(doc["results"], dict) and "detectors" in doc["results"]:
        for d in doc["results"]["detectors"] or []:  # Slither
            impact = str(d.get("impact", "unknown")).lower()
            severity = {"informational": "info", "optimization": "info"}.get(impact, impact)
            severity = severity if severity in SEVERITIES else "unknown"
            elements = d.get("elements") or []
            where = elements[0].get("name", "") if elements and isinstance(elements[0], dict) else ""
            ident = d.get("id") or f"{d.get('check')}:{where}"
            out.append(Finding(f"slither:{ident}", "slither", str(d.get("check")), severity,
                               (d.get("first_markdown_element") or where or "")[:200], report))
    elif isinstance(doc, dict) and "runs" in doc:  # SARIF
        for run in doc["runs"] or []:
            tool = ((run.get("tool") or {}).get("driver") or {}).get("name", "sarif")
            for r in run.get("results") or []:
                level = r.get("level", "warning")
                props = r.get("properties") or {}
                sev = str(props.get("severity", "")).lower()
                if sev not in SEVERITIES:
                    sev = {"error": "high", "warning": "medium", "note": "low", "none": "info"}.get(level, "unknown")
                locs = r.get("locations") or [{}]
                uri = (((locs[0].get("physicalLocation") or {}).get("artifactLocation")) or {}).get("uri", "")
                out.append(Finding(f"{tool}:{r.get('ruleId')}:{uri}", tool, str(r.get("ruleId")), sev, uri, report))
    elif isinstance(doc, dict) and "results" in doc and isinstance(doc["results"], list):  # osv-scanner
        for result in doc["results"]:
            for pkg in result.get("packages") or []:
                info = pkg.get("package") or {}
                subject = f"{info.get('name')}=={info.get('version')}"
                group_max = {i: g.get("max_severity") for g in pkg.get("groups") or [] for i in g.get("ids") or []}
                for v in pkg.get("vulnerabilities") or []:
                    out.append(Finding(f"osv:{v.get('id')}:{subject}", "osv", str(v.get("id")),
                                       _osv_severity(v, group_max.get(v.get("id"))), subject, report))
    elif isinstance(doc, dict) and "id" in doc and ("affected" in doc or "severity" in doc):  # one OSV record
        subjects = [f"{(a.get('package') or {}).get('name')}" for a in doc.get("affected") or []] or [""]
        for subject in subjects:
            out.append(Finding(f"osv:{doc['id']}:{subject}", "osv", str(doc["id"]), _osv_severity(doc), subject, report))
    elif isinstance(doc, list):
        for item in doc:
            out += parse_vulnerability_report(item, report)
    else:
        raise ValueError("not a pip-audit, OSV, Slither or SARIF report")
    return out


def evaluate_vulnerabilities(*, findings: list[Finding], previous: dict[str, dict[str, Any]], now: datetime,
                             thresholds: dict[str, Any], newest_report_at: datetime | None,
                             max_report_age_days: int, unreadable: list[str],
                             require_reports: bool = True) -> tuple[CheckOutcome, dict[str, dict[str, Any]]]:
    """The verdict plus the new state (finding key → first_seen, severity) to keep for the next run."""
    unique = {f.key: f for f in findings}
    state = {k: {"first_seen": previous.get(k, {}).get("first_seen", now.isoformat()), "severity": f.severity,
                 "tool": f.tool, "id": f.ident, "subject": f.subject} for k, f in unique.items()}
    new = sorted(k for k in unique if k not in previous)
    resolved = sorted(k for k in previous if k not in unique)
    counts = {s: sum(1 for f in unique.values() if f.severity == s) for s in SEVERITIES}
    oldest = min((datetime.fromisoformat(v["first_seen"]) for v in state.values()), default=None)
    oldest_days = None if oldest is None else round((now - oldest).total_seconds() / 86400, 1)
    statuses = []
    crit_t, high_t = thresholds.get("critical_findings"), thresholds.get("high_findings")
    if crit_t:
        statuses.append(crit_t.evaluate(counts["critical"]))
    if high_t:
        statuses.append(high_t.evaluate(counts["high"]))
    problems = []
    if newest_report_at is None:
        if require_reports:
            statuses.append("warn")
            problems.append("no scan reports found")
    elif (now - newest_report_at).days > max_report_age_days:
        statuses.append("warn")
        problems.append(f"newest report is {(now - newest_report_at).days} days old: scans have stopped?")
    if unreadable:
        statuses.append("warn")
        problems.append(f"unreadable reports: {', '.join(unreadable)}")
    status = worst_status(statuses)
    message = (f"{len(unique)} open findings (critical {counts['critical']}, high {counts['high']}, "
               f"medium {counts['medium']}, low {counts['low']}); {len(new)} new since the last run, "
               f"{len(resolved)} resolved" + (f"; oldest open {oldest_days} days" if oldest_days is not None else ""))
    if problems:
        message += "; " + "; ".join(problems)
    by_crit = counts["critical"] > 0 and crit_t is not None
    outcome = CheckOutcome(
        f"{AREA}.vulnerability_reports", AREA, status, message,
        value=float(counts["critical"] if by_crit else counts["high"]),
        threshold=_threshold_text(crit_t if by_crit else high_t),
        hint=None if status == "ok" else "triage the new findings with security_ops; patch or record an exception",
        details={"counts": counts, "new": new[:50], "new_count": len(new), "resolved": resolved[:50],
                 # every open finding (and the ones fixed since the last run), as the monthly review reads them
                 "findings": ([{"id": v["id"] or k, "key": k, "severity": v["severity"], "first_seen": v["first_seen"],
                                "tool": v["tool"], "subject": v["subject"]} for k, v in sorted(state.items())]
                              + [{"id": previous[k].get("id") or k, "key": k, "severity": previous[k].get("severity"),
                                  "first_seen": previous[k].get("first_seen"), "fixed_at": now.isoformat(),
                                  "tool": previous[k].get("tool"), "subject": previous[k].get("subject")}
                                 for k in resolved])[:1000],
                 "oldest_open_days": oldest_days,
                 "newest_report_at": newest_report_at.isoformat() if newest_report_at else None})
    return outcome, state


# --------------------------------------------------------------------------- credentials


def evaluate_credentials(*, credentials: Iterable[Any], today: date, threshold: Any) -> list[CheckOutcome]:
    """One outcome per credential: days until its rotation is due (negative: overdue)."""
    out = []
    for c in credentials:
        due = c.due()
        days = (due - today).days
        status = threshold.evaluate(days) if threshold is not None else ("crit" if days <= 0 else "ok")
        state = f"overdue by {-days} days" if days < 0 else (f"due today" if days == 0 else f"due in {days} days")
        out.append(CheckOutcome(
            f"{AREA}.credentials.{_slug(c.name)}", AREA, status,
            f"{c.name} ({c.kind}, {c.stored_in}): last rotated {c.last_rotated}, rotation {state} ({due})",
            value=float(days), threshold=_threshold_text(threshold),
            hint=None if status == "ok" else f"{c.owner} rotates {c.name}, then updates `rotated:` in checks.yaml",
            details={"owner": c.owner, "kind": c.kind, "stored_in": c.stored_in, "due": due.isoformat(),
                     "last_rotated": c.last_rotated.isoformat(), "rotation_days": c.rotation_days}))
    return out


# --------------------------------------------------------------------------- open alerts


@dataclass(frozen=True)
class OpenAlert:
    rule: str
    severity: str
    status: str
    starts_at: datetime
    acknowledged: bool = False
    labels: dict[str, Any] = field(default_factory=dict)


def evaluate_open_alerts(*, alerts: list[OpenAlert], now: datetime) -> CheckOutcome:
    """Open alerts by severity: an unacknowledged firing P0/P1 is crit, any other open P0–P2 is warn."""
    counts = Counter(a.severity for a in alerts)
    unacked_high = [a for a in alerts if a.status == "firing" and not a.acknowledged and a.severity in ("P0", "P1")]
    status = "crit" if unacked_high else ("warn" if any(a.severity in ("P0", "P1", "P2") for a in alerts) else "ok")
    oldest = min((a.starts_at for a in alerts), default=None)
    by_rule: dict[str, int] = defaultdict(int)
    for a in alerts:
        by_rule[a.rule] += 1
    return CheckOutcome(
        f"{AREA}.alerts", AREA, status,
        f"{len(alerts)} open alerts (" + ", ".join(f"{s} {counts.get(s, 0)}" for s in ("P0", "P1", "P2", "P3")) + ")"
        + (f"; {len(unacked_high)} P0/P1 firing unacknowledged" if unacked_high else ""),
        value=float(len(alerts)), threshold={"crit": "unacknowledged firing P0/P1", "warn": "any open P0-P2"},
        hint=None if status == "ok" else "acknowledge or resolve the alerts; escalate per oncall.yaml",
        details={"by_severity": dict(counts), "by_rule": dict(by_rule),
                 "oldest_open_hours": None if oldest is None else round((now - oldest).total_seconds() / 3600, 1)})
