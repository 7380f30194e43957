"""Geometry for the dashboard's server-rendered SVG bar chart (no JS, no chart library).

The template only draws what this computes: stacked bars per hour, a
rounded y-axis scale and a few hour labels.
"""

from app.services.states import TERMINAL_STATES

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 12, 26
LABEL_EVERY = 3  # hours between x-axis labels


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ that is ≥ value (at least 1), so the axis reads well."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def bar_chart(buckets: list[dict]) -> dict:
    """Bars (each a stack of one segment per terminal state), y ticks and x labels."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max((sum(b[s] for s in TERMINAL_STATES) for b in buckets), default=0))
    slot = plot_w / max(len(buckets), 1)
    bars = []
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot + slot * 0.15
        base = TOP + plot_h
        segments = []
        for state in TERMINAL_STATES:
            height = plot_h * bucket[state] / top
            if bucket[state]:
                segments.append({"state": state, "y": base - height, "h": height})
            base -= height
        hour = bucket["hour"]
        bars.append(
            {
                "x": x,
                "w": slot * 0.7,
                "segments": segments,
                "hour": hour,
                "label": hour.strftime("%H:00") if i % LABEL_EVERY == 0 else None,
                "counts": {s: bucket[s] for s in TERMINAL_STATES},
                "total": sum(bucket[s] for s in TERMINAL_STATES),
            }
        )
    values = (0, top // 2, top) if top % 2 == 0 else (0, top)
    ticks = [{"value": v, "y": TOP + plot_h - plot_h * v / top} for v in values]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "baseline": TOP + plot_h,
        "label_y": HEIGHT - 8,
        "bars": bars,
        "ticks": ticks,
        "total": sum(bar["total"] for bar in bars),
    }
