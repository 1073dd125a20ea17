"""Configuration: read once from `OWNSONA_*` variables (and an optional env file) into `Settings`.

Every field `foo_bar` is set by `OWNSONA_FOO_BAR`. The process environment wins over the env file,
so systemd's `EnvironmentFile=` and a one-off `OWNSONA_PORT=9000 ownsona serve` both behave as
expected. Errors name the key and the rule, never the value: a value may be a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from ownsona.auth.oauth.urls import canonical_origin

ENV_PREFIX = "OWNSONA_"
ENV_FILE_VARIABLE = "OWNSONA_ENV_FILE"
# OWNSONA_* variables that are not server settings: the env file's path, and the token
# `ownsona doctor` uses as a client (often exported in the same shell as other commands).
NOT_SETTINGS = frozenset({ENV_FILE_VARIABLE, "OWNSONA_DOCTOR_TOKEN"})


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message is safe to print and log."""


def default_home(environ: Mapping[str, str]) -> Path:
    """Where state lives: systemd's StateDirectory, else the XDG data dir."""
    state_directory = environ.get("STATE_DIRECTORY")
    if state_directory:
        # systemd may pass several colon-separated directories; the first is ours.
        return Path(state_directory.split(":")[0])
    xdg = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".local" / "share")
    return Path(xdg) / "ownsona"


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseModel):
    """Everything the server reads from its environment, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- where and how to listen -------------------------------------------------------------
    home: Path
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # --- static tokens and callers -----------------------------------------------------------
    api_token: SecretStr | None = None
    user_id: str = Field(default="default", min_length=1, max_length=128)
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    allowed_origins: list[str] = Field(default_factory=list)
    auth_failure_limit: int = Field(default=20, ge=1)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)

    # --- request limits ----------------------------------------------------------------------
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)

    # --- backups (`ownsona backup` / `ownsona restore`, ownsona/backup.py) ---------------------
    # Online SQLite copies go to `backup_dir` (default <home>/backups). Retention keeps the newest
    # copy of each of the last `backup_keep_daily` days that have one, and of each of the last
    # `backup_keep_weekly` ISO weeks; at least one daily copy is always kept.
    backup_dir: Path | None = None
    backup_keep_daily: int = Field(default=14, ge=1, le=3650)
    backup_keep_weekly: int = Field(default=8, ge=0, le=520)

    # --- OAuth 2.1 authorization server (ownsona/auth/oauth) ---------------------------------
    # Off by default: static tokens need none of it. `public_url` is the origin clients reach
    # (nginx's https origin); the issuer and every metadata URL are built from it, never from
    # the Host header. http is accepted only for a loopback host, for local testing.
    public_url: str | None = None
    oauth: bool = False  # OWNSONA_OAUTH=on|off
    oauth_access_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    oauth_refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=60)
    # Absolute cap on a refresh-token family: after it the owner logs in again, however active.
    oauth_refresh_family_max_seconds: int = Field(default=90 * 86_400, ge=60)
    # A rotated refresh token still works this long, so two concurrent refreshes both succeed.
    oauth_refresh_grace_seconds: int = Field(default=10, ge=0, le=300)
    oauth_session_ttl_seconds: int = Field(default=1800, ge=60)
    oauth_login_attempts: int = Field(default=5, ge=1)  # failed logins per address per window
    oauth_login_window_seconds: float = Field(default=300.0, gt=0)
    oauth_dcr: bool = True  # RFC 7591 dynamic registration at /oauth/register
    oauth_dcr_max_clients: int = Field(default=200, ge=1)
    oauth_dcr_rate_limit: int = Field(default=10, ge=1)  # registrations per address per window
    oauth_dcr_rate_window_seconds: float = Field(default=3600.0, gt=0)
    oauth_cimd: bool = True  # URL-shaped client_ids (Client ID Metadata Documents)
    oauth_cimd_allow_private: bool = False  # let CIMD fetches reach private/loopback addresses
    oauth_cimd_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    oauth_cimd_max_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # Extra redirect URIs allowed besides ChatGPT's, Claude's and loopback ones; a trailing `*`
    # matches one last path segment (`https://app.example/oauth/*`).
    oauth_redirect_allowlist: list[str] = Field(default_factory=list)

    # --- embeddings (ownsona/embeddings) -----------------------------------------------------
    # `builtin` needs nothing else: a 256-d static model read from the installed wordllama wheel,
    # offline. `openai` is any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, LM Studio ...):
    # `embedding_url` is the full endpoint URL (https://api.openai.com/v1/embeddings) and
    # `embedding_model` is required. `embedding_dimensions`, when set, is sent as `dimensions` and
    # every vector must have that length; leave it unset for servers that reject the parameter.
    # `embedding_timeout_seconds` bounds one embed call, retries of 429 and 5xx included.
    embedding_provider: Literal["builtin", "openai"] = "builtin"
    embedding_model: str | None = Field(default=None, min_length=1, max_length=200, validate_default=True)
    embedding_url: str | None = Field(default=None, validate_default=True)
    embedding_api_key: SecretStr | None = None
    embedding_dimensions: int | None = Field(default=None, ge=1, le=16_384)
    embedding_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    # --- memory (ownsona/memory) ---------------------------------------------------------------
    # The Java server's limits, with its defaults. A `limit` above `max_recall_limit` is clamped.
    # `dedup_threshold` is the cosine similarity at which `remember` reports (and, with
    # skip_if_near, skips) a near duplicate; unset means the two cut-offs calibrated for the
    # embedding provider (ownsona/memory/search.py). `reembed_on_start` re-embeds rows made by another
    # model in the background while the server keeps serving.
    max_text_chars: int = Field(default=16_000, ge=100, le=1_000_000)
    max_batch_size: int = Field(default=200, ge=1, le=10_000)
    default_recall_limit: int = Field(default=8, ge=1, le=1_000)
    max_recall_limit: int = Field(default=50, ge=1, le=1_000)
    dedup_threshold: float | None = Field(default=None, ge=0.5, le=1.0)
    export_max_rows: int = Field(default=100_000, ge=1)
    reembed_on_start: bool = True

    @field_validator("trusted_proxies", "allowed_origins", "oauth_redirect_allowlist", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _public_origin(cls, value: str | None) -> str | None:
        return None if value is None else canonical_origin(value)

    @field_validator("oauth")
    @classmethod
    def _oauth_needs_public_url(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("public_url"):
            raise ValueError("OAuth needs OWNSONA_PUBLIC_URL (e.g. https://memory.example.com)")
        return value

    @field_validator("embedding_provider", mode="before")
    @classmethod
    def _lower_provider(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("embedding_model")
    @classmethod
    def _model_fits_provider(cls, value: str | None, info: ValidationInfo) -> str | None:
        provider = info.data.get("embedding_provider")
        if provider == "openai" and not value:
            raise ValueError("required when OWNSONA_EMBEDDING_PROVIDER=openai (e.g. text-embedding-3-small)")
        if provider == "builtin" and value:
            raise ValueError("only used with OWNSONA_EMBEDDING_PROVIDER=openai; the builtin model is fixed")
        return value

    @field_validator("embedding_url")
    @classmethod
    def _embedding_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("embedding_provider") == "openai":
                raise ValueError("required when OWNSONA_EMBEDDING_PROVIDER=openai (e.g. https://api.openai.com/v1/embeddings)")
            return None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise ValueError("must be an http(s) URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; use OWNSONA_EMBEDDING_API_KEY")
        return value

    @field_validator("embedding_dimensions")
    @classmethod
    def _dimensions_fit_provider(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("embedding_provider") == "builtin":
            raise ValueError("only used with OWNSONA_EMBEDDING_PROVIDER=openai; the builtin model has 256")
        return value

    @property
    def mcp_url(self) -> str | None:
        """The canonical MCP URL (RFC 8707 resource, token audience), when a public URL is set."""
        return f"{self.public_url}/mcp" if self.public_url else None

    @property
    def database_path(self) -> Path:
        return self.home / "ownsona.db"

    @property
    def tokens_path(self) -> Path:
        return self.home / "tokens.json"

    @property
    def backup_directory(self) -> Path:
        return self.backup_dir if self.backup_dir is not None else self.home / "backups"


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a systemd-style env file: KEY=VALUE lines, `#` comments, optional quotes."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read env file {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def settings_from_environ(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from an env file, the environment and command-line overrides, in that order."""
    environ = dict(os.environ if environ is None else environ)
    file_path = env_file or (Path(environ[ENV_FILE_VARIABLE]) if environ.get(ENV_FILE_VARIABLE) else None)
    merged: dict[str, str] = read_env_file(file_path) if file_path else {}
    merged.update(environ)

    known = set(Settings.model_fields)
    values: dict[str, Any] = {}
    for key, value in merged.items():
        if not key.startswith(ENV_PREFIX) or key in NOT_SETTINGS:
            continue
        field = key[len(ENV_PREFIX) :].lower()
        if field not in known:
            raise ConfigError(f"{key} is not a known setting (see `ownsona serve --help`)")
        if value == "":
            continue
        values[field] = value
    values.setdefault("home", default_home(merged))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        field = str(err["loc"][0]) if err.get("loc") else "?"
        message = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
        problems.append(f"{ENV_PREFIX}{field.upper()}: {message}")
    return "invalid configuration: " + "; ".join(problems)
