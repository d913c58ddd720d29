"""Infrastructure check rules (playbook: Daily Operations / Infrastructure Checks), no Prefect here.

The tasks in `tasks/infra.py` measure; these functions turn measurements into CheckOutcomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vvops.checks.outcome import CheckOutcome, worst_status

AREA = "infrastructure"


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def _threshold_text(threshold: Any) -> Any:
    if threshold is None:
        return None
    return {k: getattr(threshold, k) for k in ("warn", "crit", "direction", "unit") if getattr(threshold, k, None) is not None}


@dataclass(frozen=True)
class HttpSample:
    """One request to an endpoint: its status (None when it failed), latency and what went wrong."""

    status: int | None
    latency_ms: float | None
    body_ok: bool = True
    error: str | None = None


def evaluate_http_endpoint(*, name: str, url: str, samples: list[HttpSample], expected_status: int,
                           latency_threshold: Any, success_threshold: Any) -> CheckOutcome:
    """Availability (% of samples with the expected status and body) and latency p50/p95 of the answered samples."""
    check_id = f"{AREA}.http_endpoints.{name}"
    total = len(samples)
    good = [s for s in samples if s.status == expected_status and s.body_ok and s.error is None]
    answered = [s.latency_ms for s in samples if s.latency_ms is not None and s.status is not None]
    success_pct = 100.0 * len(good) / total if total else 0.0
    p50, p95 = percentile(answered, 50), percentile(answered, 95)
    problems = sorted({s.error or (f"status {s.status} (expected {expected_status})" if s.status != expected_status
                                   else "unexpected body") for s in samples if s not in good})
    details = {"url": url, "samples": total, "success_pct": round(success_pct, 1),
               "latency_p50_ms": None if p50 is None else round(p50, 1),
               "latency_p95_ms": None if p95 is None else round(p95, 1), "problems": problems}
    if not answered:
        return CheckOutcome(check_id, AREA, "crit", f"{name} unreachable: {'; '.join(problems) or 'no answer'}",
                            value=0.0, threshold=_threshold_text(success_threshold), details=details,
                            hint=f"is the service behind {url} running? check its logs and the network path")
    avail = success_threshold.evaluate(success_pct) if success_threshold else ("ok" if good else "crit")
    speed = latency_threshold.evaluate(p95) if latency_threshold else "ok"
    status = worst_status([avail, speed])
    if avail != "ok" and (avail == status):
        message = f"{name}: {success_pct:.0f}% of {total} requests as expected ({'; '.join(problems)})"
        value, threshold = success_pct, _threshold_text(success_threshold)
        hint = "the endpoint answers with an unexpected status or body: look at the service's recent deploys and logs"
    else:
        message = f"{name}: p50 {p50:.0f} ms, p95 {p95:.0f} ms over {len(answered)} requests, {success_pct:.0f}% ok"
        value, threshold = p95, _threshold_text(latency_threshold)
        hint = None if status == "ok" else "slow responses: check the host's load and the service's dependencies"
    return CheckOutcome(check_id, AREA, status, message, value=round(value, 1), threshold=threshold, hint=hint,
                        details=details, served_by=url)


def evaluate_database(*, backend: str, latencies_ms: list[float], size_mb: float | None, integrity: str,
                      connections: int | None, latency_threshold: Any, size_threshold: Any,
                      extra: dict[str, Any] | None = None) -> CheckOutcome:
    """The store answers; its probe latency (p50), size and integrity verdict ("ok" or what is wrong)."""
    p50 = percentile(latencies_ms, 50)
    statuses = []
    if p50 is not None and latency_threshold is not None:
        statuses.append(latency_threshold.evaluate(p50))
    if size_mb is not None and size_threshold is not None:
        statuses.append(size_threshold.evaluate(size_mb))
    if integrity != "ok":
        statuses.append("crit")
    status = worst_status(statuses)
    details = {"backend": backend, "latency_p50_ms": None if p50 is None else round(p50, 2),
               "latencies_ms": [round(x, 2) for x in latencies_ms],
               "size_mb": None if size_mb is None else round(size_mb, 3), "integrity": integrity,
               "connections": connections, **(extra or {})}
    parts = [f"{backend} answers in {p50:.1f} ms (p50)" if p50 is not None else f"{backend} did not answer",
             f"size {size_mb:.1f} MB" if size_mb is not None else "size unknown",
             "integrity ok" if integrity == "ok" else f"integrity: {integrity}"]
    if connections is not None:
        parts.append(f"{connections} connections")
    hint = None
    if integrity != "ok":
        hint = "the store reports corruption: stop writers, take a copy, restore the newest verified backup (DR runbook)"
    elif status != "ok":
        hint = "slow or large store: look at the metrics retention and run the routine maintenance (VACUUM/ANALYZE)"
    return CheckOutcome(f"{AREA}.database", AREA, status, ", ".join(parts),
                        value=None if p50 is None else round(p50, 2), threshold=_threshold_text(latency_threshold),
                        hint=hint, details=details)


def evaluate_storage(*, name: str, path: str, total_bytes: int, used_bytes: int, free_bytes: int,
                     threshold: Any) -> CheckOutcome:
    used_pct = 100.0 * used_bytes / total_bytes if total_bytes else 0.0
    status = threshold.evaluate(used_pct) if threshold is not None else "ok"
    gib = 1024 ** 3
    return CheckOutcome(
        f"{AREA}.storage.{name}", AREA, status,
        f"{path}: {used_pct:.1f}% used, {free_bytes / gib:.1f} GiB free of {total_bytes / gib:.1f} GiB",
        value=round(used_pct, 2), threshold=_threshold_text(threshold),
        hint=None if status == "ok" else "free space: rotate logs, prune old backups and metrics, or grow the volume",
        details={"path": path, "total_bytes": total_bytes, "used_bytes": used_bytes, "free_bytes": free_bytes})


def evaluate_host(*, cpu_pct: float, mem_pct: float, cpu_threshold: Any, mem_threshold: Any,
                  extra: dict[str, Any] | None = None) -> CheckOutcome:
    cpu = cpu_threshold.evaluate(cpu_pct) if cpu_threshold is not None else "ok"
    mem = mem_threshold.evaluate(mem_pct) if mem_threshold is not None else "ok"
    status = worst_status([cpu, mem])
    driver_is_mem = mem == status and mem != "ok" and cpu != status
    return CheckOutcome(
        f"{AREA}.host", AREA, status, f"CPU {cpu_pct:.0f}%, memory {mem_pct:.0f}%",
        value=round(mem_pct if driver_is_mem else cpu_pct, 1),
        threshold=_threshold_text(mem_threshold if driver_is_mem else cpu_threshold),
        hint=None if status == "ok" else "find the busy processes (top / the Prefect worker) and the ops store's load",
        details={"cpu_pct": cpu_pct, "mem_pct": mem_pct, **(extra or {})})
