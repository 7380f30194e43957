"""Settings read from the environment, with single-box defaults.

Kept free of Flask imports so benchmarks and tools can read the same
settings without building the web app.
"""

import os
import secrets
from pathlib import Path


def data_dir(env=os.environ) -> Path:
    """Folder for the SQLite database, the SQLite queue file and the secret key."""
    return Path(env.get("TASKDECK_DATA_DIR") or "./instance").resolve()


def database_url(env=os.environ) -> str:
    return env.get("TASKDECK_DATABASE_URL") or f"sqlite:///{data_dir(env) / 'taskdeck.db'}"


def queue_url(env=os.environ) -> str:
    return env.get("TASKDECK_QUEUE_URL") or f"sqlite:///{data_dir(env) / 'queue.db'}"


def queue_name(env=os.environ) -> str:
    """Huey's queue name: deployments (or test runs) sharing one Redis/PostgreSQL pick their own."""
    return env.get("TASKDECK_QUEUE_NAME") or "taskdeck"


def pipeline_folders(env=os.environ) -> list[str]:
    """TASKDECK_PIPELINES_PATH: `:`-separated folders whose *.py files declare pipelines."""
    return [folder for folder in env.get("TASKDECK_PIPELINES_PATH", "").split(os.pathsep) if folder]


def commands_file(env=os.environ) -> str | None:
    """TASKDECK_COMMANDS_FILE: a TOML file of command pipelines."""
    return env.get("TASKDECK_COMMANDS_FILE") or None


def secret_key(env=os.environ) -> str:
    """Use TASKDECK_SECRET_KEY, else a key generated once and kept in the data dir."""
    if env.get("TASKDECK_SECRET_KEY"):
        return env["TASKDECK_SECRET_KEY"]
    path = data_dir(env) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        key = secrets.token_hex(32)
        fh.write(key)
    return key


class Config:
    """Flask config built from the environment at app creation."""

    def __init__(self, env=os.environ):
        self.DATA_DIR = str(data_dir(env))
        if env.get("TASKDECK_FILES_ROOT"):
            self.FILES_ROOT = str(Path(env["TASKDECK_FILES_ROOT"]).resolve())
        self.SQLALCHEMY_DATABASE_URI = database_url(env)
        self.QUEUE_URL = queue_url(env)
        self.QUEUE_NAME = queue_name(env)
        self.SECRET_KEY = secret_key(env)
        # Views decide themselves when to check CSRF: bearer-token API calls are exempt.
        self.WTF_CSRF_CHECK_DEFAULT = False
        self.WTF_CSRF_TIME_LIMIT = None
        # Behind HTTPS (TASKDECK_SECURE_COOKIES=1): Secure cookies and HSTS.
        secure = env.get("TASKDECK_SECURE_COOKIES", "") in ("1", "true", "yes")
        self.SESSION_COOKIE_SECURE = secure
        self.REMEMBER_COOKIE_SECURE = secure
        self.PROXY_FIX = env.get("TASKDECK_PROXY_FIX", "") in ("1", "true", "yes")
        self.LOGIN_RATE_LIMIT = env.get("TASKDECK_LOGIN_RATE_LIMIT", "10 per minute")
        # memory:// counts per process; redis://host:6379 shares counts between processes.
        self.RATELIMIT_STORAGE_URI = env.get("TASKDECK_RATELIMIT_STORAGE_URL", "memory://")
        self.RATELIMIT_HEADERS_ENABLED = True
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.MAX_CONTENT_LENGTH = 1024 * 1024
        # A multipart submit with files (UploadParam) may be this large instead.
        self.UPLOAD_MAX = int(env.get("TASKDECK_UPLOAD_MAX", 200 * 1024 * 1024))
        # Crash safety (see README "Crash safety"): seconds unless named otherwise.
        self.HEARTBEAT_INTERVAL = float(env.get("TASKDECK_HEARTBEAT_INTERVAL", 5))
        self.HEARTBEAT_TIMEOUT = float(env.get("TASKDECK_HEARTBEAT_TIMEOUT", 60))
        self.REAPER_INTERVAL = float(env.get("TASKDECK_REAPER_INTERVAL", 15))
        self.MAX_LOST_ATTEMPTS = int(env.get("TASKDECK_MAX_LOST_ATTEMPTS", 3))
        self.SHUTDOWN_GRACE = float(env.get("TASKDECK_SHUTDOWN_GRACE", 30))
        # What stages leave behind (README, "Logs and artifacts").
        self.ARTIFACT_MAX_BYTES = int(env.get("TASKDECK_ARTIFACT_MAX_BYTES", 100 * 1024 * 1024))
        self.LOG_LINES_MAX = int(env.get("TASKDECK_LOG_LINES_MAX", 10_000))
        self.LOG_LINE_MAX_BYTES = int(env.get("TASKDECK_LOG_LINE_MAX_BYTES", 4096))
