"""A standalone HTML report: the markdown rendered to HTML, every referenced PNG embedded as base64, so the
file can be mailed or archived without the reports folder."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_IMG = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
_BULLET = re.compile(r"^\s*[-*] ")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*|(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITAL = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;
text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%}h1{border-bottom:2px solid #333}
h2{border-bottom:1px solid #aaa;margin-top:1.6em}code{background:#f3f3f3;padding:0 3px}.pass{color:#080}.fail{color:#b00}"""


def _data_uri(src: str, base_dir: Path | None) -> str:
    path = Path(src)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.suffix.lower() == ".png" and path.is_file():
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return src


def _inline(text: str, base_dir: Path | None) -> str:
    parts, last = [], 0
    for m in _IMG.finditer(text):
        parts.append(_fmt(text[last:m.start()]))
        parts.append(f'<img alt="{html.escape(m.group(1))}" src="{_data_uri(m.group(2), base_dir)}">')
        last = m.end()
    parts.append(_fmt(text[last:]))
    return "".join(parts)


def _fmt(text: str) -> str:
    t = html.escape(text, quote=False)
    t = _CODE.sub(r"<code>\1</code>", t)
    t = _BOLD.sub(lambda m: f"<b>{m.group(1) or m.group(2)}</b>", t)
    return _ITAL.sub(r"<i>\1</i>", t)


def markdown_to_html(markdown: str, *, base_dir: Path | None = None) -> str:
    """The subset of markdown our reports use: headings, tables, bullet lists, paragraphs, images, emphasis."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
            continue
        if m := re.match(r"^(#{1,6})\s+(.*)$", line):
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2), base_dir)}</h{n}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", r.strip())[1:-1]] for r in rows]
            body = [c for c in cells[1:] if not all(re.fullmatch(r":?-{3,}:?", x) for x in c)]
            table = ["<table><tr>" + "".join(f"<th>{_inline(c, base_dir)}</th>" for c in cells[0]) + "</tr>"]
            table += ["<tr>" + "".join(f"<td>{_inline(c, base_dir)}</td>" for c in r) + "</tr>" for r in body]
            out.append("".join(table) + "</table>")
        elif re.match(r"^\s*[-*] ", line):
            items = []
            while i < len(lines) and re.match(r"^\s*[-*] ", lines[i]):
                item = _inline(_BULLET.sub("", lines[i]), base_dir)
                items.append(f"<li>{item}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|")) \
                    and not re.match(r"^\s*[-*] ", lines[i]):
                para.append(_inline(lines[i].strip(), base_dir))
                i += 1
            out.append("<p>" + "<br>".join(para) + "</p>")
    return "\n".join(out)


def standalone_html(title: str, markdown: str, *, base_dir: Path | None = None) -> str:
    """A complete HTML document with inline CSS and every local PNG embedded."""
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n{markdown_to_html(markdown, base_dir=base_dir)}\n</body></html>\n")
