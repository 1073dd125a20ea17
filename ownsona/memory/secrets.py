"""A best-effort scanner that keeps credentials out of the memory store.

It is a seat belt, not a security boundary: a memory travels to every assistant that recalls it,
so an API key pasted into a "remember this" should be refused. The Java patterns are kept, and
the gaps listed in §4.3/§8.1 #29 are closed (passwords, payment cards, Stripe, GitLab, npm,
service-account JSON). The generic `sk-` pattern now needs a digit, so a hyphenated name such as
`sk-learn-gradient-boosting-notes` is not mistaken for a key.
"""

from __future__ import annotations

import re

_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern)
    for pattern in (
        r"\bsk-proj-[A-Za-z0-9_-]{16,}",
        r"\bsk-ant-[A-Za-z0-9_-]{16,}",
        r"\bsk-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}",
        r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
        r"\bgh[pousr]_[A-Za-z0-9]{30,}",
        r"\bgithub_pat_[A-Za-z0-9_]{60,}",
        r"\bglpat-[A-Za-z0-9_-]{20,}",
        r"\bnpm_[A-Za-z0-9]{36}\b",
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"\bxox[baprs]-[A-Za-z0-9-]{10,}",
        r"AIza[0-9A-Za-z_-]{30,}",
        r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
        r'"private_key_id"\s*:\s*"[0-9a-f]{16,}"',
        # "my password is hunter2", "passcode: 1234-abcd", "pwd = s3cret!"; the value must hold a
        # digit or a symbol, so "the password is stored in the vault" stays allowed.
        r"(?i)\b(?:password|passwd|passcode|pwd|passphrase|pin code)\b\s*(?:is|was|=|:)\s*"
        r"[\"']?(?=[^\s\"']*[\d!@#$%^&*+=?~])[^\s\"']{4,}",
    )
)

_CARD_CANDIDATE = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _has_payment_card(text: str) -> bool:
    for match in _CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits) and len(set(digits)) > 1:
            return True
    return False


def looks_like_secret(text: str) -> bool:
    """True when the text appears to hold a credential, a private key or a payment card number."""
    if not text:
        return False
    return any(pattern.search(text) for pattern in _PATTERNS) or _has_payment_card(text)
