"""Reading rendered admin pages in tests: text without markup, one changelist row."""

from __future__ import annotations

import html
import re
from typing import Any


def text(response: Any) -> str:
    """The page as words, for assertions that do not care about markup."""
    words = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", html.unescape(words))


def row(response: Any, name: str) -> str:
    """The text of the changelist row whose first column is ``name``."""
    for match in re.finditer(r"<tr[^>]*>(.*?)</tr>", response.content.decode(), re.S):
        cells = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))))
        if re.search(rf"(^| ){re.escape(name)} ", cells):
            return cells
    raise AssertionError(f"no row for {name}")
