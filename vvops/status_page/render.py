"""The status page as a static site: index.html (no scripts, no external assets), status.json and history.atom.
Written atomically so a web server never serves half a file; any static host can serve the folder as it is."""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

LABEL = {"operational": "Operational", "degraded_performance": "Degraded performance",
         "partial_outage": "Partial outage", "major_outage": "Major outage", "no_data": "No data"}
COLOUR = {"operational": "#2e7d32", "degraded_performance": "#f9a825", "partial_outage": "#ef6c00",
          "major_outage": "#c62828", "no_data": "#9e9e9e"}
OVERALL = {"operational": "All systems operational", "degraded_performance": "Some systems are degraded",
           "partial_outage": "Partial outage", "major_outage": "Major outage",
           "no_data": "Status unknown: not every component has recent data"}

def human_time(iso: str) -> str:
    """`2026-11-30 20:24 UTC` for a reader; the JSON and the feed keep the full ISO timestamp. Text that is not
    an ISO timestamp is shown as it is."""
    from datetime import datetime, timezone

    try:
        at = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


CSS = """body{font-family:system-ui,sans-serif;max-width:920px;margin:2rem auto;padding:0 1rem;color:#212121}
h1{font-size:1.6rem}.banner{padding:1rem;border-radius:6px;color:#fff;font-weight:600;margin:1rem 0}
.component{border:1px solid #e0e0e0;border-radius:6px;padding:.8rem 1rem;margin:.6rem 0}
.row{display:flex;justify-content:space-between;align-items:baseline}.state{font-weight:600}
.bars{display:flex;gap:1px;margin-top:.5rem}.bar{flex:1;height:24px;border-radius:1px}
.muted{color:#757575;font-size:.85rem}.incident{border-left:4px solid #bdbdbd;padding:.3rem .8rem;margin:1rem 0}
.update{margin:.4rem 0}.update b{text-transform:capitalize}"""


def render_html(snapshot: dict[str, Any]) -> str:
    overall = snapshot["overall"]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(snapshot['title'])}</title>",
             '<meta name=viewport content="width=device-width,initial-scale=1">',
             '<link rel=alternate type="application/atom+xml" href="history.atom" title="Incident history">',
             f"<style>{CSS}</style></head><body>",
             f"<h1>{escape(snapshot['title'])}</h1>",
             f'<div class=banner id=overall data-state="{overall}" style="background:{COLOUR[overall]}">'
             f"{escape(OVERALL[overall])}</div>", "<h2>Components</h2>"]
    for component in snapshot["components"]:
        state = component["state"]
        uptime = "no data" if component["uptime_pct"] is None else f"{component['uptime_pct']:.3f} % uptime"
        bars = "".join(f'<span class=bar title="{d["date"]}: {LABEL[d["state"]]}" style="background:{COLOUR[d["state"]]}">'
                       "</span>" for d in component["days"])
        parts.append(
            f'<div class=component data-component="{escape(component["name"])}" data-state="{state}">'
            f'<div class=row><span><b>{escape(component["name"])}</b> <span class=muted>{escape(component["description"])}'
            f'</span></span><span class=state style="color:{COLOUR[state]}">{LABEL[state]}</span></div>'
            f'<div class=bars>{bars}</div><div class="row muted"><span>{len(component["days"])} days ago</span>'
            f"<span>{uptime}</span><span>today</span></div></div>")
    parts.append("<h2>Incidents</h2>")
    if not snapshot["incidents"]:
        parts.append("<p class=muted>No incidents reported.</p>")
    for incident in snapshot["incidents"]:
        updates = "".join(f'<div class=update><b>{escape(u["status"])}</b> — {escape(u["body"])} '
                          f'<span class=muted><time datetime="{escape(u["at"])}">{human_time(u["at"])}</time></span></div>' for u in incident["updates"])
        parts.append(f'<div class=incident id="incident-{escape(incident["id"])}" data-status="{incident["status"]}">'
                     f'<h3>{escape(incident["title"])}</h3><div class=muted>Status: {escape(incident["status"])}'
                     f' · started {human_time(incident["started_at"])}</div>{updates}</div>')
    parts.append(f'<p class=muted>Updated {human_time(snapshot["generated_at"])} · <a href="status.json">JSON</a> · '
                 '<a href="history.atom">Atom feed</a></p></body></html>')
    return "\n".join(parts)


def render_atom(snapshot: dict[str, Any], public_url: str | None) -> str:
    base = (public_url or "").rstrip("/")
    entries = []
    for incident in snapshot["incidents"]:
        updated = max([u["at"] for u in incident["updates"]] or [incident["started_at"]])
        body = "\n".join(f"{u['status']}: {u['body']} ({u['at']})" for u in incident["updates"])
        entries.append(
            f"<entry><id>urn:vvops:incident:{escape(incident['id'])}</id><title>{escape(incident['title'])} "
            f"[{escape(incident['status'])}]</title><updated>{escape(updated)}</updated>"
            f'<link href="{escape(base)}/#incident-{escape(incident["id"])}"/><content type="text">{escape(body)}</content>'
            "</entry>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<id>urn:vvops:status:{escape(snapshot['environment'])}</id><title>{escape(snapshot['title'])}</title>"
            f"<updated>{escape(snapshot['generated_at'])}</updated>" + "".join(entries) + "</feed>\n")


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_site(out_dir: Path, snapshot: dict[str, Any], *, public_url: str | None = None) -> list[Path]:
    """Write the three files into out_dir (created if missing); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"index.html": render_html(snapshot), "status.json": json.dumps(snapshot, indent=2) + "\n",
             "history.atom": render_atom(snapshot, public_url)}
    for name, text in files.items():
        _write_atomically(out_dir / name, text)
    return [out_dir / name for name in files]
