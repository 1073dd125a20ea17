"""The tool registry: pydantic argument models in, MCP tool descriptors and call results out.

A tool is a thin async adapter `handler(ctx, args) -> payload dict`. The registry owns everything
MCP-shaped around it: `inputSchema`/`outputSchema` from pydantic models, annotations, argument
validation with errors that name the field but never echo its value, and the `isError` envelope.
It knows nothing about memories and nothing about HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from mcp_types import Tool, ToolAnnotations
from pydantic import BaseModel, ValidationError

from ownsona.auth.principal import Principal

log = structlog.get_logger("ownsona.tools")

INVALID_INPUT = "INVALID_INPUT"
INTERNAL_ERROR = "INTERNAL_ERROR"


class ToolError(Exception):
    """A deliberate tool failure: becomes `isError` with `{"ok": false, "error": {code, message}}`.

    The message goes to the caller as is, so it must never hold a secret or internal detail.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may know about the call besides its arguments."""

    principal: Principal

    @property
    def user_id(self) -> str:
        return self.principal.user_id


ToolHandler = Callable[[ToolContext, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    args_model: type[BaseModel]
    handler: ToolHandler
    annotations: ToolAnnotations
    output_model: type[BaseModel] | None = None
    title: str | None = None

    def descriptor(self) -> dict[str, Any]:
        """The tools/list entry, in wire casing."""
        tool = Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=_object_schema(self.args_model),
            output_schema=_object_schema(self.output_model) if self.output_model else None,
            annotations=self.annotations,
        )
        return tool.model_dump(by_alias=True, mode="json", exclude_none=True)


def _object_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def error_payload(code: str, message: str) -> dict[str, Any]:
    """The Java OwnSona's failure payload, kept byte-for-byte in shape."""
    return {"ok": False, "error": {"code": code, "message": message}}


def call_result(payload: dict[str, Any], *, is_error: bool = False) -> dict[str, Any]:
    """A CallToolResult carrying the payload both as JSON text and as structuredContent."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    result: dict[str, Any] = {
        "content": [{"type": "text", "text": text}],
        "structuredContent": payload,
    }
    if is_error:
        result["isError"] = True
    return result


def describe_validation_error(exc: ValidationError) -> str:
    """Name each failing field by its path and say why, without the offending value."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        path = _field_path(err.get("loc", ()))
        reason = _reason(err)
        parts.append(f"{path}: {reason}" if path else reason)
    return "Invalid arguments: " + "; ".join(parts) + "."


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not isinstance(part, str) or part.startswith(("function-", "union[")):
            continue
        else:
            path += ("." if path else "") + part
    return path


def _reason(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known argument"
    # pydantic's messages describe the rule ("Input should be a valid integer"), never the value;
    # messages from our own validators (ValueError) are written the same way.
    message = str(err.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


class ToolRegistry:
    """The ordered set of tools one server offers."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolSpec] = {}
        self._descriptors: list[dict[str, Any]] | None = None

    def add(
        self,
        *,
        name: str,
        description: str,
        args: type[BaseModel],
        handler: ToolHandler,
        read_only: bool,
        destructive: bool = False,
        idempotent: bool = False,
        open_world: bool = False,
        output: type[BaseModel] | None = None,
        title: str | None = None,
    ) -> None:
        if name in self._tools:
            raise ValueError(f"tool {name!r} is registered twice")
        annotations = ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=destructive,
            idempotent_hint=idempotent,
            open_world_hint=open_world,
        )
        self._tools[name] = ToolSpec(
            name=name,
            title=title,
            description=description,
            args_model=args,
            handler=handler,
            annotations=annotations,
            output_model=output,
        )
        self._descriptors = None

    def tool(self, **options: Any) -> Callable[[ToolHandler], ToolHandler]:
        """Decorator form of `add`."""

        def register(handler: ToolHandler) -> ToolHandler:
            self.add(handler=handler, **options)
            return handler

        return register

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return list(self._tools)

    def descriptors(self) -> list[dict[str, Any]]:
        """The tools/list payload, built once: schemas do not change while the server runs."""
        if self._descriptors is None:
            self._descriptors = [spec.descriptor() for spec in self._tools.values()]
        return self._descriptors

    async def call(self, name: str, arguments: dict[str, Any] | None, ctx: ToolContext) -> dict[str, Any]:
        """Run one tool and return its CallToolResult dict. Never raises for tool-level failures.

        The caller checks that `name` is registered (an unknown tool is a JSON-RPC error).
        """
        spec = self._tools[name]
        try:
            args = spec.args_model.model_validate(arguments or {})
        except ValidationError as exc:
            return call_result(error_payload(INVALID_INPUT, describe_validation_error(exc)), is_error=True)
        try:
            payload = await spec.handler(ctx, args)
        except ToolError as exc:
            return call_result(error_payload(exc.code, exc.message), is_error=True)
        except Exception:
            log.exception("tool_crashed", tool=name, credential=ctx.principal.credential_name)
            return call_result(
                error_payload(INTERNAL_ERROR, "Internal error; the server log has the details."),
                is_error=True,
            )
        return call_result(payload)
