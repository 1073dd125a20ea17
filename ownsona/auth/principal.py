"""The authenticated caller, as every layer below the auth middleware sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    `user_id` scopes every memory query. `credential_name` is safe to log: a static token's
    name ("default", "laptop") or "oauth:<client_id>"; it never holds a secret.
    """

    user_id: str
    credential_name: str
    client_id: str | None = None
    scopes: tuple[str, ...] = field(default_factory=tuple)


PRINCIPAL_KEY = web.RequestKey("ownsona_principal", Principal)
