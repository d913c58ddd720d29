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
