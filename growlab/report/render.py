"""report.md and a self-contained report.html (tables inline, plots as base64 PNGs)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from growlab.report.tables import Table


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_md(table: Table) -> str:
    lines = [f"## {table.title}", ""]
    if table.note:
        lines += [table.note, ""]
    if table.rows:
        lines.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
        lines.append("|" + "---|" * len(table.headers))
        for i, row in enumerate(table.rows):
            cells = [_md_cell(c) for c in row]
            if i in table.links:
                cells[0] = f"[{cells[0]}]({table.links[i]})"
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def markdown(title: str, intro: list[str], tables: list[Table], plots: list[Path]) -> str:
    parts = [f"# {title}", "", *intro, ""]
    parts += [table_md(t) for t in tables]
    parts += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(parts) + "\n"


def table_html(table: Table) -> str:
    out = [f"<h2>{html.escape(table.title)}</h2>"]
    if table.note:
        out.append(f"<p class='note'>{html.escape(table.note)}</p>")
    if table.rows:
        out.append("<table><thead><tr>")
        out += [f"<th>{html.escape(h)}</th>" for h in table.headers]
        out.append("</tr></thead><tbody>")
        for i, row in enumerate(table.rows):
            cells = [html.escape(c) for c in row]
            if i in table.links:
                cells[0] = f"<a href='{html.escape(table.links[i])}'>{cells[0]}</a>"
            out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        out.append("</tbody></table>")
    return "\n".join(out)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.note { color: #555; font-size: 0.9em; } img { max-width: 100%; margin: 0.5em 0 1.5em; }
"""


def page(title: str, intro: list[str], tables: list[Table], plots: list[Path]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [f"<p>{html.escape(line)}</p>" for line in intro if line]
    body += [table_html(t) for t in tables]
    body.append("<h2>Plots</h2>")
    for path in plots:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        body.append(f"<img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'>")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
