"""One cell of a board table as HTML, in Python: the board draws some 4,000 cells (a province's
units, trend, lists and accountability tables), and a Jinja macro call per cell cost more than
all of the page's reads. Every value is escaped as the template escapes it. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2.filters import do_urlencode
from markupsafe import Markup, escape

from services.workspace.exports import Column
from services.workspace.pages.board_lateness import hours_text
from shared.vocabulary import local_time_text, number_text, percent_text

_NUMERIC = ' class="num"'


def cells(
    columns: Sequence[Column],
    row: Mapping[str, Any],
    *,
    unit_links: Mapping[str, str],
    footer: bool = False,
) -> Markup:
    """A row's cells, one per column (one call from the template per row, not per cell)."""
    return Markup("").join(
        cell(column, row[column.key], unit_links=unit_links, footer=footer) for column in columns
    )


def cell(
    column: Column, value: Any, *, unit_links: Mapping[str, str], footer: bool = False
) -> Markup:
    """``<td>`` of ``value`` read as ``column.kind`` says, with ``data-value`` for sorting."""
    kind = column.kind
    blank = "" if value is None else value
    if kind == "count":
        return _td(_NUMERIC, value, escape(number_text(value)))
    if kind == "hours":
        return _td(_NUMERIC, blank, escape(hours_text(value)))
    if kind == "percent":
        assert column.target is not None  # a percent column is judged against its target
        judged = "" if value is None else (" good" if value >= column.target else " bad")
        return _td(f' class="num{judged}"', blank, escape(percent_text(value)))
    if kind == "moment":
        shown = escape(local_time_text(value) or "—")
        return _td("", value.isoformat() if value else "", shown)
    if kind == "dossier":
        return _td("", value, f'<a href="/dossiers/{do_urlencode(value)}">{escape(value)}</a>')
    if kind == "unit" and not footer:
        link = f'<a href="{escape(unit_links[value])}" title="Xem riêng đơn vị này">'
        return _td("", value, f"{link}{escape(value)}</a>")
    return _td("", blank, escape("—" if value in (None, "") else value))


def _td(attributes: str, sort_value: Any, html: str) -> Markup:
    """``attributes`` and ``html`` are markup already; ``sort_value`` is escaped here."""
    return Markup(f'<td{attributes} data-value="{escape(sort_value)}">{html}</td>\n')
