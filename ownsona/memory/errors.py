"""Errors the memory service raises on purpose, with the Java OwnSona's codes.

The service knows nothing about MCP; `ownsona.tools` turns a `ServiceError` into a tool error.
Messages are shown to clients, so they name fields and ids but never echo memory text or secrets.
"""

from __future__ import annotations

INVALID_INPUT = "INVALID_INPUT"
NOT_FOUND = "NOT_FOUND"
SECRET_REJECTED = "SECRET_REJECTED"
EMBEDDING_ERROR = "EMBEDDING_ERROR"
DATABASE_ERROR = "DATABASE_ERROR"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"


class ServiceError(Exception):
    """A deliberate failure with a stable code and a message that is safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_payload(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def invalid(message: str) -> ServiceError:
    return ServiceError(INVALID_INPUT, message)


def not_found(memory_id: int) -> ServiceError:
    return ServiceError(NOT_FOUND, f"Memory {memory_id} not found.")
