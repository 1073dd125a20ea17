"""The shipped deployment files: nginx accepts the site config, systemd accepts the units, and the
log format cannot write a query string or a raw Referer."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import (
    FORBIDDEN_LOG_VARIABLES,
    NGINX_CONF,
    SERVER_TOKEN,
    SYSTEMD_DIR,
    SiteParams,
    clean_env,
    free_port,
    nginx_test,
    render_site,
    require,
    self_signed_certificate,
    unit_copies,
    wait_for_port,
    write_nginx_prefix,
)

from ownsona.config import Settings
from ownsona.doctor import run_doctor

# `python -m ownsona` stands in for /opt/ownsona/venv/bin/ownsona: verify checks ExecStart exists.
TEST_EXEC = f"{sys.executable} -m ownsona"


def _directives(text: str) -> list[str]:
    """nginx directives as single strings (comments dropped, continuation lines joined)."""
    body = "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())  # not `#` in a regex
    return [" ".join(part.split()) for part in re.split(r"[;{}]", body) if part.strip()]


def _log_formats(text: str) -> dict[str, str]:
    return {
        d.split()[1]: d.split(None, 2)[2]
        for d in _directives(text)
        if d.startswith("log_format ")
    }


# --- nginx ------------------------------------------------------------------------------------


def test_nginx_accepts_the_shipped_config(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    params = SiteParams(free_port(), free_port(), 8765, cert, key, tmp_path / "prefix" / "logs",
                        tmp_path / "prefix" / "acme")
    main = write_nginx_prefix(tmp_path / "prefix", render_site(params))

    result = nginx_test(tmp_path / "prefix", main)

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_test_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check above can fail: a config that names a missing certificate is refused."""
    params = SiteParams(free_port(), free_port(), 8765, tmp_path / "missing.pem", tmp_path / "missing.key",
                        tmp_path / "prefix" / "logs", tmp_path / "prefix" / "acme")
    main = write_nginx_prefix(tmp_path / "prefix", render_site(params))
    assert nginx_test(tmp_path / "prefix", main).returncode != 0


def test_log_format_never_records_the_query_or_a_raw_referer() -> None:
    formats = _log_formats(NGINX_CONF.read_text())
    assert list(formats) == ["ownsona_noquery"]
    line = formats["ownsona_noquery"]
    assert "$request_method $uri $server_protocol" in line
    assert not FORBIDDEN_LOG_VARIABLES.findall(line)


def test_the_forbidden_variable_check_catches_the_stock_format() -> None:
    combined = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer"'
    assert FORBIDDEN_LOG_VARIABLES.findall(combined) == ["$request", "$http_referer"]
    for leak in ("$request_uri", "$args", "$arg_token", "$query_string", "${request}"):
        assert FORBIDDEN_LOG_VARIABLES.search(leak), leak
    for clean in ("$request_method", "$request_time", "$uri", "$http_user_agent"):
        assert not FORBIDDEN_LOG_VARIABLES.search(clean), clean


def test_every_log_directive_is_clean() -> None:
    directives = _directives(NGINX_CONF.read_text())
    access_logs = [d for d in directives if d.startswith("access_log ")]
    error_logs = [d for d in directives if d.startswith("error_log ")]
    assert len(access_logs) == 2 and all(d.endswith(" ownsona_noquery") for d in access_logs)
    # `crit`: nginx appends the request line, query included, to error-level lines (see the config).
    assert len(error_logs) == 2 and all(d.endswith(" crit") for d in error_logs)


def test_proxy_settings_match_the_app() -> None:
    directives = set(_directives(NGINX_CONF.read_text()))
    defaults = Settings.model_fields
    assert f"proxy_pass http://127.0.0.1:{defaults['port'].default}" in directives
    size = next(d.split()[1] for d in directives if d.startswith("client_max_body_size "))
    assert size.endswith("m") and int(size[:-1]) * 1024 * 1024 == defaults["max_body_bytes"].default
    for expected in (
        "proxy_buffering off",
        "proxy_set_header X-Forwarded-For $remote_addr",
        "proxy_set_header X-Forwarded-Proto $scheme",
        "ssl_protocols TLSv1.2 TLSv1.3",
        "listen 443 ssl http2",
        'add_header Strict-Transport-Security "max-age=31536000" always',
        "location ^~ /.well-known/acme-challenge/",
        "return 301 https://$server_name$request_uri",
    ):
        assert expected in directives, expected
    read_timeout = next(d.split()[1] for d in directives if d.startswith("proxy_read_timeout "))
    assert int(read_timeout.rstrip("s")) >= 3600


