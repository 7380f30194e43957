"""HTML pages and HTMX fragments: thin views over app/services, twins of /api/v1."""

from flask import Blueprint

bp = Blueprint("web", __name__)

from app.web import actions, filters, labels, pages, produced, tokens, widgets  # noqa: E402, F401  (register on import)
