"""Framework behaviour we rely on without a public API still works (app/framework_compat.py).

Fails loudly, naming the shim and the installed versions, when an upgrade breaks one.
"""

from __future__ import annotations

from app.framework_compat import problems


def test_framework_internals_we_rely_on_still_work() -> None:
    found = problems()
    assert not found, "framework upgrade broke a shim:\n" + "\n".join(found)
