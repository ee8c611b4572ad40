"""C-STORE of the node's results (SR, Secondary Capture) to a DICOM node such as a PACS.

``Peer.parse("PACS@10.0.0.5:104")`` names the destination; ``send_files`` sends files over one
association; ``Outbox`` does it in a background thread with a few retries, so classification
never waits for the network, and lists what could not be sent in ``OUT/unsent.txt``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import atomic

log = logging.getLogger(__name__)

AE_TITLE_MAX = 16


class SendError(Exception):
    """The destination could not be reached or refused an object."""


def check_ae_title(title: str) -> str:
    """``title`` stripped, or ValueError saying what is wrong with it."""
    title = title.strip()
    if not title or len(title) > AE_TITLE_MAX or "\\" in title or not title.isprintable():
        raise ValueError(f"'{title}' is not an AE title (1 to 16 printable characters, no backslash)")
    return title


@dataclass(frozen=True)
class Peer:
    """A DICOM node: AE title, host and port."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Peer:
        """``AET@HOST:PORT``.

        Raises:
            ValueError: not of that form (the message says what was expected).
        """
        aet, at, address = text.rpartition("@")
        host, colon, port = address.rpartition(":")
        if not at or not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"'{text}' is not AET@HOST:PORT (for example PACS@10.0.0.5:104)")
        return cls(check_ae_title(aet), host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def send_files(peer: Peer, paths: Sequence[Path], calling_aet: str, timeout: float = 30.0) -> None:
    """Send ``paths`` (DICOM files) to ``peer`` over one association.

    Raises:
        SendError: no association, or the peer did not answer success for a file.
    """
    from pydicom import dcmread
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom import AE

    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    headers = [dcmread(path, stop_before_pixels=True) for path in paths]
    for header in headers:
        syntaxes = list(dict.fromkeys([str(header.file_meta.TransferSyntaxUID), ExplicitVRLittleEndian,
                                       ImplicitVRLittleEndian]))
        if not any(cx.abstract_syntax == header.SOPClassUID for cx in ae.requested_contexts):
            ae.add_requested_context(header.SOPClassUID, syntaxes)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        raise SendError(f"{peer} refused or did not answer the association")
    try:
        for path in paths:
            status = assoc.send_c_store(Path(path))
            code = getattr(status, "Status", None)
            if code is None:
                raise SendError(f"{peer} did not answer the C-STORE of {Path(path).name}")
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):  # success or warning
                raise SendError(f"{peer} answered 0x{code:04X} to the C-STORE of {Path(path).name}")
    finally:
        assoc.release()


class Outbox:
    """Sends batches of files to ``peer`` in a background thread; ``attempts`` tries each,
    ``delay`` seconds apart. A batch that fails every time is logged and its paths appended to
    ``unsent`` (one a line), to send again by hand (``storescu``) or by the next start."""

    def __init__(self, peer: Peer, calling_aet: str, unsent: Path, attempts: int = 3, delay: float = 2.0):
        self.peer, self.calling_aet, self.unsent = peer, calling_aet, unsent
        self.attempts, self.delay = max(1, attempts), delay
        self.sent: list[Path] = []
        self.failed: list[Path] = []
        self._queue: queue.Queue[list[Path] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="valvereader-outbox", daemon=True)
        self._stopping = threading.Event()
        self._thread.start()

    def put(self, paths: Sequence[Path]) -> None:
        self._queue.put(list(paths))

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (within ``timeout``), then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stopping.set()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                self._send(batch)
            finally:
                self._queue.task_done()

    def _send(self, batch: list[Path]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                send_files(self.peer, batch, self.calling_aet)
            except Exception as exc:  # noqa: BLE001 - the network must not stop the node
                log.warning("sending %s to %s failed (attempt %d of %d): %s", ", ".join(p.name for p in batch),
                            self.peer, attempt, self.attempts, exc)
                if attempt < self.attempts and not self._stopping.wait(self.delay * attempt):
                    continue
                self.failed.extend(batch)
                for path in batch:
                    try:
                        atomic.append_line(self.unsent, f"{path}\t{self.peer}\t{time.strftime('%Y-%m-%dT%H:%M:%S')}")
                    except OSError as write_error:
                        log.error("cannot note %s as unsent: %s", path, write_error)
                return
            self.sent.extend(batch)
            log.info("sent %s to %s", ", ".join(p.name for p in batch), self.peer)
            return
