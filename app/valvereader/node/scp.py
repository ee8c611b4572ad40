"""The DICOM node: a Storage SCP (pynetdicom) that reads every image it receives.

On the association's thread a C-STORE is only stored: the dataset, as received, goes to
``OUT/in/<SOP Instance UID>.dcm`` atomically (with the calling AE title in the file meta's
Source Application Entity Title), and the peer gets its answer at once. One worker thread
then classifies the files in the order they came (``reading.read_one``): the row in
``OUT/results.csv``, the SR in ``OUT/sr/``, the Secondary Capture in ``OUT/sc/`` and, with a
destination, the C-STOREs out (``send.Outbox``). A file without a row when the node starts
(it stopped or crashed before reading it) is read then: nothing received is lost.

Only the peers allowed (``Allowed``: AE title, optionally with a host) may associate, unless
the node accepts any.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import atomic
from .reading import RESULTS_NAME, Received, Results, node_columns, read_one
from .send import Outbox, Peer, check_ae_title

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ: rejected-permanent, by the service user, calling AE title not recognised.
REJECT_CALLING_AET = (0x01, 0x01, 0x03)
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class Allowed:
    """A peer allowed to send: an AE title, and the host it must come from (None: any host)."""

    ae_title: str
    host: str | None = None

    @classmethod
    def parse(cls, text: str) -> Allowed:
        """``AET`` or ``AET@HOST``.

        Raises:
            ValueError: an empty or over-long AE title, or an empty host.
        """
        aet, at, host = text.partition("@")
        if at and not host.strip():
            raise ValueError(f"'{text}': a host must follow '@' (AET or AET@HOST)")
        return cls(check_ae_title(aet), host.strip() or None)

    def admits(self, ae_title: str, address: str) -> bool:
        return ae_title.strip() == self.ae_title and (self.host is None or _same_host(self.host, address))


def _same_host(host: str, address: str) -> bool:
    if host == address:
        return True
    import socket

    try:
        return address in {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False


@dataclass
class NodeConfig:
    out: Path
    ae_title: str = "VALVEREADER"
    port: int = 11112
    bind: str = "0.0.0.0"
    allowed: Sequence[Allowed] = field(default_factory=list)
    allow_any: bool = False
    send_to: Peer | None = None
    with_sc: bool = False
    send_attempts: int = 3
    send_delay: float = 2.0


def stored_name(sop_instance_uid: str) -> str:
    """The file name for a received instance: its UID, or a safe stand-in for a malformed one."""
    uid = (sop_instance_uid or "").strip().rstrip("\x00")
    if _UID.match(uid) and len(uid) <= 64:
        return f"{uid}.dcm"
    import hashlib

    return f"invalid-uid-{hashlib.sha256(uid.encode('utf-8', 'replace')).hexdigest()[:32]}.dcm"


def encode_received(event: Any, calling_aet: str) -> bytes:
    """The C-STORE's dataset as a DICOM file: preamble, file meta (with the sender's AE
    title), then the dataset's bytes exactly as they arrived."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    meta = event.file_meta
    meta.SourceApplicationEntityTitle = calling_aet
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    buffer.write(event.request.DataSet.getvalue())
    return buffer.getvalue()


