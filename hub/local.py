"""A real JupyterHub on 127.0.0.1 and participants who use it, for tests/test_hub.py and hub/measure.py.

``LocalHub`` starts ``jupyterhub`` with ``hub/jupyterhub_config.py`` (a shared password, one local process
per participant) and stops it, with every server it started, when the ``with`` block ends. A
``Participant`` logs in through the login form as a person would, starts their server through the REST
API and runs code in a kernel of it (the Jupyter messaging protocol over the kernel's websocket), or a
whole notebook cell by cell as "Run All" does.

``share_read_only(source, target)`` puts a folder where participants can read but not write it, as a
hub's shared volume is: a read-only bind mount where this process may mount (root on Linux; even root
cannot write there), else a copy whose write permissions are removed (which stops anyone but root).

Needs ``jupyterhub`` (the ``hub`` extra) and ``configurable-http-proxy`` (npm; ``find_proxy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = HERE / "jupyterhub_config.py"
PROXY_ENV = "CONVAE_HUB_PROXY"
# where .ci/run (and the README) install configurable-http-proxy with npm, outside the checkout
PROXY_PREFIX = Path(os.environ.get("TMPDIR", "/tmp")) / "convae-chp"


class HubError(RuntimeError):
    """The hub, a server or a kernel did not do what was asked; the message says what came instead."""


def find_proxy() -> str | None:
    """The configurable-http-proxy executable: ``$CONVAE_HUB_PROXY``, then ``PATH``, then npm's prefix above."""
    candidates = [os.environ.get(PROXY_ENV), shutil.which("configurable-http-proxy"),
                  str(PROXY_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy")]
    return next((c for c in candidates if c and Path(c).exists()), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- a folder shared read-only ---------------------------------------------------------------------

@dataclass
class ReadOnlyShare:
    """A folder participants can read and not write; ``how`` says which way (``bind mount`` or ``permissions``)."""

    path: Path
    how: str

    def release(self) -> None:
        if self.how == "bind mount":
            subprocess.run(["umount", str(self.path)], check=False, capture_output=True)
        else:
            for folder, dirs, _ in os.walk(self.path):
                os.chmod(folder, 0o755)
        shutil.rmtree(self.path, ignore_errors=True)


def share_read_only(source: Path, target: Path) -> ReadOnlyShare:
    """``source``'s contents readable and not writable at ``target`` (a read-only bind mount if possible)."""
    target.mkdir(parents=True, exist_ok=True)
    if sys.platform == "linux" and os.geteuid() == 0:
        bind = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
        if bind.returncode == 0:
            remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True, text=True)
            if remount.returncode == 0:
                return ReadOnlyShare(target, "bind mount")
            subprocess.run(["umount", str(target)], check=False, capture_output=True)
    shutil.copytree(source, target, dirs_exist_ok=True)
    for folder, dirs, files in os.walk(target, topdown=False):
        for name in files:
            os.chmod(Path(folder) / name, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(folder, 0o555)
    return ReadOnlyShare(target, "permissions")


# -- the hub -----------------------------------------------------------------------------------------

class LocalHub:
    """``with LocalHub(env={...}) as hub:`` a JupyterHub on 127.0.0.1:``hub.port``, stopped at the end.

    Args:
        env: more environment for the hub and so for every participant's server (``CONVAE_*``).
        notebooks: the folder each participant gets a copy of at ``~/convae/notebooks``.
        state: the hub's folder (database, homes); default a new temporary folder, removed at the end.
        proxy: configurable-http-proxy's path (default ``find_proxy()``).
        python: the Python that runs the hub and the participants' servers (default this one).
    """

    def __init__(self, *, env: dict | None = None, notebooks: Path | None = ROOT / "notebooks",
                 state: Path | None = None, proxy: str | None = None, python: str = sys.executable,
                 start_timeout: float = 120):
        self.proxy = proxy or find_proxy()
        if self.proxy is None:
            raise HubError("configurable-http-proxy was not found: install it with `npm install --prefix "
                           f"{PROXY_PREFIX} configurable-http-proxy` or set ${PROXY_ENV} to its path")
        self._own_state = state is None
        self.state = Path(tempfile.mkdtemp(prefix="convae-hub-")) if state is None else Path(state)
        self.password = secrets.token_urlsafe(12)
        self.port, self.api_port, self.proxy_api_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {}), "CONVAE_HUB_STATE": str(self.state),
                    "CONVAE_HUB_PORT": str(self.port), "CONVAE_HUB_API_PORT": str(self.api_port),
                    "CONVAE_HUB_PROXY_API_PORT": str(self.proxy_api_port), "CONVAE_HUB_PROXY": self.proxy,
                    "CONVAE_HUB_PASSWORD": self.password}
        if notebooks is not None:
            self.env["CONVAE_HUB_NOTEBOOKS"] = str(notebooks)
        self.python, self.start_timeout = python, start_timeout
        self.process: subprocess.Popen | None = None
        self.log = self.state / "jupyterhub.log"

    def __enter__(self) -> "LocalHub":
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([self.python, "-m", "jupyterhub", "-f", str(CONFIG)],
                                            cwd=self.state, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            self._wait_up()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_up(self) -> None:
        import requests

        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HubError(f"jupyterhub exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/hub/api/", timeout=5).ok:
                    return
            time.sleep(0.5)
        raise HubError(f"jupyterhub did not answer on {self.url} within {self.start_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the hub stops its servers and the proxy on the way out
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        if self.process is not None:  # whatever is left of its session (a stuck server): gone
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        for pid in self.server_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self._own_state:
            shutil.rmtree(self.state, ignore_errors=True)

    def server_pids(self) -> list[int]:
        """Process ids of participants' servers still running (each leads its own process group)."""
        return [proc.pid for proc in self.servers().values()]

    def servers(self) -> dict:
        """``{participant: psutil.Process}`` of this hub's running servers (found by their home folder)."""
        import psutil

        found = {}
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error, TypeError):
                if "jupyterhub.singleuser" in " ".join(proc.info["cmdline"] or ()) and \
                        Path(proc.cwd()).is_relative_to(self.state / "home"):
                    found[proc.environ().get("JUPYTERHUB_USER", str(proc.pid))] = proc
        return found

    def participant(self, name: str) -> "Participant":
        return Participant(self, name)


# -- a participant ----------------------------------------------------------------------------------

@dataclass
class Participant:
    """One person on the hub: logs in with the shared password, starts a server, runs code in it."""

    hub: LocalHub
    name: str
    token: str = ""
    session: object = field(default=None, repr=False)

    def login(self) -> "Participant":
        """Log in through the login form (as a browser does), then ask the hub for an API token."""
        import requests

        self.session = requests.Session()
        page = self.session.get(f"{self.hub.url}/hub/login", timeout=30)
        page.raise_for_status()
        answer = self.session.post(f"{self.hub.url}/hub/login?next=", timeout=60, allow_redirects=False,
                                   data={"username": self.name, "password": self.hub.password,
                                         "_xsrf": self._xsrf()})
        if answer.status_code != 302:
            raise HubError(f"{self.name} could not log in: HTTP {answer.status_code} (expected a redirect)")
        made = self.session.post(f"{self.hub.url}/hub/api/users/{self.name}/tokens", timeout=30,
                                 headers={"X-XSRFToken": self._xsrf()}, json={"note": "convae hub test", "expires_in": 3600})
        if made.status_code != 201:
            raise HubError(f"the hub refused {self.name} a token: HTTP {made.status_code} {made.text[:200]}")
        self.token = made.json()["token"]
        return self

    def _xsrf(self) -> str:
        """The newest ``_xsrf`` cookie (the hub sets a new one at login)."""
        return [cookie.value for cookie in self.session.cookies if cookie.name == "_xsrf"][-1]

    def _api(self, method: str, path: str, **kwargs):
        import requests

        return requests.request(method, f"{self.hub.url}{path}", timeout=60,
                                headers={"Authorization": f"token {self.token}"}, **kwargs)

    def start_server(self, timeout: float = 240) -> str:
        """Start this participant's server and wait until it answers; its URL prefix (``/user/<name>/``)."""
        answer = self._api("POST", f"/hub/api/users/{self.name}/server")
        if answer.status_code not in (201, 202, 400):  # 400: already running
            raise HubError(f"starting {self.name}'s server: HTTP {answer.status_code} {answer.text[:200]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self._api("GET", f"/hub/api/users/{self.name}").json().get("servers", {}).get("")
            if server and server.get("ready"):
                return server["url"]
            time.sleep(1)
        raise HubError(f"{self.name}'s server was not ready within {timeout:.0f} s:\n{self.hub.log_tail()}")

    def stop_server(self) -> None:
        self._api("DELETE", f"/hub/api/users/{self.name}/server")

    def server_get(self, path: str):
        return self._api("GET", f"/user/{self.name}/{path.lstrip('/')}")

    def start_kernel(self, cwd: str = "convae/notebooks") -> str:
        """A new Python kernel in this participant's server, running in ``cwd`` (relative to their home)."""
        answer = self._api("POST", f"/user/{self.name}/api/kernels", json={"name": "python3", "path": cwd})
        if answer.status_code != 201:
            raise HubError(f"{self.name}'s server refused a kernel: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json()["id"]

    def shutdown_kernel(self, kernel_id: str) -> None:
        self._api("DELETE", f"/user/{self.name}/api/kernels/{kernel_id}")

    def run(self, code: str, kernel_id: str | None = None, timeout: float = 300) -> str:
        """Run ``code`` in a kernel (a new one, shut down after, unless ``kernel_id``); what it printed.

        Raises :class:`HubError` with the traceback when the cell raised."""
        own = kernel_id is None
        kernel_id = kernel_id or self.start_kernel()
        try:
            return asyncio.run(self._execute(kernel_id, [code], timeout))[0]
        finally:
            if own:
                self.shutdown_kernel(kernel_id)

    def run_notebook(self, notebook: str, timeout: float = 3600, extra_cells: list[str] = ()) -> list[str]:
        """Run every code cell of ``notebook`` (in ``~/convae/notebooks``) in one new kernel, in order, then
        ``extra_cells``; what each cell printed."""
        path = f"/user/{self.name}/api/contents/convae/notebooks/{notebook}"
        answer = self._api("GET", path, params={"content": 1, "type": "notebook"})
        if answer.status_code != 200:
            raise HubError(f"{self.name} cannot open {notebook}: HTTP {answer.status_code}")
        cells = [cell["source"] for cell in answer.json()["content"]["cells"] if cell["cell_type"] == "code"]
        kernel_id = self.start_kernel()
        try:
            return asyncio.run(self._execute(kernel_id, [*cells, *extra_cells], timeout))
        finally:
            self.shutdown_kernel(kernel_id)

    async def _execute(self, kernel_id: str, cells: list[str], timeout: float) -> list[str]:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = f"ws://127.0.0.1:{self.hub.port}/user/{self.name}/api/kernels/{kernel_id}/channels"
        socket_ = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {self.token}"}),
                                          max_message_size=256 * 1024 * 1024)
        deadline = time.monotonic() + timeout
        outputs = []
        try:
            for code in cells:
                msg_id = uuid.uuid4().hex
                socket_.write_message(json.dumps({
                    "header": {"msg_id": msg_id, "username": self.name, "session": uuid.uuid4().hex,
                               "msg_type": "execute_request", "version": "5.3"},
                    "parent_header": {}, "metadata": {}, "channel": "shell",
                    "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                                "allow_stdin": False, "stop_on_error": True}}))
                printed, error = [], None
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise HubError(f"{self.name}'s cell did not finish within {timeout:.0f} s:\n{code[:300]}")
                    raw = await asyncio.wait_for(socket_.read_message(), timeout=left)
                    if raw is None:
                        raise HubError(f"{self.name}'s kernel connection closed while running:\n{code[:300]}")
                    if isinstance(raw, bytes):  # a message with binary buffers (a widget's): not this cell's state
                        continue
                    msg = json.loads(raw)
                    if msg.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind, content = msg["msg_type"], msg["content"]
                    if kind == "stream":
                        printed.append(content["text"])
                    elif kind in ("execute_result", "display_data"):
                        printed.append(content.get("data", {}).get("text/plain", ""))
                    elif kind == "error":
                        error = "\n".join(content.get("traceback", [])) or f"{content['ename']}: {content['evalue']}"
                    elif kind == "status" and content["execution_state"] == "idle":
                        break
                if error is not None:
                    raise HubError(f"a cell raised in {self.name}'s kernel:\n{code[:300]}\n{_plain(error)}")
                outputs.append("".join(printed))
        finally:
            socket_.close()
        return outputs


def _plain(text: str) -> str:
    """A traceback without its terminal colours."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
