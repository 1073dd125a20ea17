"""OwnSona's built-in OAuth 2.1 authorization server (and the resource-server token check).

- `setup_oauth(app, settings, db)` adds the routes and returns the `AccessTokenVerifier`;
- `challenge_params(settings)` extends /mcp's 401 challenge;
- `check_oauth_ready(settings, db)` refuses a start without an owner password;
- `OAUTH_SCHEMA` is this component's database schema.

The names resolve lazily (PEP 562), so `config.py` importing `ownsona.auth.oauth.urls` to check
OWNSONA_PUBLIC_URL does not load the JOSE and argon2 libraries into every CLI command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ownsona.auth.oauth.schema import OAUTH_SCHEMA
    from ownsona.auth.oauth.setup import challenge_params, check_oauth_ready, setup_oauth
    from ownsona.auth.oauth.verifier import AccessTokenVerifier

_EXPORTS = {
    "OAUTH_SCHEMA": "ownsona.auth.oauth.schema",
    "setup_oauth": "ownsona.auth.oauth.setup",
    "challenge_params": "ownsona.auth.oauth.setup",
    "check_oauth_ready": "ownsona.auth.oauth.setup",
    "AccessTokenVerifier": "ownsona.auth.oauth.verifier",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
