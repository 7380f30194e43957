"""Languages: English and Simplified Chinese (Flask-Babel).

The language is the `lang` cookie set by the footer switch, else the best
match of Accept-Language, else English. The JSON API always answers in
English, so scripts can match on its messages; so do the CLI and the worker.
"""

from flask import Blueprint, current_app, has_request_context, redirect, request
from flask_babel import Babel, get_locale

from app.auth import safe_next

LANGUAGES = {"en": "English", "zh_Hans_CN": "简体中文"}
DEFAULT = "en"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
# Accept-Language tags (as Werkzeug matches them) for each of our locales.
ACCEPT_TAGS = {"en": "en", "zh_CN": "zh_Hans_CN", "zh_Hans": "zh_Hans_CN", "zh": "zh_Hans_CN"}

babel = Babel()
bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    if not has_request_context() or request.blueprint == "api":  # CLI, worker, JSON API
        return DEFAULT
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    match = request.accept_languages.best_match(list(ACCEPT_TAGS))
    return ACCEPT_TAGS.get(match, DEFAULT)


def html_lang() -> str:
    """The page's `lang` attribute: BCP 47, e.g. "zh-CN"."""
    locale = get_locale()
    return "-".join(part for part in (locale.language, locale.territory) if part)


@bp.post("/language")
def set_language():
    """Remember the chosen language in a cookie and go back to the page the switch was on."""
    lang = request.form.get("lang")
    response = redirect(safe_next(request.form.get("next"), "/"))
    if lang in LANGUAGES:
        response.set_cookie(
            COOKIE,
            lang,
            max_age=COOKIE_MAX_AGE,
            samesite="Lax",
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
        )
    return response


def current_locale_code() -> str:
    return str(get_locale())


def init_app(app) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.register_blueprint(bp)
    app.jinja_env.globals.update(
        LANGUAGES=LANGUAGES, html_lang=html_lang, current_locale_code=current_locale_code
    )
