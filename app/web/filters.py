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


@bp.app_template_filter("stage_duration")
def stage_duration(stage: dict) -> str:
    started = datetime.fromisoformat(stage["started_at"].rstrip("Z"))
    finished = datetime.fromisoformat(stage["finished_at"].rstrip("Z"))
    return f"{(finished - started).total_seconds():.1f} s"
