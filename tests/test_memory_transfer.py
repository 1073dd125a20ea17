"""`ownsona export`, `ownsona import` and `ownsona reembed` as real subprocesses on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from memory_fixtures import CountingEmbedder

from ownsona.config import settings_from_environ
from ownsona.db import Database
from ownsona.memory.inputs import RememberItem
from ownsona.memory.schema import MEMORY_SCHEMA
from ownsona.memory.service import MemoryService

ROOT = Path(__file__).resolve().parents[1]


def cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OWNSONA_HOME": str(home),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ownsona", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


async def seeded_service(home: Path, embedder: CountingEmbedder | None = None) -> tuple[Database, MemoryService]:
    settings = settings_from_environ({"OWNSONA_HOME": str(home), "HOME": str(home)})
    db = Database(settings.database_path, [MEMORY_SCHEMA])
    await db.open()
    return db, MemoryService(db, embedder or CountingEmbedder(), settings)


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_export_then_import_is_lossless_and_idempotent(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    db, service = await seeded_service(source)
    await service.remember("default", RememberItem(text="I was born in Lyon.", tags=["bio"], importance=0.9,
                                                   capture_mode="explicit", session_id="s-1",
                                                   source_provider="claude",
                                                   last_confirmed_at=datetime(2026, 1, 2, tzinfo=UTC)))
    await service.remember("default", RememberItem(text="My car is red.", expires_at=datetime(2020, 1, 1, tzinfo=UTC)))
    await service.remember("default", RememberItem(text="My car is blue."))
    await service.forget("default", 2, reason="repainted", replaced_by_id=3)
    await service.remember("someone-else", RememberItem(text="Not exported."))
    await db.close()

    exported = cli(source, "export", "-o", str(tmp_path / "out.jsonl"))
    assert exported.returncode == 0, exported.stderr
    assert "exported 3 memories" in exported.stderr
    original = lines((tmp_path / "out.jsonl").read_text())
    assert [m["id"] for m in original] == [1, 2, 3]
    assert original[1]["forget_reason"] == "repainted" and original[1]["replaced_by_id"] == 3
    assert (tmp_path / "out.jsonl").stat().st_mode & 0o077 == 0

    first = cli(target, "import", str(tmp_path / "out.jsonl"))
    assert first.returncode == 0, first.stderr
    assert "inserted 3" in first.stderr
    again = cli(target, "import", str(tmp_path / "out.jsonl"))
    assert again.returncode == 0 and "inserted 0" in again.stderr and "already_present 3" in again.stderr

    roundtrip = lines(cli(target, "export").stdout)
    assert roundtrip == original


async def test_import_reads_the_java_export_payload(tmp_path: Path) -> None:
    db, service = await seeded_service(tmp_path)
    await service.remember("default", RememberItem(text="I like hiking."))
    await db.close()
    payload = {"ok": True, "count": 3, "memories": [
        {"id": 10, "text": "I like hiking.", "score": 0.0, "created_at": "2025-05-05T12:00:00Z",
         "updated_at": "2025-05-05T12:00:00Z", "tags": ["hobby"]},
        {"id": 11, "text": "My daughter is called Ines.", "score": 0.0, "created_at": "2025-05-06T08:30:00.123Z",
         "updated_at": "2025-05-07T08:30:00Z", "tags": ["relatives"], "source_provider": "openai",
         "capture_mode": "inferred", "session_id": "abc"},
        {"id": 12, "text": "   ", "score": 0.0, "created_at": "2025-05-06T08:30:00Z",
         "updated_at": "2025-05-06T08:30:00Z", "tags": []},
    ]}
    result = cli(tmp_path, "import", "-", stdin=json.dumps(payload))
    assert result.returncode == 2, result.stderr  # one record rejected
    assert "rejected record 3: text is required." in result.stderr
    assert "inserted 1" in result.stderr and "duplicates 1" in result.stderr
    exported = {m["text"]: m for m in lines(cli(tmp_path, "export").stdout)}
    ines = exported["My daughter is called Ines."]
    assert ines["id"] == 11 and ines["tags"] == ["family"] and ines["created_at"] == "2025-05-06T08:30:00.123Z"
    assert ines["capture_mode"] == "inferred" and ines["session_id"] == "abc"


def test_import_refuses_malformed_input_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\nnot json\n')
    result = cli(tmp_path, "import", str(tmp_path / "bad.jsonl"))
    assert result.returncode == 1 and "line 2: not valid JSON" in result.stderr


async def test_reembed_command_replaces_vectors_of_another_model(tmp_path: Path) -> None:
    db, service = await seeded_service(tmp_path, CountingEmbedder(model="retired-model"))
    for i in range(5):
        await service.remember("default", RememberItem(text=f"Fact {i} about the sea."))
    await db.close()
    dry = cli(tmp_path, "reembed", "--dry-run")
    assert dry.returncode == 0 and "5 memories need vectors" in dry.stderr
    done = cli(tmp_path, "reembed", "--batch-size", "2")
    assert done.returncode == 0, done.stderr
    assert "done: 5 re-embedded" in done.stderr
    again = cli(tmp_path, "reembed")
    assert "0 memories need vectors" in again.stderr


@pytest.mark.parametrize("args", [["export", "--help"], ["import", "--help"], ["reembed", "--help"]])
def test_commands_are_registered(tmp_path: Path, args: list[str]) -> None:
    assert cli(tmp_path, *args).returncode == 0
