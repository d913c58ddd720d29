"""`vvops status-page build | serve`: write the public status page, or serve it at /status/ (what `vvops up` runs)."""

from __future__ import annotations

import argparse
import functools
import http.server
from pathlib import Path
from typing import Any

DEFAULT_STATUS_PORT = 8088


def add_commands(sub: Any, port_type: Any) -> None:
    page = sub.add_parser("status-page", help="the public status page").add_subparsers(title="status-page commands")
    build = page.add_parser("build", help="derive the page from the store and write it (publish: --out DIR, then "
                                          "copy DIR to any static host)")
    build.add_argument("--environment", "-e", default="devnet")
    build.add_argument("--out", type=Path, default=None, help="folder to write (default: <state dir>/status/<env>/)")
    build.set_defaults(handler=cmd_build)
    serve = page.add_parser("serve", help="serve the page at http://HOST:PORT/status/ (foreground)")
    serve.add_argument("--environment", "-e", default="devnet")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port_type, default=DEFAULT_STATUS_PORT)
    serve.set_defaults(handler=cmd_serve)


def _build(environment: str, out: Path | None) -> tuple[dict[str, Any], Path]:
    from vvops.config import load_config
    from vvops.status_page import build_status_page, default_site_dir
    from vvops.store import make_engine

    cfg = load_config(environment=environment)
    engine = make_engine(cfg.store.resolved_url().get_secret_value())  # VVOPS_STORE_URL wins, as everywhere
    try:
        out_dir = out or default_site_dir(environment)
        return build_status_page(engine=engine, cfg=cfg, out_dir=out_dir), out_dir
    finally:
        engine.dispose()


def cmd_build(args: argparse.Namespace) -> int:
    snapshot, out_dir = _build(args.environment, args.out)
    states = ", ".join(f"{c['name']}: {c['state']}" for c in snapshot["components"]) or "no components configured"
    print(f"status page {out_dir}: {snapshot['overall']} ({states}; {len(snapshot['incidents'])} incidents)")
    return 0


class _StatusHandler(http.server.SimpleHTTPRequestHandler):
    """Files of the site folder under /status/; `/` redirects there. Nothing else is served.

    Every answer is revalidated in full (no 304): the page can be rewritten twice within a second (an incident
    mitigated, then resolved), and http.server's Last-Modified has one-second resolution, so a conditional GET
    would keep showing readers the older page."""

    def _route(self) -> bool:
        if self.path in ("/", "/status"):
            self.send_response(302)
            self.send_header("Location", "/status/")
            self.end_headers()
            return False
        if not self.path.startswith("/status/"):
            self.send_error(404)
            return False
        self.path = self.path.removeprefix("/status") or "/"
        del self.headers["If-Modified-Since"]
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self._route():
            super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if self._route():
            super().do_HEAD()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request is noise here
        pass


def cmd_serve(args: argparse.Namespace) -> int:
    _, out_dir = _build(args.environment, None)
    handler = functools.partial(_StatusHandler, directory=str(out_dir))
    server = http.server.ThreadingHTTPServer((args.host, args.port), handler)
    print(f"status page http://{args.host}:{args.port}/status/ from {out_dir}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
