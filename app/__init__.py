"""Taskdeck: Flask app factory."""

import json
from pathlib import Path

from flask import Flask

from app.config import Config

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_object(Config())
    if test_config:
        app.config.update(test_config)
    Path(app.config["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    # Store JSON as UTF-8 text, so Chinese stays searchable and byte-exact.
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS",
        {"json_serializer": lambda obj: json.dumps(obj, ensure_ascii=False)},
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    from app.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)

    from app import api, auth, errors, i18n, security, web

    app.register_blueprint(auth.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    security.init_app(app)
    i18n.init_app(app)
    errors.register(app)
    auth.register(app)
    return app
