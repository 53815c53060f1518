"""Server-rendered charts: the geometry of horizontal bar charts, drawn as SVG by gallery/_bar_chart.html."""


def bar_chart(rows: list[tuple[str, int, str]], *, width: int = 400, bar: int = 22, label_width: int = 130) -> dict:
    """Lay out a horizontal bar chart for the SVG template: each bar with its geometry and link."""
    peak = max((count for _, count, _ in rows), default=0) or 1
    room = width - label_width - 60
    bars = [
        {
            "label": label,
            "count": count,
            "href": href,
            "y": i * (bar + 6),
            "width": max(1, round(room * count / peak)) if count else 0,
            "text_y": i * (bar + 6) + bar * 0.7,
        }
        for i, (label, count, href) in enumerate(rows)
    ]
    return {
        "bars": bars,
        "height": max(1, len(rows) * (bar + 6)),
        "width": width,
        "bar": bar,
        "label_width": label_width,
        "value_x": label_width + room + 8,
    }
