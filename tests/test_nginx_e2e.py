"""The shipped nginx config in front of a real `ownsona serve`: no log keeps a URL token.

nginx runs from a temp prefix on free loopback ports with a throw-away self-signed certificate;
curl speaks HTTPS and HTTP/2 to it (aiohttp has no HTTP/2 client). Every request carries the
secret the way ChatGPT's "No auth" mode does (`?token=`), valid or not, to /mcp and elsewhere,
also in a Referer and with a body nginx refuses. Afterwards nginx's access and error logs and the
app's output must hold neither the secret nor `token=`, and `ownsona check-logs` must agree. The
negative controls run the same traffic with nginx's stock `combined` format and with the error log
at level `error`, and show that the leak is real there and that check-logs catches it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_support import (
    App,
    Nginx,
    SiteParams,
    clean_env,
    free_port,
    ownsona_server,  # noqa: F401 - a fixture, used through `app`
    render_site,
    require,
    self_signed_certificate,
    write_nginx_prefix,
)
from deploy_support import SERVER_TOKEN as SECRET

WRONG = "e2eWRONG-Pz4Qm8Lx2Vc6Bn9Kd3Jh7Gf5Ts1Rw0Ey"
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}},
}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
LEAKS = (SECRET, WRONG, "token=")
SPOOFED_IP = "203.0.113.9"  # a client's own X-Forwarded-For, which nginx must overwrite


@pytest.fixture
def app(ownsona_server: App) -> App:
    """The real server, shared by this module's tests (it starts once)."""
    return ownsona_server


@dataclass(frozen=True)
class Site:
    params: SiteParams
    prefix: Path
    main: Path

    @property
    def access_log(self) -> Path:
        return self.params.log_dir / "ownsona.access.log"

    @property
    def error_log(self) -> Path:
        return self.params.log_dir / "ownsona.error.log"

    def https(self, path: str) -> str:
        return f"https://127.0.0.1:{self.params.https_port}{path}"

    def http(self, path: str) -> str:
        return f"http://127.0.0.1:{self.params.http_port}{path}"


def _site(tmp_path: Path, upstream_port: int, **render: str) -> Site:
    cert, key = self_signed_certificate(tmp_path)
    prefix = tmp_path / "nginx"
    params = SiteParams(free_port(), free_port(), upstream_port, cert, key, prefix / "logs", prefix / "acme")
    return Site(params, prefix, write_nginx_prefix(prefix, render_site(params, **render)))


def _nginx(site: Site) -> Nginx:
    return Nginx(site.prefix, site.main, site.params.https_port)


def curl(site: Site, url: str, *args: str, body: bytes | None = None) -> tuple[int, str, bytes, str]:
    """One request with Debian's curl; returns status, HTTP version, body and response headers."""
    binary = require("curl")
    command = [binary, "-sS", "--http2", "--cacert", str(site.params.cert), "-o", "-", "-D", "/dev/stderr",
               "-w", "\n%{http_code} %{http_version}", *args, url]
    if body is not None:
        command[1:1] = ["--data-binary", "@-", "-H", "Content-Type: application/json"]
    result = subprocess.run(command, input=body, capture_output=True, timeout=30)
    payload, _, status_line = result.stdout.rpartition(b"\n")
    status, version = status_line.decode().split()
    return int(status), version, payload, result.stderr.decode(errors="replace")


def send_token_traffic(site: Site) -> dict[str, int]:
    """The same requests for every configuration; returns the status of each."""
    statuses: dict[str, int] = {}
    initialize = json.dumps(INITIALIZE).encode()
    status, version, payload, _ = curl(site, site.https(f"/mcp?token={SECRET}"), body=initialize)
    assert version == "2", "curl did not negotiate HTTP/2 with nginx"
    assert b'"serverInfo"' in payload  # the app answered, through nginx
    statuses["valid query token"] = status
    statuses["wrong query token"] = curl(site, site.https(f"/mcp?token={WRONG}"), body=initialize)[0]
    statuses["referer with token"] = curl(
        site, site.https(f"/mcp?token={SECRET}"), "-H", f"Referer: https://chat.example/c/42?token={SECRET}",
        body=json.dumps(TOOLS_LIST).encode(),
    )[0]
    statuses["missing path"] = curl(
        site, site.https(f"/missing/path?token={SECRET}"), "-H", f"Referer: https://x.example/?token={WRONG}"
    )[0]
    statuses["too large body"] = curl(site, site.https(f"/mcp?token={SECRET}"), body=b" " * (5 * 1024 * 1024))[0]
    statuses["bearer header"] = curl(
        site, site.https("/mcp"), "-H", f"Authorization: Bearer {SECRET}", "-H", f"X-Forwarded-For: {SPOOFED_IP}",
        body=json.dumps(TOOLS_LIST).encode(),
    )[0]
    statuses["plain http redirect"] = curl(site, site.http(f"/mcp?token={SECRET}"))[0]
    statuses["acme probe"] = curl(site, site.http(f"/.well-known/acme-challenge/none?token={SECRET}"))[0]
    return statuses


