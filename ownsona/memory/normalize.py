"""Text cleaning and the exact-duplicate key.

The Java server trimmed ASCII only and lower-cased with the JVM locale (§8.1 #30). Here both steps
are Unicode-aware and locale-free: text is NFC-normalised, trimmed of every Unicode whitespace
(NBSP included), and the duplicate key additionally collapses whitespace runs and case-folds, so
"Straße" and "STRASSE" or a pasted NBSP do not create twins. Lengths count code points.
"""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE_RUN = re.compile(r"\s+")


def clean(text: str) -> str:
    """The text as stored: NFC, without leading or trailing whitespace, otherwise untouched."""
    return unicodedata.normalize("NFC", text).strip()


def duplicate_key(text: str) -> str:
    """The exact-duplicate key: cleaned, whitespace runs collapsed to one space, case-folded."""
    return _WHITESPACE_RUN.sub(" ", clean(text)).casefold()
