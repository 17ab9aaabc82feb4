"""The receiver as a real process for tests: ``python -m triangulate.receiver`` on loopback.

One owner for starting, health-checking, killing and stopping it, shared by the crash,
chaos and connection-limit tests (each of them had its own copy). The process gets a
clean environment (no receiver secrets or ``TRIANGULATE_RECEIVER_*`` settings inherited
from the shell), its ``TRIANGULATE_HOME``, the secrets given (by default all three test
secrets) and any extra settings; it logs to ``<home>/receiver.log``, appended across
restarts, so a failure can show what the receiver said.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from triangulate.landing import (
    SEGMENT_TEST_WRITE_KEY,
    SHOPIFY_TEST_WEBHOOK_SECRET,
    STRIPE_TEST_WEBHOOK_SECRET,
)
from triangulate.paths import PROJECT_ROOT

ALL_SECRETS = {
    "STRIPE_WEBHOOK_SECRET": STRIPE_TEST_WEBHOOK_SECRET,
    "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_TEST_WEBHOOK_SECRET,
    "SEGMENT_WRITE_KEY": SEGMENT_TEST_WRITE_KEY,
}


def free_port() -> int:
    """A loopback port nobody listens on now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ReceiverProcess:
    """One receiver on one loopback port; ``start`` again after ``kill_9`` restarts it there.

    ``args`` are extra command-line options (e.g. ``("--rotate-bytes", "20000")``),
    ``extra_env`` receiver settings, ``popen`` keyword arguments for ``subprocess.Popen``
    (e.g. a ``preexec_fn`` that lowers the open-file limit).
    """

    def __init__(
        self,
        home: Path,
        *,
        secrets: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        **popen,
    ) -> None:
        self.home = home
        self.port = free_port()
        self.log_path = home / "receiver.log"
        self.secrets = ALL_SECRETS if secrets is None else secrets
        self.extra_env = extra_env or {}
        self.args = args
        self.popen = popen
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ALL_SECRETS and not key.startswith("TRIANGULATE_RECEIVER_")
        }
        env.update(
            TRIANGULATE_HOME=str(self.home),
            PYTHONPATH=str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            **self.secrets,
            **self.extra_env,
        )
        return env

    def start(self, timeout_s: float = 60.0) -> ReceiverProcess:
        """Start it and wait until ``/healthz`` answers 200; fail with its log otherwise."""
        command = [sys.executable, "-m", "triangulate.receiver", "--port", str(self.port)]
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [*command, *self.args],
                cwd=PROJECT_ROOT,
                env=self._env(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                **self.popen,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, "receiver exited:\n" + self.log_text()
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError("receiver did not become healthy:\n" + self.log_text())
            time.sleep(0.05)

    def kill_9(self) -> None:
        """``kill -9``: no shutdown, the open landing files are left behind."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (a graceful stop seals the open files); returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("receiver did not stop on SIGTERM:\n" + self.log_text()) from None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self) -> list[dict]:
        """The receiver's JSON log lines (other lines skipped)."""
        lines = []
        for text in self.log_text().splitlines():
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                continue
        return lines
