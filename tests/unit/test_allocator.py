"""The allocator keeps the relay's megabyte buffers instead of faulting them in again each time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tunnel import allocator

# Allocate and free buffers the way relaying does (a message joined from reads, then a copy),
# and count the page faults that costs.
CHURN = """
import json, resource, sys
from tunnel import allocator
tuned = allocator.tune() if sys.argv[1] == "tuned" else False
reads = [bytes(256 * 1024) for _ in range(4)]
def relay_one():
    message = b"".join(reads)
    copy = bytearray(message)
    return len(copy)
relay_one()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    relay_one()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"tuned": tuned, "faults": faults}))
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tunes glibc only")


def churn(mode: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    done = subprocess.run(
        [sys.executable, "-c", CHURN, mode], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_tuned_buffers_are_reused_instead_of_faulted_in_again() -> None:
    untuned, tuned = churn("default"), churn("tuned")
    assert tuned["tuned"] is True
    # 200 rounds of two 1 MiB buffers: by default each round faults their pages in anew.
    assert isinstance(untuned["faults"], int) and untuned["faults"] > 200 * 256
    assert isinstance(tuned["faults"], int) and tuned["faults"] < 200


def test_an_administrators_own_malloc_tunables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert allocator.tune() is False
