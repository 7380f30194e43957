"""Service exceptions; each carries the HTTP status and the detail clients see.

Details are translated when raised, in the language of the request (the
JSON API's is always English).
"""

from flask_babel import gettext


class ServiceError(Exception):
    status = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(ServiceError):
    status = 400


class Forbidden(ServiceError):
    status = 403

    def __init__(self, detail: str | None = None):
        super().__init__(detail or gettext("You don't have permission to access this task"))


class NotFound(ServiceError):
    status = 404

    def __init__(self, detail: str | None = None):
        super().__init__(detail or gettext("Task not found"))


class Unprocessable(ServiceError):
    """Well-formed request the pipeline refuses (unknown type, bad params)."""

    status = 422

    def __init__(self, detail: str, fields: dict[str, str] | None = None):
        super().__init__(detail)
        self.fields = fields or {}
