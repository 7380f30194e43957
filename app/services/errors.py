"""Service exceptions; each carries the HTTP status and the detail clients see."""


class ServiceError(Exception):
    status = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(ServiceError):
    status = 400


class Forbidden(ServiceError):
    status = 403

    def __init__(self, detail: str = "You don't have permission to access this task"):
        super().__init__(detail)


class NotFound(ServiceError):
    status = 404

    def __init__(self, detail: str = "Task not found"):
        super().__init__(detail)


class Unprocessable(ServiceError):
    """Well-formed request the pipeline refuses (unknown type, bad params)."""

    status = 422

    def __init__(self, detail: str, fields: dict[str, str] | None = None):
        super().__init__(detail)
        self.fields = fields or {}