# --- systemd ----------------------------------------------------------------------------------


def _unit(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (SYSTEMD_DIR / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = require("systemd-analyze")
    units = unit_copies(tmp_path, TEST_EXEC)
    assert sorted(u.name for u in units) == ["ownsona-backup.service", "ownsona-backup.timer", "ownsona.service"]

    result = subprocess.run([analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # not even a warning (unknown keys only warn)


@pytest.mark.parametrize("name", ["ownsona.service", "ownsona-backup.service"])
def test_systemd_rates_the_services_well_hardened(tmp_path: Path, name: str) -> None:
    """`systemd-analyze security` scores exposure 0 (locked down) to 10; a plain service is ~9.6."""
    analyze = require("systemd-analyze")
    unit = next(u for u in unit_copies(tmp_path, TEST_EXEC) if u.name == name)
    result = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20", str(unit)],
                            capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert level, result.stdout + result.stderr
    assert result.returncode == 0 and float(level[1]) <= 2.0, f"{name}: exposure {level[1]}"


def test_systemd_verify_reports_a_misspelt_directive(tmp_path: Path) -> None:
    analyze = require("systemd-analyze")
    unit = unit_copies(tmp_path, TEST_EXEC)[-1]
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict"))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert "ProtectSystm" in result.stderr


def test_service_runs_serve_unprivileged_and_hardened() -> None:
    unit = _unit("ownsona.service")
    assert unit["ExecStart"] == ["/opt/ownsona/venv/bin/ownsona serve"]
    assert unit.get("User") == ["ownsona"] or unit.get("DynamicUser") == ["yes"]
    assert unit["StateDirectory"] == ["ownsona"]
    assert unit["EnvironmentFile"] == ["-/etc/ownsona/ownsona.env"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["SyslogIdentifier"] == ["ownsona"]
    assert re.fullmatch(r"\d+[MG]", unit["MemoryMax"][0])
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "LockPersonality": "yes",
    }.items():
        assert unit[key] == [value], key
    assert "@system-service" in unit["SystemCallFilter"]
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}


def test_backup_units_run_ownsona_backup_daily() -> None:
    service, timer = _unit("ownsona-backup.service"), _unit("ownsona-backup.timer")
    assert service["Type"] == ["oneshot"]
    assert service["ExecStart"] == ["/opt/ownsona/venv/bin/ownsona backup"]
    assert service["User"] == _unit("ownsona.service")["User"]  # same owner as the database
    assert service["StateDirectory"] == ["ownsona"]
    assert timer["Persistent"] == ["true"]
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", timer["OnCalendar"][0])
    assert "Unit" not in timer  # the timer starts the service of the same name


@pytest.mark.parametrize("name", ["ownsona.service", "ownsona-backup.service"])
def test_units_read_the_env_file_optionally(name: str) -> None:
    assert _unit(name)["EnvironmentFile"] == ["-/etc/ownsona/ownsona.env"]


# The kernel's form of MemoryDenyWriteExecute= (prctl PR_SET_MDWE, Linux >= 6.3), then `serve`.
_MDWE_LAUNCHER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
os.execv(sys.executable, [sys.executable, "-m", "ownsona", "serve"])
"""


async def test_server_works_under_memory_deny_write_execute(tmp_path: Path) -> None:
    """The unit sets MemoryDenyWriteExecute=yes: nothing in the server (embeddings, SQLite
    extensions, libffi) may need writable+executable memory, or the service would crash at once."""
    port = free_port()
    env = clean_env(OWNSONA_HOME=str(tmp_path / "home"), OWNSONA_API_TOKEN=SERVER_TOKEN, OWNSONA_PORT=str(port))
    process = subprocess.Popen([sys.executable, "-c", _MDWE_LAUNCHER], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        try:
            wait_for_port(port, timeout=60, process=process)
        except RuntimeError:
            if process.returncode == 77:
                pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
            raise
        report = await run_doctor(f"http://127.0.0.1:{port}/mcp", SERVER_TOKEN)  # loads the embedder too
        assert report.ok, report.render()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")


# --- the skip rule itself ---------------------------------------------------------------------


def test_a_missing_binary_skips_locally_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require("ownsona-no-such-binary")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require("ownsona-no-such-binary")