class Node:
    """The running node. ``start()`` loads the model, reads what was left unread and starts
    listening; ``stop()`` stops listening and the worker (what is still queued stays on disk and
    is read on the next start)."""

    def __init__(self, config: NodeConfig, predictor: Any | None = None):
        self.config = config
        self.out = Path(config.out)
        self.inbox = self.out / "in"
        self.predictor = predictor
        self.algorithm: Any = None
        self.results: Results | None = None
        self.kept: Any = None  # review.ResultCache of OUT/: the window shows results without reading
        self.outbox: Outbox | None = None
        self._queue: queue.Queue[Received | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._server: Any = None
        self.rejected: list[tuple[str, str]] = []  # (AE title, address) refused, newest last

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Raises ModelError (no or broken weights) and OSError (port taken, OUT not writable)."""
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # made at import

        from .sr import Algorithm

        if self.predictor is None:
            from ..inference.predictor import load_predictor

            self.predictor = load_predictor()
        self.algorithm = Algorithm.from_predictor(self.predictor)
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.results = Results(self.out / RESULTS_NAME, node_columns(self.predictor.valve_ids))
        self.kept = _result_cache(self.out)
        if self.config.send_to is not None:
            self.outbox = Outbox(self.config.send_to, self.config.ae_title, self.out / "unsent.txt",
                                 self.config.send_attempts, self.config.send_delay)
        left = self._unread()
        for item in left:
            self._queue.put(item)
        if left:
            log.info("%d received file(s) not yet read: reading them first", len(left))
        self._worker = threading.Thread(target=self._work, name="valvereader-node-reader", daemon=True)
        self._worker.start()

        ae = AE(ae_title=self.config.ae_title)
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.maximum_associations = 16
        handlers = [(evt.EVT_REQUESTED, self._on_requested), (evt.EVT_C_STORE, self._on_store)]
        self._server = ae.start_server((self.config.bind, self.config.port), block=False,
                                       evt_handlers=handlers)  # type: ignore[arg-type]  # pynetdicom's event tuples
        log.info("DICOM node %s listening on %s:%d", self.config.ae_title, self.config.bind, self.port)

    @property
    def port(self) -> int:
        """The port listened on (the one given, or the one the system chose for port 0)."""
        if self._server is not None:
            return int(self._server.server_address[1])
        return self.config.port

    def stop(self, timeout: float = 30.0) -> int:
        """Stop listening, finish the file being read and stop; returns how many files are left
        for the next start."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        left = 0
        if self._worker is not None:
            while True:  # the files not begun stay on disk; the next start reads them
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                left += item is not None
                self._queue.task_done()
            self._queue.put(None)
            self._worker.join(timeout)
            self._worker = None
        if self.outbox is not None:
            self.outbox.close(timeout)
        return left

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until everything received has been read and sent; False on timeout."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0 and (self.outbox is None or self.outbox.idle()):
                return True
            time.sleep(0.05)
        return False

    # --- association thread -------------------------------------------------------------------
    def admits(self, ae_title: str, address: str) -> bool:
        return self.config.allow_any or any(a.admits(ae_title, address) for a in self.config.allowed)

    def _on_requested(self, event: Any) -> None:
        requestor = event.assoc.requestor
        # (The requestor's AE title is filled in only after negotiation: read the request's.)
        ae_title, address = _text(requestor.primitive.calling_ae_title), str(requestor.address)
        if not self.admits(ae_title, address):
            log.warning("refused an association from %s at %s: not allowed (--allow)", ae_title, address)
            self.rejected.append((ae_title, address))
            event.assoc.acse.send_reject(*REJECT_CALLING_AET)
            event.assoc.kill()  # as pynetdicom does after its own rejections: the A-ASSOCIATE-RJ goes out first

    def _on_store(self, event: Any) -> int:
        calling = _text(event.assoc.requestor.ae_title)
        path = self.inbox / stored_name(str(event.request.AffectedSOPInstanceUID or ""))
        try:
            atomic.write_bytes(path, encode_received(event, calling))
        except Exception as exc:  # noqa: BLE001 - the peer is told; it keeps its copy
            log.error("could not store %s from %s: %s", path.name, calling, exc)
            return STATUS_OUT_OF_RESOURCES
        self._queue.put(Received(path.resolve(), calling))
        return STATUS_SUCCESS

    # --- worker thread ------------------------------------------------------------------------
    def _unread(self) -> list[Received]:
        assert self.results is not None
        done = self.results.done_names()
        files = sorted((p for p in self.inbox.glob("*.dcm") if p.name not in done), key=lambda p: p.stat().st_mtime)
        return [Received(p.resolve(), _sender_of(p)) for p in files]

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._read(item)
            finally:
                self._queue.task_done()

    def _read(self, item: Received) -> None:
        assert self.results is not None
        try:
            row, outgoing = read_one(item, self.predictor, self.algorithm, self.out, self.config.with_sc, self.kept)
        except Exception as exc:  # read_one reports failures in the row; this is a last guard
            log.exception("reading %s failed", item.path.name)
            row, outgoing = {"path": str(item.path), "status": "error",
                             "error": f"unexpected {type(exc).__name__}: {exc}", "calling_aet": item.calling_aet}, []
        try:
            self.results.append(row)
        except OSError as exc:
            log.error("could not write the row for %s to %s: %s", item.path.name, self.results.path, exc)
        if row.get("status") == "error":
            log.warning("%s from %s: %s", item.path.name, item.calling_aet, row.get("error"))
        else:
            log.info("%s from %s: %s %s", item.path.name, item.calling_aet, row.get("status"),
                     row.get("verdict") or row.get("error"))
        if outgoing and self.outbox is not None:
            self.outbox.put(outgoing)


def _result_cache(out: Path) -> Any:
    """OUT/'s result cache (the window's ``.valvereader-results.jsonl``), or None if unusable."""
    try:
        from ..review import ResultCache

        return ResultCache(out)
    except Exception as exc:  # noqa: BLE001 - the window then reads the films itself
        log.warning("results in %s not kept for the window: %s", out, exc)
        return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


def _sender_of(path: Path) -> str:
    from pydicom.filereader import read_file_meta_info

    try:
        return str(read_file_meta_info(path).get("SourceApplicationEntityTitle", "") or "").strip()
    except Exception:  # noqa: BLE001 - only a label
        return ""
