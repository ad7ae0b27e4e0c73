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


class BadRequest(RagError):
    """A request the HTTP layer cannot interpret (e.g. two Authorization headers)."""

    code = "bad_request"
    http_status = 400


class IndexBusy(IndexUnavailable):
    """Another process holds the index in a way this operation cannot share."""

    code = "index_busy"
    http_status = 503


class IndexCorrupt(IndexUnavailable):
    """SQLite reports the database file as damaged (not a transient failure)."""

    code = "index_corrupt"
    http_status = 503


class StorageError(IndexUnavailable):
    """The disk failed a read or write (I/O error, read-only file system): nothing was lost."""

    code = "storage_error"
    http_status = 503


class DiskFull(RagError):
    """No space left for a write: it was not applied, and nothing already stored was lost."""

    code = "insufficient_storage"
    http_status = 507
