"""Service exceptions; each carries the HTTP status and the detail clients see.

Details are translated when raised, in the language of the request (the
JSON API's is always English).
"""

from flask_babel import gettext


class ServiceError(Exception):
    """`detail` for clients; `fields` maps a field name to its own message, for forms."""

    status = 400

    def __init__(self, detail: str, fields: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or {}


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


class StorageFull(ServiceError):
    """The server's disk could not take what was sent (507); nothing of it is kept."""

    status = 507


class ParamsError(ValueError):
    """Params a pipeline refuses; `messages` name each field ("name: what is wrong").

    Raised by a pipeline's `validate` (tasks/pipelines), turned into a 422 by submit.
    """

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages

    @property
    def by_field(self) -> dict[str, str]:
        """Messages keyed by the param they name ("params" for the whole object)."""
        fields: dict[str, str] = {}
        for message in self.messages:
            name, _, text = message.partition(": ")
            fields[name] = f"{fields[name]} {text}" if name in fields else text
        return fields
