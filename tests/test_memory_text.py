"""Text rules: normalisation, tags, the secret scanner, prompt layout and timestamps."""

from __future__ import annotations

import pytest

from ownsona.memory.errors import ServiceError
from ownsona.memory.normalize import clean, duplicate_key
from ownsona.memory.prompt import build_prompt, within_budget
from ownsona.memory.secrets import looks_like_secret
from ownsona.memory.tags import normalize_tag, normalize_tags
from ownsona.memory.timestamps import to_iso


def test_clean_trims_unicode_space_and_keeps_inner_spacing() -> None:
    assert clean("\u00a0 Two  spaces\tkept \n") == "Two  spaces\tkept"
    assert clean("Cafe\u0301") == "Café"  # NFC


def test_duplicate_key_collapses_space_and_case_folds() -> None:
    assert duplicate_key("  My  Dog\tis\nCOCO ") == "my dog is coco"
    assert duplicate_key("STRASSE") == duplicate_key("Straße")
    assert duplicate_key(duplicate_key("A  b")) == duplicate_key("A  b")


@pytest.mark.parametrize(("raw", "tag"), [("tech", "software"), ("Programming", "software"), (" dev ", "software"),
                                          ("books", "publishing"), ("relatives", "family"), ("pref", "preferences"),
                                          ("Garden", "garden"), ("software", "software")])
def test_synonyms_map_to_canonical_tags(raw: str, tag: str) -> None:
    assert normalize_tag(raw) == tag


def test_tag_lists_dedupe_after_mapping_and_enforce_limits() -> None:
    assert normalize_tags(["tech", "TECH", None, " ", "software", "Travel"]) == ["software", "travel"]
    assert normalize_tags(None) == []
    with pytest.raises(ServiceError, match=r"tags\[1\] is too long: 65 > 64"):
        normalize_tags(["ok", "x" * 65])
    with pytest.raises(ServiceError, match="Too many tags"):
        normalize_tags([f"t{i}" for i in range(17)])


@pytest.mark.parametrize("text", [
    "sk-proj-abcdefghijklmnop1234", "sk-ant-api03-abcdefghijklmnop", "sk-abc123def456ghi789jkl0mno",
    "ghp_" + "a" * 36, "github_pat_" + "a" * 70, "AKIAABCDEFGHIJKLMNOP", "xoxb-1234567890-abc",
    "AIza" + "b" * 35, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpM",
    "-----BEGIN RSA PRIVATE KEY-----", "glpat-abcdefghijklmnopqrst", "rk_live_abcdefghijklmnop12",
    "my password is Tr0ub4dor&3", "passcode: 12345678", "4242 4242 4242 4242",
    '{"private_key_id": "0123456789abcdef0123"}',
])
def test_secret_shapes_are_caught(text: str) -> None:
    assert looks_like_secret(f"note: {text} end")


@pytest.mark.parametrize("text", [
    "", "I use sk-learn-gradient-boosting daily", "Order #SK-12", "text-embedding-3-small", "AKIA1234",
    "my password manager is Bitwarden", "the password is stored in the vault", "order 1234 5678 9012 3456",
    "123e4567-e89b-12d3-a456-426614174000", "call +41 44 668 18 00",
])
def test_ordinary_text_is_not_a_secret(text: str) -> None:
    assert not looks_like_secret(text)


def test_budget_stops_at_the_first_fact_that_does_not_fit() -> None:
    assert within_budget(["aaa", "bbbb", "c"], 7) == ["aaa", "bbbb"]
    assert within_budget(["aaaa", "b"], 3) == []
    assert within_budget(["x"], None) == ["x"]


def test_prompt_layout_matches_the_java_bytes() -> None:
    assert build_prompt("Hi", []) == (
        "The following are previously known facts:\n\nNo relevant previously known facts were found.\n\n"
        "-----------------\n\nThe following is the user's prompt:\n\nHi"
    )
    assert build_prompt("Hi", ["A.", "B."]).startswith("The following are previously known facts:\n\nA.\n\nB.\n\n---")
    assert "2 relevant facts were left out" in build_prompt("Hi", [], omitted=2)


def test_iso_rendering_matches_java_instant() -> None:
    assert to_iso(1_777_982_400_000) == "2026-05-05T12:00:00Z"
    assert to_iso(1_777_982_400_123) == "2026-05-05T12:00:00.123Z"
