"""The board's cells, drawn in Python: each kind reads as the page shows it, every value is
escaped (event fields are hostile input), and ``data-value`` carries what the sorting needs."""

from __future__ import annotations

from datetime import datetime

from services.workspace.exports import Column
from services.workspace.pages.board_cells import cell, cells
from shared.clock import VN_TZ

LINKS = {"000.00.12.H08": "/board?week=2024-W44&unit=000.00.12.H08"}


def test_counts_and_percentages_read_in_vietnamese_and_are_judged_against_their_target() -> None:
    assert cell(Column("n", "Số", "count"), 12345, unit_links={}) == (
        '<td class="num" data-value="12345">12.345</td>\n'
    )
    share = Column("p", "Đúng hạn", "percent", target=98)
    assert cell(share, 94.44, unit_links={}) == (
        '<td class="num bad" data-value="94.44">94,4%</td>\n'
    )
    assert 'class="num good"' in cell(share, 98.0, unit_links={})
    assert cell(share, None, unit_links={}) == '<td class="num" data-value="">—</td>\n'


def test_moments_show_vietnam_time_and_sort_by_their_iso_form() -> None:
    moment = datetime(2024, 11, 6, 10, 5, tzinfo=VN_TZ)
    assert cell(Column("at", "Lúc", "moment"), moment, unit_links={}) == (
        '<td data-value="2024-11-06T10:05:00+07:00">06/11/2024 10:05</td>\n'
    )
    assert cell(Column("at", "Lúc", "moment"), None, unit_links={}) == (
        '<td data-value="">—</td>\n'
    )


def test_dossiers_and_units_link_to_their_pages_but_a_footer_unit_does_not() -> None:
    dossier = cell(Column("d", "Mã", "dossier"), "000.00.12.H08-241021-0001", unit_links={})
    assert '<a href="/dossiers/000.00.12.H08-241021-0001">' in dossier
    unit = Column("u", "Đơn vị", "unit")
    link = '<a href="/board?week=2024-W44&amp;unit=000.00.12.H08"'  # & escaped, as HTML wants
    assert link in cell(unit, "000.00.12.H08", unit_links=LINKS)
    assert "<a" not in cell(unit, "Tổng", unit_links={}, footer=True)


def test_hostile_text_is_escaped_everywhere_it_lands() -> None:
    hostile = '<script>alert("x")</script>&'
    drawn = cells(
        [Column("name", "Thủ tục"), Column("code", "Mã", "dossier")],
        {"name": hostile, "code": hostile},
        unit_links={},
    )
    assert "<script>" not in drawn
    assert drawn.count("&lt;script&gt;") == 4  # two sort values, the text and the link text
    assert "%3Cscript%3E" in drawn  # in the link itself, encoded
