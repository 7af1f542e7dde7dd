"""Every report table as a file of its own: tables/<name>.csv holds its rows as report.json
does (named fields, full precision, one row per record), tables/<name>.tex the rows as the
report prints them, a booktabs `tabular` to `\\input` into a paper (needs
`\\usepackage{booktabs}`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from growlab.report.tables import Table

TABLES_DIR = "tables"

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_UNICODE = {
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "—": "---",
    "×": r"$\times$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "→": r"$\to$",
    "−": "-",
}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(c, c) for c in text)
    for char, command in _LATEX_UNICODE.items():
        out = out.replace(char, command)
    return out


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def write_csv(table: Table, path: Path) -> None:
    records = table.as_records()
    columns = list(records[0]) if records else [h for h in table.headers]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        for record in records:
            writer.writerow({k: csv_cell(v) for k, v in record.items()})


def latex(table: Table) -> str:
    """A booktabs tabular of the table's printed rows (text columns left, numbers right)."""
    text_columns = {i for i, row in enumerate(zip(*table.rows, strict=False)) if not _numeric(row)}
    if not table.rows:
        text_columns = set(range(len(table.headers)))
    spec = "".join("l" if i in text_columns else "r" for i in range(len(table.headers)))
    lines = [
        f"% {latex_escape(table.title)}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in table.headers) + r" \\",
        "\\midrule",
        *(" & ".join(latex_escape(c) for c in row) + r" \\" for row in table.rows),
        "\\bottomrule",
        "\\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


def _numeric(column: tuple[str, ...]) -> bool:
    def number(cell: str) -> bool:
        head = cell.split(" ")[0].lstrip("+[")
        try:
            float(head.rstrip(","))
        except ValueError:
            return cell in ("—", "never")
        return True

    return all(number(c) for c in column)


def write_tables(tables: list[Table], out_dir: Path) -> list[Path]:
    folder = out_dir / TABLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        csv_path, tex_path = folder / f"{table.name}.csv", folder / f"{table.name}.tex"
        write_csv(table, csv_path)
        tex_path.write_text(latex(table))
        written += [csv_path, tex_path]
    return written
