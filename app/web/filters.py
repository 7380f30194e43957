"""Template filters for times shown on the pages."""

from datetime import datetime

from app.models import utcnow
from app.web import bp


@bp.app_template_filter("age")
def age(created: datetime) -> str:
    """'42 s', '5 min', '3 h', '2 d': how long ago, in one short word."""
    seconds = int((utcnow() - created).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{max(seconds, 0)} s"


@bp.app_template_filter("seconds")
def seconds(value: float) -> str:
    """'1.5 s' under a minute, '2 min 5 s' under an hour, else '1 h 3 min'."""
    if value < 60:
        return f"{value:.1f} s"
    whole = int(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


@bp.app_template_filter("stage_duration")
def stage_duration(stage: dict) -> str:
    started = datetime.fromisoformat(stage["started_at"].rstrip("Z"))
    finished = datetime.fromisoformat(stage["finished_at"].rstrip("Z"))
    return seconds((finished - started).total_seconds())