def check_logs(app: App, *files: Path) -> subprocess.CompletedProcess[str]:
    """`ownsona check-logs` with the server's settings, so it also knows the token's value."""
    return subprocess.run(
        [sys.executable, "-m", "ownsona", "check-logs", *map(str, files)],
        env=app.env, capture_output=True, text=True, timeout=60,
    )


def _leaks(path: Path) -> list[str]:
    text = path.read_text(errors="replace") if path.exists() else ""
    return [leak for leak in LEAKS if leak in text]


def test_shipped_config_keeps_every_log_clean(app: App, tmp_path: Path) -> None:
    site = _site(tmp_path, app.port)
    (site.params.acme_root / ".well-known" / "acme-challenge").mkdir(parents=True)
    (site.params.acme_root / ".well-known" / "acme-challenge" / "probe").write_text("acme-ok")
    with _nginx(site):
        statuses = send_token_traffic(site)
        status, _, body, headers = curl(site, site.http("/.well-known/acme-challenge/probe"))
        hsts = curl(site, site.https("/healthz"))[3]
        doctors = [
            subprocess.run(
                [sys.executable, "-m", "ownsona", "doctor", site.https("/mcp"), "--cafile", str(site.params.cert),
                 *mode],
                env=clean_env(OWNSONA_DOCTOR_TOKEN=SECRET), capture_output=True, text=True, timeout=120,
            )
            for mode in ([], ["--query-token"])  # bearer header, then ChatGPT's ?token= through nginx
        ]

    assert statuses == {
        "valid query token": 200, "wrong query token": 401, "referer with token": 200, "missing path": 404,
        "too large body": 413, "bearer header": 200, "plain http redirect": 301, "acme probe": 404,
    }
    assert (status, body) == (200, b"acme-ok")  # certbot --webroot renewals are served on port 80
    assert "strict-transport-security: max-age=31536000" in hsts.lower()
    for doctor in doctors:
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "all 7 checks passed" in doctor.stdout

    access = site.access_log.read_text()
    assert '"POST /mcp HTTP/2.0" 200' in access
    assert '"GET /missing/path HTTP/2.0" 404' in access
    assert '"POST /mcp HTTP/2.0" 413' in access
    assert 'ref="https://chat.example/c/42"' in access  # the Referer, minus its query
    for log in (site.access_log, site.error_log, app.output):
        assert _leaks(log) == [], f"{log.name} leaks {_leaks(log)}"
    assert SPOOFED_IP not in app.output.read_text()  # the app saw nginx's X-Forwarded-For, not the client's

    result = check_logs(app, site.access_log, site.error_log, app.output)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stderr


def test_negative_control_stock_combined_format_leaks_and_check_logs_catches_it(app: App, tmp_path: Path) -> None:
    site = _site(tmp_path, app.port, access_format="combined")
    with _nginx(site):
        send_token_traffic(site)

    assert f"POST /mcp?token={SECRET} HTTP/2.0" in site.access_log.read_text()
    assert f"https://chat.example/c/42?token={SECRET}" in site.access_log.read_text()
    result = check_logs(app, site.access_log)
    assert result.returncode == 1
    assert f"{site.access_log}:1:" in result.stdout
    assert SECRET not in result.stdout + result.stderr  # the report names the line, not the leak


def _upstream_down_traffic(site: Site) -> dict[str, int]:
    initialize = json.dumps(INITIALIZE).encode()
    return {
        "app down": curl(site, site.https(f"/mcp?token={SECRET}"), "-H",
                         f"Referer: https://chat.example/?token={WRONG}", body=initialize)[0],
        "too large body": curl(site, site.https(f"/mcp?token={SECRET}"), body=b" " * (5 * 1024 * 1024))[0],
    }


def test_error_log_at_crit_keeps_upstream_failures_out(app: App, tmp_path: Path) -> None:
    """nginx writes `request: "POST /mcp?token=…"` into error-level lines; the shipped `crit` drops them."""
    site = _site(tmp_path, free_port())  # nothing listens there: every proxied request is a 502
    with _nginx(site):
        statuses = _upstream_down_traffic(site)

    assert statuses == {"app down": 502, "too large body": 413}
    assert _leaks(site.error_log) == []
    assert site.error_log.read_text() == ""
    access = site.access_log.read_text()
    assert '"POST /mcp HTTP/2.0" 502' in access and "upstream=502" in access  # the cause is still logged
    assert check_logs(app, site.access_log, site.error_log).returncode == 0


def test_negative_control_error_level_error_leaks_the_request_line(app: App, tmp_path: Path) -> None:
    site = _site(tmp_path, free_port(), error_level="error")
    with _nginx(site):
        _upstream_down_traffic(site)

    errors = site.error_log.read_text()
    assert f'request: "POST /mcp?token={SECRET} HTTP/2.0"' in errors  # connect() failed … / too large body
    assert f"?token={WRONG}" in errors  # referrer: "…"
    assert "client intended to send too large body" in errors
    result = check_logs(app, site.error_log)
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr
