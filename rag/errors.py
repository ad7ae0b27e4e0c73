"""One exception hierarchy for the whole package.

Edges (CLI, HTTP) map these to exit codes and to the single error shape
``{"error": {"code": ..., "message": ...}}``; nothing below the edges formats errors.
"""


class RagError(Exception):
    """Base class: a problem we can explain to the user in one line."""

    code = "error"
    http_status = 400


class RejectedInput(RagError):
    """A source file or record that cannot be ingested; names the file or record."""

    code = "rejected_input"
    http_status = 422

    def __init__(self, origin: str, reason: str):
        super().__init__(f"{origin}: {reason}")
        self.origin = origin
        self.reason = reason


class InvalidRequest(RagError):
    code = "invalid_request"
    http_status = 422


class NotFound(RagError):
    code = "not_found"
    http_status = 404


class IndexMismatch(RagError):
    """The index on disk was built with other settings (model, dimension, chunking, format)."""

    code = "index_mismatch"
    http_status = 409


class IndexUnavailable(RagError):
    code = "index_unavailable"
    http_status = 503


class Busy(RagError):
    """Every query slot stayed taken for as long as the request may take: retry later."""

    code = "busy"
    http_status = 503


class Unauthorized(RagError):
    """No API key where one is required."""

    code = "unauthorized"
    http_status = 401


class Forbidden(RagError):
    """An API key that is not accepted."""

    code = "forbidden"
    http_status = 403


class BodyTooLarge(RagError):
    code = "body_too_large"
    http_status = 413
