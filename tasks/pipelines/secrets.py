"""Credentials a pipeline may use, named in params but never held in them.

`TASKDECK_SECRETS_FILE` is a TOML file readable by its owner only (a file
group or others can read is refused). Each secret is a table that says
where it may be sent, so naming a secret cannot send it elsewhere:

    [gpu]
    key = "rpa_…"
    url = "https://api.runpod.ai/v2/abc123"   # requests only to URLs under this

Every user of the deck may name every secret: the binding to its URL is
what keeps a user from sending it to a server of their own. Errors name
the secret and the file, never the value.
"""

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

SECRETS_ENV = "TASKDECK_SECRETS_FILE"


class SecretError(ValueError):
    """A secret that cannot be used as asked; the message never holds its value."""


@dataclass(frozen=True)
class Secret:
    name: str
    key: str
    url: str

    def __repr__(self) -> str:  # in a traceback or a log, never the key
        return f"Secret({self.name!r}, url={self.url!r})"

    def allows(self, url: str) -> bool:
        """`url` is the secret's URL or lies under it (not a look-alike host or a sibling path)."""
        base = self.url.rstrip("/")
        return url.rstrip("/") == base or url.startswith(base + "/")


def private_text(path: str | Path, setting: str) -> str:
    """A file's text, if only its owner may read it (chmod 600); else a SecretError."""
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(f"{setting} must be readable by its owner only (chmod 600)")
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretError(f"{setting} cannot be read: {exc.strerror}") from None


def secret(name: str, url: str) -> Secret:
    """The secret `name`, if it may be sent to `url`."""
    path = os.environ.get(SECRETS_ENV)
    if not path:
        raise SecretError(f"No secrets are set up here ({SECRETS_ENV} is unset)")
    try:
        table = tomllib.loads(private_text(path, SECRETS_ENV))
    except tomllib.TOMLDecodeError as exc:
        raise SecretError(f"{SECRETS_ENV} is not valid TOML: {exc}") from None
    entry = table.get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        raise SecretError(f"No secret named {name!r} (a table with a key and a url)")
    if not (entry["key"].isascii() and entry["key"].isprintable()):  # it goes into a header
        raise SecretError(f"Secret {name!r} must be one line of printable ASCII")
    if not isinstance(entry.get("url"), str) or "://" not in entry["url"]:
        raise SecretError(f"Secret {name!r} must say the url it may be sent to")
    found = Secret(name, entry["key"], entry["url"])
    if not found.allows(url):
        raise SecretError(f"Secret {name!r} may only be sent to {found.url}")
    return found
