"""Daily Operations / Routine Maintenance (data management): log rotation and archiving, backup verification,
data integrity checks, storage optimisation — driven by config/checks.yaml.

Log rotation, the backup verification and the data-integrity suites run concurrently; the storage optimisation
(prune + VACUUM) runs after the tasks that read the store, so VACUUM does not wait on their reads.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from tasks.infra import as_utc, finish_section
from tasks.maintenance import check_data_integrity, optimise_storage, rotate_logs, take_store_backup, verify_newest_backup
from tasks.runtime import ops_config
from vvops.checks import CheckOutcome

AREA = "maintenance"


@flow(name="routine-maintenance", log_prints=True)
def routine_maintenance(environment: str = "devnet", now: datetime | None = None) -> list[CheckOutcome]:
    """Rotate logs, verify the newest backup (restore + validate), validate the store's data, prune + VACUUM."""
    now = as_utc(now)
    cfg = ops_config(environment)
    pending, readers = [], []

    logs = cfg.check("maintenance.log_rotation")
    if logs.enabled:
        pending.append((logs.id, AREA, rotate_logs.submit(params=logs.typed_params(), now=now), None))

    integrity = cfg.check("maintenance.data_integrity")
    if integrity.enabled:
        future = check_data_integrity.submit(params=integrity.typed_params(), thresholds=dict(integrity.thresholds))
        pending.append((integrity.id, AREA, future, None))
        readers.append(future)

    backups = cfg.check("maintenance.backups")
    if backups.enabled:
        p = backups.typed_params()
        if p.take_backup:
            taken = take_store_backup.submit(params=p, now=now)
            taken.wait()  # a failed backup does not stop the verification: it then finds the previous one
            pending.append((f"{backups.id}.take", AREA, _as_result(taken), None))
        verify = verify_newest_backup.submit(params=p, thresholds=dict(backups.thresholds), now=now)
        pending.append((backups.id, AREA, verify, None))
        readers.append(verify)

    retention = cfg.check("maintenance.metrics_retention")
    if retention.enabled:
        for reader in readers:  # wait (not wait_for: a failed reader must not cancel the optimisation)
            reader.wait()
        future = optimise_storage.submit(params=retention.typed_params(), now=now)
        pending.append((retention.id, AREA, future, None))

    return finish_section(pending)


class _as_result:
    """Adapts the take-backup future to gather_outcomes: success adds no outcome, failure becomes an error one."""

    def __init__(self, future):
        self.future = future

    def result(self, raise_on_failure: bool = True):
        self.future.result(raise_on_failure=True)
        return [], []
