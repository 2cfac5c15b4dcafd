"""The HTML pages' renderer: jinja2 templates in grader/report/templates/, autoescaped.

Every value a template prints is escaped, after terminal colour codes and control characters
are dropped, so no student-controlled text (ids, class and layer names, errors, outputs, cell
sources, messages) can add markup. Only what the grader builds itself is marked safe: the
templates' own macros and the SVG charts of svg.py (which escape their labels)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from grader.report.text import clean_text, points


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("grader.report", "templates"), autoescape=True, finalize=_printable,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.filters["points"] = points
    return environment


def _printable(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    return "" if value is None else clean_text(value)


def render_page(template: str, **context: Any) -> str:
    """A complete, self-contained HTML document from `template` and its data."""
    return _environment().get_template(template).render(**context)
