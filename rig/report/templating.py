"""The report's Jinja2 environment: templates under ``templates/``, autoescaped, and the CSS and
JS under ``static/`` read as package data, to be inlined so that the page stays one file.

Every ``{{ value }}`` first goes through ``clean`` (``finalize``), which strips terminal colour
codes and makes control characters visible, then through Jinja2's autoescape: a template never
decides how to escape, and nothing from a board, a broker or a test can open a tag.
"""

from __future__ import annotations

import functools
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined, Template
from markupsafe import Markup

from rig.report.text import clean


def _finalize(value: object) -> object:
    # Markup is already HTML (a nested template's output, the inlined static files): left alone.
    if isinstance(value, Markup):
        return value
    return clean(value)


def _fixed(value: float, decimals: int = 1) -> str:
    """A coordinate or a time with a fixed number of decimals, as the SVG and tables show them."""
    return f"{value:.{decimals}f}"


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("rig.report", "templates"),
        autoescape=True,
        finalize=_finalize,
        # A name missing from a template's data is a bug in the rig, not an empty cell.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fixed"] = _fixed
    return env


def template(name: str) -> Template:
    return environment().get_template(name)


@functools.cache
def static(name: str) -> Markup:
    """A file of ``static/`` as trusted markup, for a ``<style>`` or ``<script>`` element.

    Those elements hold raw text (an entity would not be decoded), so the file is inlined as is;
    it is the rig's own file, never data from a run.
    """
    text = resources.files("rig.report").joinpath("static").joinpath(name).read_text(encoding="utf-8")
    if "</" in text:
        # "</style>" or "</script>" inside would end the element early.
        raise ValueError(f"rig/report/static/{name} must not contain '</'")
    return Markup(text)
