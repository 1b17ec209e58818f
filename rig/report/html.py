"""One self-contained HTML page for the runs of a night, one run folder per board.

The page has no external resource (styles, script and plots are inline) and links artifacts by
paths relative to the page, so the folder holding the page and the runs can be zipped and moved.
``rig.report.page`` computes what the page says; the Jinja2 templates under ``templates/``
render it, autoescaped (``rig.report.templating``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rig.atomic import write_atomically
from rig.report.formatting import LABELS
from rig.report.load import RunView, load_runs
from rig.report.page import LEGEND, page
from rig.report.templating import static, template

DEFAULT_TITLE = "MicroPython MQTT rig report"


def write_html_report(runs: Sequence[Path], out: Path, title: str = DEFAULT_TITLE) -> Path:
    """Write the report of ``runs`` (run folders, each with a run.json) to ``out``; returns ``out``.

    Written atomically, so a reader never opens half a page; a new page gets the mode ``open()``
    would give it (a web server serving the folder must be able to read it).
    """
    out = Path(out)
    html = render_report(load_runs([Path(r) for r in runs]), out.parent, title, time.time())
    write_atomically(out, html)
    return out


def render_report(runs: list[RunView], base: Path, title: str, generated: float) -> str:
    """The page; ``base`` is the folder the page will be in, for relative links."""
    return template("report.html.j2").render(
        page=page(runs, base, title, generated),
        legend=LEGEND,
        labels=LABELS,
        css=static("report.css"),
        js=static("report.js"),
    )
