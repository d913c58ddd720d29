"""Back up the ops store and restore it into a scratch database, with checksums to compare the two."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url

from vvops.store.models import Base


@dataclass(frozen=True)
class BackupFile:
    path: Path
    size: int
    sha256: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup_store(*, url: str, dest_dir: Path, stamp: str) -> BackupFile:
    """A consistent copy of the store: SQLite's online backup API, or `pg_dump -Fc` for PostgreSQL."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        dest = dest_dir / f"ops-{stamp}.sqlite"
        source = sqlite3.connect(parsed.database)
        target = sqlite3.connect(dest)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
    else:
        dest = dest_dir / f"ops-{stamp}.pgdump"
        _run(["pg_dump", "-Fc", "-f", str(dest), _libpq_url(url)], "pg_dump")
    return BackupFile(dest, dest.stat().st_size, file_sha256(dest))


def restore_store(*, backup: BackupFile, url: str, scratch_url: str) -> None:
    """Restore a backup into the (empty) scratch database at scratch_url."""
    if make_url(url).get_backend_name() == "sqlite":
        scratch = Path(make_url(scratch_url).database)
        scratch.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(backup.path)
        target = sqlite3.connect(scratch)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
    else:
        _run(["pg_restore", "--no-owner", "-d", _libpq_url(scratch_url), str(backup.path)], "pg_restore")


def table_fingerprints(engine: Engine) -> dict[str, dict[str, object]]:
    """Row count and a content checksum of every store table, to compare a restore with its source."""
    fingerprints: dict[str, dict[str, object]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            count = conn.scalar(select(func.count()).select_from(table)) or 0
            digest = hashlib.sha256()
            for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(row)).encode())
            fingerprints[table.name] = {"rows": count, "sha256": digest.hexdigest()}
    return fingerprints


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run(argv: list[str], what: str) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise RuntimeError(f"{what} is not installed: install the PostgreSQL client tools (apt-get install postgresql-client)") from None
    except subprocess.CalledProcessError as exc:
        # stderr may echo the connection string: keep only the first line, which names the failure.
        first = (exc.stderr or "").strip().splitlines()[:1]
        raise RuntimeError(f"{what} failed: {first[0] if first else f'exit {exc.returncode}'}") from None


def scratch_database_url(*, url: str, name: str, scratch_dir: Path) -> str:
    """Where a drill restores to: a new SQLite file, or a new database on the same PostgreSQL server."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///{scratch_dir / f'{name}.sqlite'}"
    from sqlalchemy import create_engine, text

    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def drop_scratch_database(*, scratch_url: str) -> None:
    """Remove a drill's scratch database (a PostgreSQL database, or the SQLite file)."""
    parsed = make_url(scratch_url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


# --------------------------------------------------------------------------- checksum sidecars (backup verification)

SIDECAR_SUFFIX = ".sha256"


def write_checksum_sidecar(backup: BackupFile) -> Path:
    """`<backup>.sha256` in `sha256sum` format, so the file can be verified without the store."""
    sidecar = backup.path.with_name(backup.path.name + SIDECAR_SUFFIX)
    sidecar.write_text(f"{backup.sha256}  {backup.path.name}\n")
    return sidecar


def read_checksum_sidecar(path: Path) -> str | None:
    """The sha256 recorded next to a backup (`<file>.sha256`), or None when there is none."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return None
    words = sidecar.read_text().split()
    return words[0].lower() if words else None


# --------------------------------------------------------------------------- drill measurements: RPO and validation

_TIME_COLUMNS = ("created_at", "opened_at", "ts", "at", "requested_at", "decided_at", "started_at", "updated_at",
                 "processed_at", "starts_at")


def _holds_datetimes(column) -> bool:
    from sqlalchemy import DateTime

    return isinstance(getattr(column.type, "impl", column.type), DateTime)


def newest_row_at(engine: Engine, now=None):
    """The newest timestamp in any store table (what a restore of this database brings back at most).

    Times after `now` are not write times (a silence or window scheduled ahead, a chain's time-travelled block
    times): counting them would make the recovery point lie in the future and the RPO negative."""
    from datetime import datetime, timezone

    now = now or datetime.now(timezone.utc)
    newest = None
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for name in _TIME_COLUMNS:
                if name in table.c and _holds_datetimes(table.c[name]):  # not slack_threads.ts, a Slack id
                    column = table.c[name]
                    value = conn.scalar(select(func.max(column)).where(column <= now))
                    if value is not None:
                        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
                        newest = value if newest is None or value > newest else newest
    return newest


def restore_comparison(source: dict[str, dict[str, object]], restored: dict[str, dict[str, object]]) -> list[dict[str, object]]:
    """One row per table: rows and sha256 of the source next to the restored copy (input of the validation)."""
    return [{"table": t, "source_rows": source[t]["rows"], "rows": restored.get(t, {}).get("rows", -1),
             "source_sha256": source[t]["sha256"], "sha256": restored.get(t, {}).get("sha256", "missing")}
            for t in sorted(source)]


def validate_restore_with_gx(comparison: list[dict[str, object]], restored_url: str | None = None) -> dict[str, object]:
    """Great Expectations (1.x, ephemeral context) over the restore: per table, restored rows == source rows and
    restored sha256 == source sha256; with `restored_url`, each restored table's real row count is checked too.
    Imported lazily (GE takes seconds to import)."""
    import logging

    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    source = context.data_sources.add_pandas("dr_drill")
    results: list[dict[str, object]] = []

    def run(name: str, frame, expectations) -> bool:
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_suite"))
        for e in expectations:
            suite.add_expectation(e)
        validation = context.validation_definitions.add(gx.ValidationDefinition(name=f"{name}_v", data=batch, suite=suite))
        outcome = validation.run(batch_parameters={"dataframe": frame})
        for r in outcome.results:
            cfg = r.expectation_config
            results.append({"asset": name, "expectation": cfg.type, "kwargs": {k: v for k, v in cfg.kwargs.items()
                                                                              if k != "batch_id"},
                            "success": bool(r.success),
                            "unexpected": (r.result or {}).get("partial_unexpected_list")})
        return bool(outcome.success)

    summary = pd.DataFrame(comparison)
    ok = run("restore_summary", summary, [
        gxe.ExpectTableRowCountToEqual(value=len(comparison)),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="rows", column_B="source_rows"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="sha256", column_B="source_sha256"),
    ])
    if restored_url is not None:
        from vvops.store.db import make_engine

        engine = make_engine(restored_url)
        try:
            with engine.connect() as conn:
                for row in comparison:
                    frame = pd.read_sql(select(Base.metadata.tables[row["table"]]), conn)
                    ok = run(f"table_{row['table']}", frame,
                             [gxe.ExpectTableRowCountToEqual(value=int(row["source_rows"]))]) and ok
        finally:
            engine.dispose()
    return {"success": ok, "results": results, "failed": [r for r in results if not r["success"]]}
