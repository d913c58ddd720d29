"""Engines, sessions and Alembic migrations for the ops store; URLs are only ever shown redacted."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from vvops.paths import state_dir

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
STORE_URL_ENV = "VVOPS_STORE_URL"
REDACTED = "********"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class StoreError(Exception):
    """Base error of the ops store."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (bad URL, server down, wrong credentials); the message shows a redacted URL."""


_USERINFO_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&;\s](?:password|passwd|pwd)=)(?P<pw>[^&\s;]*)", re.IGNORECASE)
_CONNINFO_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with any password (user-info or `password=` query parameter) replaced by `********`."""
    text = str(url)
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED if m['pw'] else ''}{m['at']}", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}", text)


def _password_of(url: str) -> str | None:
    """The password in a URL, decoded, if there is one (used only to scrub error text)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).password or None
    except Exception:  # noqa: BLE001 - unparseable URL: nothing to scrub beyond regexes
        return None


def _scrub(message: str, url: str) -> str:
    """Error text with the URL's password (raw and decoded) and any conninfo password removed."""
    message = redact_url(message)
    message = _CONNINFO_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}", message)
    candidates = {_password_of(url)}
    raw = _USERINFO_PASSWORD.search(url)
    if raw:
        candidates.add(raw["pw"])
    for secret in candidates:
        if secret:
            message = message.replace(secret, REDACTED)
    return message


@contextmanager
def _unavailable_on_error(url: str, what: str) -> Iterator[None]:
    """Turn connection-level driver errors into StoreUnavailable carrying only redacted text."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
        detail = _scrub(str(getattr(error, "orig", None) or error), url).strip().splitlines()
        first = detail[0] if detail else type(error).__name__
        raise StoreUnavailable(f"{what}: store unavailable at {redact_url(url)}: {first}") from None
    except sa_exc.ArgumentError as error:
        raise StoreUnavailable(f"{what}: invalid store URL {redact_url(url)}: {_scrub(str(error), url)}") from None


@contextmanager
def _driver_missing(url: str) -> Iterator[None]:
    try:
        yield
    except ImportError as error:
        raise StoreUnavailable(f"creating engine: no database driver for {redact_url(url)}: {error}") from None


def default_store_url(configured: str = "sqlite:///ops.db") -> str:
    """`VVOPS_STORE_URL` if set, else `configured` (config's store.url) with a relative SQLite path placed
    under the state directory (created if missing)."""
    url = os.environ.get(STORE_URL_ENV, "").strip()
    if url:
        return url
    prefix = "sqlite:///"
    relative = configured[len(prefix):] if configured.startswith(prefix) else None
    if relative is None or relative.startswith("/") or relative == ":memory:":
        return configured
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"{prefix}{(folder / relative).resolve()}"


def is_sqlite(url_or_engine: str | Engine) -> bool:
    """Whether a URL or engine points at SQLite."""
    if isinstance(url_or_engine, Engine):
        return url_or_engine.dialect.name == "sqlite"
    return str(url_or_engine).startswith("sqlite")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An Engine for the store: SQLite gets WAL, foreign keys and a busy timeout; PostgreSQL gets pool_pre_ping."""
    with _unavailable_on_error(url, "creating engine"), _driver_missing(url):
        if is_sqlite(url):
            connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
            connect_args.update(kwargs.pop("connect_args", {}))
            engine = create_engine(url, connect_args=connect_args, **kwargs)
            _install_sqlite_hooks(engine)
        else:
            kwargs.setdefault("pool_pre_ping", True)
            engine = create_engine(url, **kwargs)
    return engine


def _install_sqlite_hooks(engine: Engine) -> None:
    """Pragmas on connect, and SQLAlchemy-controlled BEGIN (IMMEDIATE when asked) instead of pysqlite's."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # autocommit asked for (VACUUM cannot run inside a transaction): no BEGIN
        if options.get("sqlite_begin_immediate"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


@contextmanager
def session_scope(engine: Engine, *, immediate: bool = False) -> Iterator[Session]:
    """A Session that commits on success and rolls back on error (`immediate`: SQLite takes the write lock up front)."""
    bind = engine.execution_options(sqlite_begin_immediate=True) if immediate else engine
    session = Session(bind=bind, expire_on_commit=False)
    try:
        with _unavailable_on_error(engine.url.render_as_string(hide_password=False), "session"):
            yield session
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def lock_for_write(session: Session, table: str) -> None:
    """Serialise writers: on SQLite take the database write lock now (a no-op UPDATE); elsewhere do nothing."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f'UPDATE "{table}" SET rowid = rowid WHERE 0'))


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key from an 8-character name (e.g. b"vvopsaud" for the audit tail)."""
    return int.from_bytes(name.encode()[:8].ljust(8, b"_"), "big") & 0x7FFF_FFFF_FFFF_FFFF


def serialise_writers(session: Session, *, key: int, table: str) -> None:
    """Take the transaction-wide write lock of one kind of record before touching any of its rows: PostgreSQL
    an advisory lock (so writers never hold rows in different orders and deadlock), SQLite the database lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        lock_for_write(session, table)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker bound to the engine (expire_on_commit off, like session_scope)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def ping(url: str) -> None:
    """Connect once and run `SELECT 1`; raises StoreUnavailable (redacted) if the store cannot be reached."""
    engine = make_engine(url)
    try:
        with _unavailable_on_error(url, "ping"), engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- migrations


def _alembic_config(connection: Any | None = None) -> Any:
    """An Alembic Config built in code: scripts inside this package, the connection handed over in attributes."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _migration_connection(url: str, what: str) -> Iterator[Any]:
    engine = make_engine(url)
    try:
        with _unavailable_on_error(url, what), engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the store at `url` to `revision` (default: head)."""
    from alembic import command

    with _migration_connection(url, f"migrating to {revision}") as conn:
        command.upgrade(_alembic_config(conn), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the store at `url` to `revision` (default: base, i.e. drop everything)."""
    from alembic import command

    with _migration_connection(url, f"downgrading to {revision}") as conn:
        command.downgrade(_alembic_config(conn), revision)


def current_revision(url: str) -> str | None:
    """The Alembic revision the store at `url` is at, or None if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with _migration_connection(url, "reading revision") as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped in the package's migrations."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    """Every revision shipped in the package's migrations."""
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def new_revision(*, message: str, url: str | None = None, autogenerate: bool = True) -> None:
    """Write a new migration script (autogenerated against the store at `url`, which must be at head)."""
    from alembic import command

    with _migration_connection(url or default_store_url(), "generating revision") as conn:
        command.revision(_alembic_config(conn), message=message, autogenerate=autogenerate)
