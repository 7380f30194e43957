"""Taskdeck: the Flask app factory, which also builds the queue from the same config."""

import json
import os
from pathlib import Path

from flask import Flask
from werkzeug.routing import BaseConverter

from app import sqlite_writer
from app.config import Config
from app.jsonio import StrictJSONProvider
from app.models import TASK_ID_PATTERN
from tasks.pipelines import files

ROOT = Path(__file__).resolve().parent.parent


class TaskIdConverter(BaseConverter):
    regex = TASK_ID_PATTERN


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.json = StrictJSONProvider(app)
    app.config.from_object(Config())
    if test_config:
        app.config.update(test_config)
    Path(app.config["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    # Files stages produced, under the data dir unless set.
    app.config.setdefault("ARTIFACTS_DIR", str(Path(app.config["DATA_DIR"]) / "artifacts"))
    # Files sent with tasks (UploadParam), one folder per task.
    app.config.setdefault("UPLOADS_DIR", str(Path(app.config["DATA_DIR"]) / "uploads"))
    # The one folder pipelines read from; tasks.pipelines.files (and isolated stages, which
    # inherit the environment) read it from TASKDECK_FILES_ROOT.
    app.config.setdefault("FILES_ROOT", str(Path(app.config["DATA_DIR"]) / "files"))
    files_root, data = Path(app.config["FILES_ROOT"]).resolve(), Path(app.config["DATA_DIR"])
    if files_root == data.resolve() or files_root in data.resolve().parents:
        # Pipelines could then read every user's artifacts, the database and the secret key.
        raise RuntimeError(f"TASKDECK_FILES_ROOT ({files_root}) must not hold the data dir")
    files_root.mkdir(parents=True, exist_ok=True)
    os.environ[files.ROOT_ENV] = app.config["FILES_ROOT"]
    os.environ[files.STATE_ENV] = str(Path(app.config["DATA_DIR"]) / "state")
    os.environ[files.UPLOADS_ENV] = app.config["UPLOADS_DIR"]
    # Store JSON as UTF-8 text, so Chinese stays searchable and byte-exact.
    engine_options = {
        "json_serializer": lambda obj: json.dumps(obj, ensure_ascii=False, allow_nan=False)
    }
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Writers take turns through a lock file instead of SQLite's sleeping busy handler.
        engine_options["connect_args"] = {"factory": sqlite_writer.Connection, "timeout": 30}
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options)

    from app.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)

    # `<task_id:...>` matches only what could be a task id, so `GET /tasks/cancel-all`
    # is a 405 (the route is POST-only), not a lookup of a task named "cancel-all".
    app.url_map.converters["task_id"] = TaskIdConverter

    from app import api, auth, errors, i18n, security, web
    from app.queue import StageQueue, make_huey
    from app.services import catalog, dispatch

    dispatch.init_app(app, StageQueue(make_huey(app.config["QUEUE_URL"], app.config["QUEUE_NAME"])))
    catalog.pipelines()  # a plug-in that fails to load stops start-up here, by name

    app.register_blueprint(auth.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    security.init_app(app)
    i18n.init_app(app)
    errors.register(app)
    auth.register(app)
    return app
