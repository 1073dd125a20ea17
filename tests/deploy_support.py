"""Helpers for the deploy-kit tests: system binaries, a throw-away certificate, nginx in a temp prefix,
and a real `ownsona serve` subprocess (the `ownsona_server` fixture).

The shipped `nginx/ownsona.conf` is tested as shipped: `render_site` swaps only the host paths and
ports, and fails if an expected literal is missing, so the tests cannot drift onto a different file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from processes import clean_env, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]
NGINX_CONF = REPO / "nginx" / "ownsona.conf"
SYSTEMD_DIR = REPO / "systemd"
SHIPPED_EXEC = "/opt/ownsona/venv/bin/ownsona"

# Variables that carry the query string or a raw Referer; none may appear in a log_format.
FORBIDDEN_LOG_VARIABLES = re.compile(
    r"\$(?:\{)?(?:request|request_uri|args|query_string|http_referer|arg_[A-Za-z0-9_]+)(?![A-Za-z0-9_])"
)


def require(binary: str) -> str:
    """The binary's path. Missing: skip locally, fail under CI (CI installs it, see .ci/run)."""
    path = shutil.which(binary) or next(
        (str(Path(d) / binary) for d in ("/usr/sbin", "/sbin") if (Path(d) / binary).exists()), None
    )
    if path:
        return path
    message = f"{binary} is not installed (Debian: apt-get install nginx systemd openssl curl)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must install it")
    pytest.skip(message)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A one-day certificate for 127.0.0.1 and localhost; it is its own CA (`--cacert` it)."""
    openssl = require("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


@dataclass(frozen=True)
class SiteParams:
    http_port: int
    https_port: int
    app_port: int
    cert: Path
    key: Path
    log_dir: Path
    acme_root: Path


def _replace(text: str, old: str, new: str) -> str:
    if old not in text:
        raise AssertionError(f"nginx/ownsona.conf no longer contains {old!r}; update tests/deploy_support.py")
    return text.replace(old, new)


def render_site(
    params: SiteParams, *, error_level: str | None = None, access_format: str | None = None, text: str | None = None
) -> str:
    """The shipped site config with test ports and paths; optionally another error level or format."""
    text = NGINX_CONF.read_text() if text is None else text
    text = _replace(text, "listen [::]:80;\n", "")
    text = _replace(text, "listen [::]:443 ssl http2;\n", "")
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{params.http_port};")
    text = _replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{params.https_port} ssl http2;")
    text = _replace(text, "/etc/letsencrypt/live/ownsona.example.com/fullchain.pem", str(params.cert))
    text = _replace(text, "/etc/letsencrypt/live/ownsona.example.com/privkey.pem", str(params.key))
    text = _replace(text, "/var/log/nginx/", f"{params.log_dir}/")
    text = _replace(text, "/var/www/letsencrypt", str(params.acme_root))
    text = _replace(text, "proxy_pass http://127.0.0.1:8765;", f"proxy_pass http://127.0.0.1:{params.app_port};")
    if error_level is not None:
        text = re.sub(r"(error_log \S+) crit;", rf"\1 {error_level};", text)
    if access_format is not None:
        text = _replace(text, " ownsona_noquery;", f" {access_format};")
    return text


def write_nginx_prefix(prefix: Path, site_text: str) -> Path:
    """A minimal nginx.conf in `prefix` that includes the site inside http { }, as Debian's does."""
    for sub in ("logs", "tmp", "acme"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    site = prefix / "ownsona.conf"
    site.write_text(site_text)
    # Workers must reach the temp dirs inside pytest's 0700 tmp tree: as root, run them as root.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main = prefix / "nginx.conf"
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/main.error.log notice;\n"
        "events { worker_connections 128; }\n"
        "http {\n"
        f"    client_body_temp_path {prefix}/tmp/body;\n    proxy_temp_path {prefix}/tmp/proxy;\n"
        f"    fastcgi_temp_path {prefix}/tmp/fastcgi;\n    uwsgi_temp_path {prefix}/tmp/uwsgi;\n"
        f"    scgi_temp_path {prefix}/tmp/scgi;\n"
        f"    include {site};\n"
        "}\n"
    )
    return main


def nginx_test(prefix: Path, main: Path) -> subprocess.CompletedProcess[str]:
    nginx = require("nginx")
    return subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(main), "-e", str(prefix / "logs" / "startup.log")],
                          capture_output=True, text=True, timeout=30)


class Nginx:
    """nginx in the foreground (`daemon off`) on a temp prefix; stopped and reaped on exit."""

    def __init__(self, prefix: Path, main: Path, port: int) -> None:
        self.prefix, self.main, self.port = prefix, main, port
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        nginx = require("nginx")
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.prefix), "-c", str(self.main), "-e", str(self.prefix / "logs" / "startup.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port, process=self.process)
        except (RuntimeError, TimeoutError):
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: flushes and closes the logs
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None


def unit_copies(directory: Path, exec_path: str) -> list[Path]:
    """The shipped units with ExecStart pointing at an installed `ownsona` (verify checks it exists)."""
    copies = []
    for unit in sorted(SYSTEMD_DIR.iterdir()):
        text = unit.read_text()
        if unit.suffix == ".service":
            text = _replace(text, SHIPPED_EXEC, exec_path)
        copy = directory / unit.name
        copy.write_text(text)
        copies.append(copy)
    return copies


# --- a real `ownsona serve` ---------------------------------------------------------------------

SERVER_TOKEN = "e2eSECRET-Kq7Vd2Lm9Xp4Rt6Wz8Nb3Hc5Jf1Gs0Ya"


@dataclass(frozen=True)
class App:
    port: int
    home: Path
    output: Path
    token: str

    @property
    def env(self) -> dict[str, str]:
        """The settings the server runs with, for CLI commands that must see the same state."""
        return clean_env(OWNSONA_HOME=str(self.home), OWNSONA_API_TOKEN=self.token)


@pytest.fixture(scope="module")
def ownsona_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """`ownsona serve` as a subprocess on a free port; stdout and stderr captured to a file."""
    root = tmp_path_factory.mktemp("app")
    home, output, port = root / "home", root / "app-output.log", free_port()
    app = App(port, home, output, SERVER_TOKEN)
    with output.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "ownsona", "serve"],
                                   env={**app.env, "OWNSONA_PORT": str(port)}, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=60, process=process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200
        yield app
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
