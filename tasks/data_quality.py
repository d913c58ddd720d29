"""Data-quality suites (Great Expectations 1.x) over the ops store's tables or a restored backup.

Suites are declared here as plain tuples so that nothing imports Great Expectations (slow: several seconds)
until a validation actually runs. `validate_database` reads each table into a pandas DataFrame (newest
`sample_rows`), builds an ephemeral GE context with one pandas asset per table and returns a summary:
`{"success", "evaluated", "failed": ["table.column: expectation (n unexpected, e.g. ...)"], "tables": {t: rows}}`.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

CHECK_STATUSES = ["ok", "unknown", "warn", "crit", "error"]
RUN_STATUSES = ["running", "ok", "unknown", "warn", "crit", "error"]
SEVERITIES = ["P0", "P1", "P2", "P3"]
ALERT_STATUSES = ["firing", "resolved", "silenced", "acknowledged"]

# table -> expectations: ("not_null", col) | ("in_set", col, values) | ("between", col, min, max)
#                        | ("regex", col, pattern) | ("increasing", col) | ("rows_at_least", n) | ("rows_equal", n)
SUITES: dict[str, list[tuple]] = {
    "metrics": [("not_null", "name"), ("not_null", "ts"), ("not_null", "value"), ("not_null", "labels_key"),
                ("regex", "name", r"^\S+$")],
    "check_results": [("not_null", "run_id"), ("not_null", "check_id"), ("not_null", "status"),
                      ("not_null", "area"), ("in_set", "status", CHECK_STATUSES),
                      ("regex", "check_id", r"^[a-z][a-z0-9_]*\.\S+$"),  # area.name..., no blanks
                      ("between", "duration_ms", 0, None)],
    "check_runs": [("not_null", "flow_name"), ("not_null", "started_at"), ("in_set", "status", RUN_STATUSES)],
    "alerts": [("not_null", "fingerprint"), ("in_set", "severity", SEVERITIES), ("in_set", "status", ALERT_STATUSES),
               ("between", "count", 1, None)],
    "backups": [("not_null", "path"), ("not_null", "checksum"), ("between", "size", 0, None)],
    "audit_log": [("not_null", "hash"), ("not_null", "prev_hash"), ("increasing", "id")],
    "processed_blocks": [("not_null", "number"), ("not_null", "hash"), ("between", "number", 0, None),
                         ("increasing", "number")],
    "watcher_checkpoints": [("not_null", "last_block"), ("between", "last_block", 0, None)],
    "alembic_version": [("rows_at_least", 1), ("not_null", "version_num")],
}
DEFAULT_TABLES = ("metrics", "check_results", "check_runs", "alerts")

_ORDER = {"processed_blocks": "chain_id, processed_at, number", "watcher_checkpoints": "chain_id, watcher",
          "alembic_version": "version_num", "audit_log": "id"}


def read_tables(engine: Any, tables: list[str], sample_rows: int) -> dict[str, Any]:
    """Each existing table as a DataFrame: its newest `sample_rows` rows, in a stable order."""
    import pandas as pd
    from sqlalchemy import inspect, text

    present = set(inspect(engine).get_table_names())
    frames: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in tables:
            if table not in present:
                continue
            order = _ORDER.get(table, "id")
            # the newest rows, handed to GE in ascending order (monotonic checks read them in that order)
            desc = ", ".join(f"{c.strip()} DESC" for c in order.split(","))
            sql = f"SELECT * FROM (SELECT * FROM {table} ORDER BY {desc} LIMIT :n) AS t ORDER BY {order}"
            frame = pd.read_sql_query(text(sql), conn, params={"n": sample_rows})
            if table == "processed_blocks" and len(frame) and frame["chain_id"].nunique() > 1:
                for chain_id, part in frame.groupby("chain_id"):  # block numbers are monotonic per chain
                    frames[f"processed_blocks[chain={chain_id}]"] = part.reset_index(drop=True)
            else:
                frames[table] = frame
    return frames


def _expectation(spec: tuple) -> Any:
    import great_expectations as gx

    kind = spec[0]
    if kind == "not_null":
        return gx.expectations.ExpectColumnValuesToNotBeNull(column=spec[1])
    if kind == "in_set":
        return gx.expectations.ExpectColumnValuesToBeInSet(column=spec[1], value_set=list(spec[2]))
    if kind == "between":
        return gx.expectations.ExpectColumnValuesToBeBetween(column=spec[1], min_value=spec[2], max_value=spec[3])
    if kind == "regex":
        return gx.expectations.ExpectColumnValuesToMatchRegex(column=spec[1], regex=spec[2])
    if kind == "increasing":
        return gx.expectations.ExpectColumnValuesToBeIncreasing(column=spec[1])
    if kind == "rows_at_least":
        return gx.expectations.ExpectTableRowCountToBeBetween(min_value=spec[1])
    if kind == "rows_equal":
        return gx.expectations.ExpectTableRowCountToEqual(value=spec[1])
    raise ValueError(f"unknown expectation kind {kind!r}")


def validate_frames(frames: dict[str, Any], suites: dict[str, list[tuple]]) -> dict[str, Any]:
    """Run each table's suite on its DataFrame in one ephemeral GE context; an empty table passes column checks."""
    import logging

    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("vvops_store")
    failed: list[str] = []
    evaluated = 0
    per_table: dict[str, Any] = {}
    for table, frame in frames.items():
        specs = suites.get(table, suites.get(table.split("[")[0], []))
        if frame.empty:  # column expectations trivially pass on no rows; only row-count specs say something
            specs = [s for s in specs if s[0].startswith("rows_")]
        specs = [s for s in specs if s[0].startswith("rows_") or s[1] in frame.columns]
        if not specs:
            per_table[table] = {"rows": len(frame), "evaluated": 0, "failed": 0}
            continue
        # GE's pandas asset wants plain object/number columns: JSON dicts become text
        frame = frame.map(lambda v: repr(v) if isinstance(v, (dict, list)) else v) if len(frame) else frame
        batch_def = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe(f"{table}-all")
        suite = context.suites.add(gx.ExpectationSuite(name=f"{table}-suite"))
        for spec in specs:
            suite.add_expectation(_expectation(spec))
        validation = context.validation_definitions.add(gx.ValidationDefinition(name=f"{table}-check", data=batch_def, suite=suite))
        result = validation.run(batch_parameters={"dataframe": frame})
        table_failed = 0
        for r in result.results:
            evaluated += 1
            if r.success:
                continue
            table_failed += 1
            cfg = r.expectation_config
            column = cfg.kwargs.get("column")
            res = r.result or {}
            detail = ""
            if "unexpected_count" in res:
                sample = list(res.get("partial_unexpected_list") or [])[:3]
                detail = f" ({res['unexpected_count']} unexpected of {res.get('element_count', len(frame))}" + \
                          (f", e.g. {sample}" if sample and cfg.type != "expect_column_values_to_not_be_null" else "") + ")"
            elif "observed_value" in res:
                detail = f" (observed {res['observed_value']})"
            if r.exception_info and r.exception_info.get("raised_exception"):
                detail = f" (error: {str(r.exception_info.get('exception_message'))[:120]})"
            failed.append(f"{table}{'.' + column if column else ''}: {cfg.type}{detail}")
        per_table[table] = {"rows": len(frame), "evaluated": len(result.results), "failed": table_failed}
    return {"success": not failed, "evaluated": evaluated, "failed": failed,
            "tables": {t: v["rows"] for t, v in per_table.items()}, "per_table": per_table}


def validate_database(engine: Any, *, tables: list[str], sample_rows: int,
                      expected_rows: dict[str, int] | None = None, exact: bool = True) -> dict[str, Any]:
    """Validate the given tables of a database (the store or a restored backup).

    `expected_rows` (e.g. recorded when a backup was taken) adds a row-count expectation per table: equal when
    `exact`, at least that many otherwise.
    """
    suites = {t: list(SUITES.get(t, [])) for t in tables}
    for table, n in (expected_rows or {}).items():
        if table in suites and n <= sample_rows:
            suites[table].append(("rows_equal", n) if exact else ("rows_at_least", n))
    frames = read_tables(engine, tables, sample_rows)
    missing = [t for t in tables if t not in frames and not any(f.startswith(f"{t}[") for f in frames)]
    summary = validate_frames(frames, suites)
    if missing:
        summary["failed"].extend(f"{t}: table is missing" for t in missing)
        summary["success"] = False
    return summary


@task(name="validate-store-data", cache_policy=NO_CACHE, timeout_seconds=300)
def validate_store_data(*, tables: tuple[str, ...], sample_rows: int, url: str | None = None) -> dict[str, Any]:
    """The data-integrity suites over the ops store (or the database at `url`)."""
    from tasks.runtime import store_engine
    from vvops.store import make_engine

    engine = make_engine(url) if url else store_engine()
    try:
        return validate_database(engine, tables=list(tables or DEFAULT_TABLES), sample_rows=sample_rows)
    finally:
        if url:
            engine.dispose()
