"""The on-call hand-off (playbook "Handoff for 24/7 coverage"), sent by the ops sweep: when a rotation's shift
changes, one message in the ops channel names who hands over to whom, with the open incidents and active
alerts the incoming person takes over. Once per shift (the outbox key names the rotation and the shift start);
a shift that began more than `CATCH_UP` ago (the ops host was down) is not announced late."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import func, select

from tasks.incidents import notify_quietly
from tasks.infra import as_utc
from tasks.runtime import ops_config, store_engine
from vvops.config.oncall import upcoming_shifts
from vvops.store import session_scope
from vvops.store.models import Alert, Incident

CATCH_UP = timedelta(hours=1)


def _slack_id(cfg: Any, person: str | None) -> str | None:
    try:
        return cfg.person(person).slack_user_id if person else None
    except KeyError:
        return None


def _open_work(environment: str) -> str:
    with session_scope(store_engine()) as session:
        incidents = session.scalar(select(func.count()).select_from(Incident)
                                   .where(Incident.status.in_(("open", "mitigated"))))
        alerts = session.scalar(select(func.count()).select_from(Alert).where(Alert.status == "firing"))
    return f"{incidents} open incident(s), {alerts} firing alert(s) handed over"


@task(name="oncall-handoff", cache_policy=NO_CACHE)
def oncall_handoff_sweep(*, environment: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Queue the hand-off message of every rotation whose shift changed within the last `CATCH_UP`."""
    at = as_utc(now)
    cfg = ops_config(environment)
    sent = []
    for rotation in cfg.oncall.rotations:
        shifts = upcoming_shifts(rotation, at - CATCH_UP, days=1)
        for previous, current in zip(shifts, shifts[1:]):
            if not (at - CATCH_UP < current.start <= at) or previous.primary == current.primary:
                continue
            key = f"oncall-handoff:{environment}:{rotation.name}:{current.start.astimezone(timezone.utc):%Y%m%dT%H%M}"
            queued = notify_quietly(kind="oncall_handoff", environment=environment, thread_key=None,
                                    idempotency_key=key, channel_purpose="ops",
                                    payload={"rotation": rotation.name, "outgoing": previous.primary,
                                             "incoming": current.primary, "at": current.start.isoformat(),
                                             "outgoing_slack_id": _slack_id(cfg, previous.primary),
                                             "incoming_slack_id": _slack_id(cfg, current.primary),
                                             "notes": _open_work(environment)})
            sent.append({"rotation": rotation.name, "outgoing": previous.primary, "incoming": current.primary,
                         "at": current.start.isoformat(), "key": key, "queued": queued})
    return sent
