"""Template filters for times and durations, in the page's language (Flask-Babel)."""

import json
import math
from datetime import datetime

from babel.dates import format_timedelta
from flask_babel import format_datetime, format_decimal, format_time, get_locale, gettext

from app.models import iso, utcnow
from app.web import bp
from tasks.pipelines import files

bp.add_app_template_filter(iso, "iso")  # machine-readable, for <time datetime="...">


@bp.app_template_filter("age")
def age(created: datetime) -> str:
    """'5 min. ago' / '5分钟前': how long ago, in one short phrase."""
    delta = created - utcnow()
    return format_timedelta(delta, add_direction=True, format="short", locale=get_locale())


@bp.app_template_filter("when")
def when(value: datetime) -> str:
    """A full date and time, e.g. 'Nov 23, 2026, 10:22:24 AM UTC'.

    In UTC and saying so: static/js/localtime.js rewrites it in the reader's zone.
    """
    return f"{format_datetime(value, 'medium')} UTC"


@bp.app_template_filter("clock")
def clock(value: datetime) -> str:
    """The time of day only, for the timeline and the event log ('10:22:24 AM UTC')."""
    return f"{format_time(value, 'medium')} UTC"


@bp.app_template_filter("seconds")
def seconds(value: float) -> str:
    """'1.5 s' under a minute, '2 min 5 s' under an hour, else '1 h 3 min'."""
    if value < 60:
        return gettext("%(s).1f s", s=value)
    whole = int(value)
    if whole < 3600:
        return gettext("%(m)d min %(s)d s", m=whole // 60, s=whole % 60)
    return gettext("%(h)d h %(m)d min", h=whole // 3600, m=whole % 3600 // 60)


@bp.app_template_filter("seconds_until")
def seconds_until(value: datetime) -> int:
    """Whole seconds from now until `value`, never below 0 (a countdown refreshed by polling)."""
    return max(0, math.ceil((value - utcnow()).total_seconds()))


@bp.app_template_filter("filesize")
def filesize(size: int) -> str:
    """'812 B', '14.2 KiB', '3.0 MiB': binary units, as `ls -h` counts."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{format_decimal(value, '0.0')} {unit}"


SHOWN_MAX = 400


@bp.app_template_filter("shown_value")
def shown_value(value) -> str:
    """A param or output value for reading: 5 for 5.0, Yes/No, — for none, an upload's file
    name, JSON for the rest.

    Cut at SHOWN_MAX characters (a document's notes, its texts): the whole
    value is in the task's JSON and behind the page's "Output as JSON".
    """
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and (upload := files.uploaded(value)):
        return gettext("%(name)s (uploaded)", name=upload.group(3))
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


@bp.app_template_filter("clock_seconds")
def clock_seconds(seconds) -> str:
    """A moment in a recording: 1:05, or 1:02:05 past the hour."""
    whole = int(seconds)
    hours, minutes, secs = whole // 3600, whole // 60 % 60, whole % 60
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
