"""Server-drawn charts (console/charts.py): named for a screen reader, bars in proportion, no figure drawn
where there is none, and text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from console import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def widths(svg: ET.Element) -> list[float]:
    return [float(r.get("width")) for r in svg.iter(f"{SVG}rect")]


def test_a_chart_is_an_image_named_by_its_title_and_description():
    svg = parse(charts.bars("Hold reasons", "Orders held, by reason.", [charts.Point("Price", 3.0, "3")]))
    assert svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert (title.text, desc.text) == ("Hold reasons", "Orders held, by reason.")
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def test_bars_are_in_proportion_to_their_values():
    svg = parse(
        charts.bars(
            "t",
            "d",
            [charts.Point("a", 10.0, "10"), charts.Point("b", 5.0, "5"), charts.Point("c", 0.0, "0")],
        )
    )
    a, b, c = widths(svg)
    assert abs(a - 2 * b) < 0.2 and c == 0.0


def test_a_share_is_drawn_against_one_hundred_percent_and_a_missing_figure_not_at_all():
    svg = parse(
        charts.columns(
            "On-time rate",
            "d",
            [
                charts.Point("1 Nov", 0.5, "50%"),
                charts.Point("2 Nov", None, "no figure"),
                charts.Point("3 Nov", 1.0, "100%"),
            ],
            share=True,
        )
    )
    heights = [float(r.get("height")) for r in svg.iter(f"{SVG}rect")]
    assert (
        len(heights) == 2 and abs(heights[1] - 2 * heights[0]) < 0.2
    )  # 100 % is twice 50 %, no column for None


def test_text_is_escaped():
    markup = str(charts.bars("<b>", "a & b", [charts.Point("<script>", 1.0, "1")]))
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert re.search(r"<title[^>]*>&lt;b&gt;</title>", markup)
