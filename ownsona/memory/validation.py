"""The shared validators (§3.0): one rule and one message per field, used by every operation.

Messages name the field and the rule and never echo the value (it may be a secret).
"""

from __future__ import annotations

import math
from datetime import datetime

from ownsona.memory.errors import LIMIT_EXCEEDED, SECRET_REJECTED, ServiceError, invalid
from ownsona.memory.inputs import Filters
from ownsona.memory.normalize import clean
from ownsona.memory.records import CleanupFilter
from ownsona.memory.secrets import looks_like_secret
from ownsona.memory.timestamps import MS_PER_DAY, MS_PER_MINUTE, from_datetime

MAX_SESSION_ID_CHARS = 256
MAX_REASON_CHARS = 1024
MAX_SOURCE_PROVIDER_CHARS = 256
EXPIRY_HORIZON_MS = 100 * 365 * MS_PER_DAY
FUTURE_TOLERANCE_MS = 5 * MS_PER_MINUTE
CAPTURE_MODES = ("explicit", "inferred")
DEDUP_POLICIES = ("insert", "skip_if_near", "ask")

SECRET_MESSAGE = "Refusing to store apparent credential or secret. Remove the sensitive value and resubmit."


def text(value: str | None, *, field: str, max_chars: int) -> str:
    """Cleaned text; required, non-blank, at most `max_chars` code points."""
    cleaned = clean(value) if value is not None else ""
    if not cleaned:
        raise invalid(f"{field} is required.")
    if len(cleaned) > max_chars:
        raise invalid(f"{field} is too long ({len(cleaned)} > {max_chars} chars).")
    return cleaned


def no_secret(value: str) -> None:
    if looks_like_secret(value):
        raise ServiceError(SECRET_REJECTED, SECRET_MESSAGE)


def importance(value: float | None, *, field: str = "importance", default: float = 0.5) -> float:
    """0 ≤ x ≤ 1 and not NaN, everywhere importance is written (§8.1 #2); None means the default."""
    if value is None:
        return default
    if isinstance(value, bool) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise invalid(f"{field} must be between 0 and 1.")
    return float(value)


def capture_mode(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if value.strip() not in CAPTURE_MODES:
        raise invalid("capture_mode must be 'explicit' or 'inferred'.")
    return value.strip()


def session_id(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    trimmed = value.strip()
    if len(trimmed) > MAX_SESSION_ID_CHARS:
        raise invalid(f"session_id is too long ({len(trimmed)} > {MAX_SESSION_ID_CHARS}).")
    return trimmed


def source_provider(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    trimmed = value.strip()
    if len(trimmed) > MAX_SOURCE_PROVIDER_CHARS:
        raise invalid(f"source_provider is too long ({len(trimmed)} > {MAX_SOURCE_PROVIDER_CHARS}).")
    return trimmed


def dedup_policy(value: str | None, default: str = "ask") -> str:
    if value is None or not value.strip():
        return default
    if value.strip() not in DEDUP_POLICIES:
        raise invalid("dedup_policy must be one of 'insert', 'skip_if_near', or 'ask'.")
    return value.strip()


def expires_at(value: datetime | None, now: int, *, field: str = "expires_at") -> int | None:
    if value is None:
        return None
    ms = from_datetime(value)
    if ms > now + EXPIRY_HORIZON_MS:
        raise invalid(f"{field} is too far in the future (more than 100 years out).")
    return ms


def not_in_future(value: datetime | None, now: int, *, field: str) -> int | None:
    if value is None:
        return None
    ms = from_datetime(value)
    if ms > now + FUTURE_TOLERANCE_MS:
        raise invalid(f"{field} must not be in the future.")
    return ms


def reason(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    trimmed = value.strip()
    if len(trimmed) > MAX_REASON_CHARS:
        raise invalid(f"reason is too long ({len(trimmed)} > {MAX_REASON_CHARS}).")
    return trimmed


def limit(value: int | None, *, default: int, maximum: int) -> int:
    """At least 1; values above the maximum are clamped to it, as the manual promised (§8.1 #19)."""
    if value is None:
        return default
    if value < 1:
        raise invalid("limit must be >= 1.")
    return min(value, maximum)


def min_score(value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise invalid("min_score must be between 0 and 1.")
    return float(value)


def batch_size(count: int, maximum: int, *, field: str) -> None:
    if count == 0:
        raise invalid(f"{field} is required and must be non-empty.")
    if count > maximum:
        raise ServiceError(LIMIT_EXCEEDED, f"batch too large: {count} > {maximum}")


def cleanup_filter(filters: Filters | None, now: int) -> CleanupFilter | None:
    """Validated list/count filters; a filter with nothing set is no filter."""
    if filters is None:
        return None
    if filters.min_chars is not None and filters.min_chars < 0:
        raise invalid(f"min_chars must be >= 0 (got {filters.min_chars}).")
    if filters.max_chars is not None and filters.max_chars < 0:
        raise invalid(f"max_chars must be >= 0 (got {filters.max_chars}).")
    if filters.min_chars is not None and filters.max_chars is not None and filters.min_chars > filters.max_chars:
        raise invalid(f"min_chars ({filters.min_chars}) must be <= max_chars ({filters.max_chars}).")
    since = None
    if filters.not_confirmed_since is not None:
        since = from_datetime(filters.not_confirmed_since)
        if since > now + FUTURE_TOLERANCE_MS:
            raise invalid("not_confirmed_since cannot be in the future.")
    result = CleanupFilter(filters.untagged_only, filters.min_chars, filters.max_chars, since)
    return None if result == CleanupFilter() else result
