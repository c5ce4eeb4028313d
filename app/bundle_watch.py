"""Watch mode (`FUSIONSERVE_WATCH_BUNDLES=1`): a configured model's folder that changed is loaded
as a hot swap, exactly as `POST /v2/repository/models/{name}/load` would.

A folder is read only once it stopped changing: its fingerprint (every file's name, size, mtime
and inode, and the folder's own identity, so a rename or a symlink switch counts) must be the
same on two polls WATCH_INTERVAL_S apart. A rename into place is therefore seen whole; a copy
still being written is waited for, and one that stopped half-way fails the checksums and is
refused, the old version serving on. A folder that is absent or has no manifest (between the
two renames of a swap) is ignored. A refused fingerprint is not retried until it changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from app.contract.manifest import MANIFEST_FILE
from app.errors import ServiceError
from app.registry import ModelRegistry
from app.served_model import ModelState

logger = logging.getLogger("fusionserve.watch")

Fingerprint = tuple[object, ...]


def fingerprint(folder: Path) -> Fingerprint | None:
    """What changes when the folder's content or identity does; None without a manifest."""
    try:
        if not (folder / MANIFEST_FILE).is_file():
            return None
        own = folder.stat()
        files = []
        with os.scandir(folder) as entries:
            for e in entries:
                st = e.stat()
                files.append((e.name, st.st_size, st.st_mtime_ns, st.st_ino))
        return (os.path.realpath(folder), own.st_ino, own.st_mtime_ns, *sorted(files))
    except OSError:  # renamed away between the calls: look again next time
        return None


class BundleWatcher:
    """Polls every configured model's folder; `run` until cancelled."""

    def __init__(self, registry: ModelRegistry, interval_s: float) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self._seen: dict[str, Fingerprint | None] = {}  # loaded or refused
        self._pending: dict[str, Fingerprint] = {}  # changed, not yet settled

    def baseline(self) -> None:
        """What the start-up loads read: not a change."""
        for name, served in self.registry.models.items():
            self._seen[name] = fingerprint(served.bundle_dir)

    async def run(self) -> None:
        self.baseline()
        while True:
            await asyncio.sleep(self.interval_s)
            await self.poll()

    async def poll(self) -> None:
        for name, served in list(self.registry.models.items()):
            if served.state is ModelState.UNLOADED:
                continue  # an operator's unload stands until an explicit load
            now = await asyncio.to_thread(fingerprint, served.bundle_dir)
            if now is None or now == self._seen.get(name):
                self._pending.pop(name, None)
                continue
            if self._pending.get(name) != now:
                self._pending[name] = now  # changed: load once it holds still for a poll
                continue
            del self._pending[name]
            self._seen[name] = now
            logger.info("model %s: its folder changed; loading it", name)
            try:
                await self.registry.load(name)
            except ServiceError as exc:  # refused (reason logged by the swap); old version serves
                logger.warning("model %s: watched load refused: %s", name, exc.message)
