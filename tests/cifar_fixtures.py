"""Test helpers: a fabricated CIFAR-10 in the real on-disk format, and a scriptable local HTTP server.

Nothing here touches the internet. The fabricated archive has the exact layout torchvision's
``CIFAR10`` reads (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``, ``batches.meta``, pickled
dicts, images as rows of 3,072 bytes: 1,024 red, then green, then blue, each row-major 32x32), only
with a handful of images. ``FakeCifar.patch_md5`` points torchvision's class attributes at the
fabricated files' md5s, so the real verification code runs unchanged.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import socket
import tarfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BASE_FOLDER = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass(frozen=True)
class FakeCifar:
    """A tiny CIFAR-10: the files' bytes, the archive's bytes and the pixels they hold."""

    files: dict[str, bytes]     # extracted file name -> its bytes
    archive: bytes              # cifar-10-python.tar.gz
    train_rows: np.ndarray      # (N, 3072) uint8, exactly as stored in the batches
    train_labels: np.ndarray    # (N,) int64
    test_rows: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...] = CLASSES

    def patch_md5(self, monkeypatch) -> None:
        """Make torchvision's ``CIFAR10`` accept these files (its md5 checks stay real)."""
        from torchvision.datasets import CIFAR10

        monkeypatch.setattr(CIFAR10, "tgz_md5", md5(self.archive))
        monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(self.files[n])] for n in TRAIN_FILES])
        monkeypatch.setattr(CIFAR10, "test_list", [[TEST_FILE, md5(self.files[TEST_FILE])]])
        monkeypatch.setattr(CIFAR10, "meta", {"filename": META_FILE, "key": "label_names",
                                              "md5": md5(self.files[META_FILE])})

    def install(self, root: Path, *, extracted: bool = True, archive: bool = True) -> Path:
        """Write the extracted folder and/or the archive into ``root``; return ``root``."""
        root.mkdir(parents=True, exist_ok=True)
        if extracted:
            (root / BASE_FOLDER).mkdir(exist_ok=True)
            for name, data in self.files.items():
                (root / BASE_FOLDER / name).write_bytes(data)
        if archive:
            (root / ARCHIVE_NAME).write_bytes(self.archive)
        return root


def _batch(rows: np.ndarray, labels: np.ndarray, label: str) -> bytes:
    # torchvision unpickles with encoding="latin1" and reads the str keys "data" and "labels"
    # (the real files are Python 2 pickles whose str keys load as str under latin1).
    entry = {"batch_label": label, "labels": labels.tolist(), "data": rows,
             "filenames": [f"img_{label.replace(' ', '_')}_{i}.png" for i in range(len(rows))]}
    return pickle.dumps(entry, protocol=2)


def fabricate_cifar10(per_batch: int = 20, seed: int = 0) -> FakeCifar:
    """Random images, every class in every batch, packed like the real archive."""
    rng = np.random.default_rng(seed)
    n_train = per_batch * len(TRAIN_FILES)
    train_rows = rng.integers(0, 256, (n_train, 3072), dtype=np.uint8)
    test_rows = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
    train_labels = np.concatenate([rng.permutation(np.arange(per_batch) % 10) for _ in TRAIN_FILES])
    test_labels = rng.permutation(np.arange(per_batch) % 10)
    files = {name: _batch(train_rows[i * per_batch:(i + 1) * per_batch],
                          train_labels[i * per_batch:(i + 1) * per_batch], f"training batch {i + 1} of 5")
             for i, name in enumerate(TRAIN_FILES)}
    files[TEST_FILE] = _batch(test_rows, test_labels, "testing batch 1 of 1")
    files[META_FILE] = pickle.dumps({"num_cases_per_batch": per_batch, "label_names": list(CLASSES),
                                     "num_vis": 3072}, protocol=2)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{BASE_FOLDER}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return FakeCifar(files, buffer.getvalue(), train_rows, train_labels.astype(np.int64),
                     test_rows, test_labels.astype(np.int64))


# ---------------------------------------------------------------------------------------------
# A local HTTP server that plays a script of replies.
# ---------------------------------------------------------------------------------------------

HANG = "hang"  # accept the request, never answer
DROP = "drop"  # close the connection without a word


@dataclass(frozen=True)
class Short:
    """Promise ``len(body)`` bytes in Content-Length, send half, close."""

    body: bytes


class LocalServer(ThreadingHTTPServer):
    """Answers each GET with the next reply of ``script`` (the last one repeats); HEAD peeks at it."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, script: list):
        self.script = list(script)
        self.requests: list[str] = []  # "GET /path", in arrival order
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def url(self, path: str = "/" + ARCHIVE_NAME) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def next_reply(self, method: str, path: str):
        with self._lock:
            self.requests.append(f"{method} {path}")
            if method == "HEAD" or len(self.script) == 1:
                return self.script[0]
            return self.script.pop(0)

    @property
    def gets(self) -> int:
        return sum(r.startswith("GET") for r in self.requests)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a closed socket ends every reply
    server: LocalServer

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def _reply(self, head_only: bool) -> None:
        reply = self.server.next_reply(self.command, self.path)
        if reply == HANG:
            self.server.stopping.wait(30)
            return
        if reply == DROP:
            return
        if isinstance(reply, int):
            self.send_response(reply)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = reply.body if isinstance(reply, Short) else reply
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body[: len(body) // 2] if isinstance(reply, Short) else body)

    def do_GET(self) -> None:
        self._reply(head_only=False)

    def do_HEAD(self) -> None:
        self._reply(head_only=True)


@contextmanager
def serve(*script) -> Iterator[LocalServer]:
    """Run a :class:`LocalServer` on 127.0.0.1 (a free port) in a thread for the ``with`` block.

    Replies: ``bytes`` (200 with that body), an ``int`` (that status, empty body), ``HANG``,
    ``DROP`` or ``Short(bytes)``.
    """
    if not script:
        raise ValueError("serve() needs at least one reply")
    server = LocalServer(list(script))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url(path: str = "/" + ARCHIVE_NAME) -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
