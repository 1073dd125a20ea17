"""The three HTML pages of the authorization endpoint: sign in, consent, and "cannot continue".

Every variable is HTML-escaped. Pages are never framed (`frame-ancestors 'none'`), never cached,
run no script, and may post forms only to this server (and, on the consent page, follow the
redirect to the client's registered host).
"""

from __future__ import annotations

from html import escape

from aiohttp import web

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "h1{font-size:1.4rem}.box{border:1px solid #ccc;border-radius:8px;padding:1rem 1.2rem}"
    ".error{color:#a00}.host{font-family:monospace;font-weight:bold}button{font-size:1rem;padding:.4rem 1rem;"
    "margin-right:.5rem}input[type=password]{font-size:1rem;width:100%;box-sizing:border-box;padding:.3rem}"
)


def _page(title: str, body: str, *, status: int = 200, form_targets: str = "'self'") -> web.Response:
    html = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)} · OwnSona</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(
        status=status,
        text=html,
        content_type="text/html",
        headers={
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'unsafe-inline'; form-action {form_targets}; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def _hidden(flow_id: str, csrf: str, stage: str) -> str:
    return (
        f'<input type="hidden" name="flow" value="{escape(flow_id)}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="stage" value="{stage}">'
    )


def login_page(*, client_name: str, flow_id: str, csrf: str, error: str | None = None, status: int = 200
               ) -> web.Response:
    error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"<div class=\"box\"><p><b>{escape(client_name)}</b> wants to use your OwnSona memory.</p>"
        "<p>Sign in as the owner of this server to continue.</p>"
        f"{error_html}"
        f'<form method="post" action="/oauth/authorize">{_hidden(flow_id, csrf, "login")}'
        '<label for="password">Owner password</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password" required autofocus>'
        '<p><button type="submit" id="sign-in">Sign in</button></p></form></div>'
    )
    return _page("Sign in to OwnSona", body, status=status)


def consent_page(*, client_name: str, redirect_host: str, redirect_origin: str, scope: str, flow_id: str,
                 csrf: str, headers: dict[str, str] | None = None) -> web.Response:
    scopes = "".join(f"<li>{escape(s)}: read and write your memories</li>" for s in scope.split())
    body = (
        f"<div class=\"box\"><p><b>{escape(client_name)}</b> asks to read and write your OwnSona memory.</p>"
        f"<ul>{scopes}</ul>"
        f'<p>After you allow it, you will be sent to <span class="host">{escape(redirect_host)}</span>. '
        "If you do not recognise that address, deny.</p>"
        f'<form method="post" action="/oauth/authorize">{_hidden(flow_id, csrf, "consent")}'
        '<button type="submit" name="decision" value="allow" id="allow">Allow</button>'
        '<button type="submit" name="decision" value="deny" id="deny">Deny</button></form></div>'
    )
    response = _page(f"Allow {client_name}?", body, form_targets=f"'self' {redirect_origin}")
    response.headers.update(headers or {})
    return response


def error_page(message: str, *, status: int = 400) -> web.Response:
    """Shown instead of redirecting when the client or redirect URI cannot be trusted."""
    body = f'<div class="box"><p class="error">{escape(message)}</p><p>Start again from your assistant.</p></div>'
    return _page("Cannot continue", body, status=status)
