"""Chat completions as OpenAI Batch API jobs: the same answers as :class:`~lamp.llm.client.ChatClient`,
at the batch price (half of the per-request price on OpenAI), within ``completion_window`` (24 h).

Flow of :meth:`BatchClient.chat` (documented behaviour):

1. answers in the cache are returned without a request; identical requests are asked once;
2. the missing requests are written as a JSONL file in ``state_dir`` (one line a request: ``custom_id``
   the cache key, ``method`` POST, ``url`` ``/v1/chat/completions``, ``body`` the body ChatClient sends),
   at most ``max_requests_per_batch`` lines a file (OpenAI's limit, 50,000);
3. each file is uploaded (``POST /files``, multipart, ``purpose=batch``), then a job is created
   (``POST /batches``, with ``metadata`` ``{"created_by": "lamp"}``);
4. the jobs are polled (``GET /batches/{id}``) every ``poll_interval`` seconds, with a progress line;
5. when a job ends ``completed`` (or ``expired`` / ``cancelled``, which may hold part of the answers) its
   output and error files are downloaded (``GET /files/{id}/content``) and every answer goes into the
   cache as it is read, in exactly the row ChatClient writes for the same request (so a later
   ``ChatClient(..., replay=True)`` or ``lamp plan`` reads them as cached answers);
6. the requests that failed (a line of the error file, a non-200 line of the output, a request missing
   because the job expired or was cancelled, a malformed reply) are sent again as a smaller job, up to
   ``max_retries`` rounds, then reported in their own results (``.error``); a line answered with a
   4xx other than 408 / 429 is final at once, like in ChatClient.  A job that ends ``failed`` (the server
   refused the file: validation errors) reports the server's error messages in the results of its
   requests and caches nothing.

Kill and resume: the state of every job (its local file, input file id, batch id, the custom ids it
covers, its status) is written atomically (temp file, fsync, rename) to ``state_dir/batch_state.json``
as soon as each id is known, the input file id before the job is created.  A rerun with the same
``state_dir`` and cache (a new process, after a kill or Ctrl-C) resumes polling the jobs that cover
requests still missing, adopts a job whose creation reply was lost (it lists the server's batches,
newest first, for one made from its input file), and submits only the requests that no job covers:
nothing is paid twice.  One process at a time uses a ``state_dir`` (a lock file).

The control calls go through the C transport (:func:`lamp._core.http_request`): transport errors, HTTP
408, 429 and 5xx are retried up to ``http_retries`` times with exponential backoff or after the
server's ``Retry-After``.  A job creation that fails is retried only after the list of batches shows
that it was not made.  The API key is read from the variable named by ``api_key_env`` at each call and is
never written to the state, the cache, the progress lines, results or exception messages.
"""
from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
from typing import Callable, Sequence

from lamp import _core
from lamp.errors import BatchAPIError, LLMError
from lamp.llm.cache import AnswerCache
from lamp.llm.client import (ChatResult, Redactor, RunStats, _check_common, _check_url, _duration,
                             _env_name_shown, _parse_reply, _response_format, _shown_url, _usage_malformed, answer_row,
                             auth_headers, cached_results, check_requests, request_body, with_format)

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS
    fcntl = None

__all__ = ["BatchClient", "BATCH_ENDPOINT", "MAX_REQUESTS_PER_BATCH"]

#: The endpoint every line of a job calls.
BATCH_ENDPOINT = "/v1/chat/completions"
#: OpenAI's limit of requests in one batch job.
MAX_REQUESTS_PER_BATCH = 50_000
_STATE = "batch_state.json"
_TERMINAL = ("completed", "expired", "cancelled", "failed")
_CONTROL_MAX = 8 << 20  # bytes of a control reply (a batch object, a list)


def _retryable(status: int) -> bool:
    return status == 0 or status in (408, 429) or status >= 500


def _write_atomically(path: str, data: bytes) -> None:
    """Writes ``path`` through a temporary file of its folder: fsync, rename, fsync of the folder."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class BatchClient:
    """Chat completions sent as OpenAI Batch API jobs, with the contract of :meth:`ChatClient.chat`.

    Parameters
    ----------
    base_url : str
        One URL, e.g. ``https://api.openai.com/v1`` (a list is refused: a job lives on one server).
    model : str
        Model name sent with each request.
    api_key_env : str, optional
        Name of the environment variable holding the API key.
    cache : AnswerCache or str
        The answer cache (a path makes one); required: answers are stored as they are read.
    state_dir : str or os.PathLike
        A folder of the run where the jobs' state and input files are kept (created when missing).
    temperature, max_tokens, seed, response_format :
        As in :class:`ChatClient` (the same request bodies and cache keys).
    timeout : float
        Seconds per control call attempt (uploads and downloads get at least 600).
    verify_tls : bool
        TLS verification (False only for a self-signed local server).
    max_retries : int
        Rounds in which failed requests are sent again as a smaller job (default 2).
    poll_interval : float
        Seconds between two polls of a job (default 30).
    completion_window : str
        The job's completion window (OpenAI accepts ``"24h"``).
    max_requests_per_batch : int
        Requests in one job at most (50,000, OpenAI's limit); more are split into several jobs.
    say : callable, optional
        Called with each progress line; default: stderr (a line per poll in a terminal, at most one every
        ``progress_interval`` seconds otherwise, plus every event: upload, creation, end of a job).
    http_retries : int
        Retries of one control call (transport errors, 408, 429, 5xx).
    price_per_million : (float, float)
        Prices per million input and output tokens for ``stats.cost`` (give the batch prices).
    """

    progress_interval: float = 30.0

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, cache=None, *,
                 state_dir: str | os.PathLike, temperature: float = 0.0, max_tokens: int = 256,
                 seed: int | None = None, response_format: dict | None = None, timeout: float = 60.0,
                 verify_tls: bool = True, max_retries: int = 2, poll_interval: float = 30.0,
                 completion_window: str = "24h", max_requests_per_batch: int = MAX_REQUESTS_PER_BATCH,
                 say: Callable[[str], None] | None = None, http_retries: int = 5, connect_timeout: float = 10.0,
                 backoff_base: float = 0.5, backoff_max: float = 30.0, max_download: int = 1 << 30,
                 price_per_million: tuple[float, float] = (0.0, 0.0)):
        if not isinstance(base_url, str):
            raise TypeError(f"base_url must be one URL (a str): a batch job lives on one server, got "
                            f"{type(base_url).__name__}")
        _check_url(base_url)
        _check_common(max_retries, timeout, api_key_env)
        if cache is None:
            raise TypeError("cache is required: batch answers are stored in it as they are read")
        if state_dir is None or not isinstance(state_dir, (str, os.PathLike)):
            raise TypeError("state_dir must be a folder (str or os.PathLike) where the batch state is kept")
        if not isinstance(max_requests_per_batch, int) or not 1 <= max_requests_per_batch <= MAX_REQUESTS_PER_BATCH:
            raise ValueError(f"max_requests_per_batch must be in 1..{MAX_REQUESTS_PER_BATCH}, got "
                             f"{max_requests_per_batch!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        if not isinstance(completion_window, str) or not completion_window:
            raise ValueError(f"completion_window must be a duration such as '24h', got {completion_window!r}")
        if not 0 <= http_retries <= 100:
            raise ValueError(f"http_retries must be in 0..100, got {http_retries}")
        if say is not None and not callable(say):
            raise TypeError("say must be callable (it is given each progress line) or None")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.cache = AnswerCache(cache) if isinstance(cache, (str, os.PathLike)) else cache
        self.state_dir = os.path.abspath(os.fspath(state_dir))
        self.sampling: dict = {"temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            self.sampling["seed"] = seed
        self.response_format = _response_format(response_format)
        self.timeout, self.connect_timeout, self.verify_tls = float(timeout), float(connect_timeout), bool(verify_tls)
        self.max_retries, self.http_retries = int(max_retries), int(http_retries)
        self.backoff_base, self.backoff_max, self.max_download = backoff_base, backoff_max, int(max_download)
        self.poll_interval, self.completion_window = float(poll_interval), completion_window
        self.max_requests_per_batch = max_requests_per_batch
        self.say = say
        self.stats = RunStats(price_per_million=price_per_million)
        self._last_line = 0.0
        self._uploaded_here: set[str] = set()  # input files this client uploaded (no batch can exist for them yet)

    @property
    def _params(self) -> dict:
        """What a request sends besides the model and messages: as :class:`ChatClient` sends it."""
        return with_format(self.sampling, self.response_format)

    def __repr__(self) -> str:
        return (f"BatchClient(base_url={_shown_url(self.base_url)!r}, model={self.model!r}, "
                f"api_key_env={_env_name_shown(self.api_key_env, repr)}, state_dir={self.state_dir!r})")

    # --- output ---------------------------------------------------------------------------------------------
    def _tell(self, line: str, event: bool = True) -> None:
        """A progress line: every one to ``say``; by default to stderr, polls throttled without a terminal."""
        line = self._redact(line)
        if self.say is not None:
            self.say(line)
            return
        now = time.monotonic()
        isatty = getattr(sys.stderr, "isatty", None)
        if event or (isatty and isatty()) or now - self._last_line >= self.progress_interval:
            print(line, file=sys.stderr, flush=True)
            self._last_line = now

    def _redact(self, text: str, count: bool = False) -> str:
        """The text without the API key or the base URL's user information (a server may echo a header);
        ``count``: a reply, counted in ``stats.redacted`` when it held one."""
        redact = Redactor(self.api_key_env, [self.base_url])
        text = redact(text)
        self.stats.redacted += redact.count if count else 0
        return text

    # --- HTTP -----------------------------------------------------------------------------------------------
    def _http(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
              retries: int | None = None, big: bool = False) -> bytes:
        """The body of a 2xx reply to one control call; :class:`BatchAPIError` otherwise."""
        headers = ["Accept: application/json", *auth_headers(self.api_key_env)]
        if body is not None:
            headers.append("Content-Type: " + content_type)
        status, reply, ok, attempts, error, _ = _core.http_request(
            method, self.base_url + path, headers, body, max(self.timeout, 600.0) if big else self.timeout,
            self.connect_timeout, self.http_retries if retries is None else retries, self.backoff_base,
            self.backoff_max, self.max_download if big else _CONTROL_MAX, self.verify_tls,
            secrets.randbits(63) | 1)
        if ok:
            return reply
        detail = ""
        if reply:
            detail = ": " + reply[:300].decode("utf-8", errors="replace").replace("\n", " ")
        raise BatchAPIError(self._redact(f"{method} {path}: {error} after {attempts} attempt(s){detail}"), status)

    def _json(self, method: str, path: str, payload: dict | None = None, retries: int | None = None) -> dict:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        reply = self._http(method, path, body, retries=retries)
        try:
            data = json.loads(reply)
        except ValueError:
            raise BatchAPIError(f"{method} {path}: the reply is not JSON") from None
        if not isinstance(data, dict):
            raise BatchAPIError(f"{method} {path}: the reply is not a JSON object")
        return data

    # --- state ----------------------------------------------------------------------------------------------
    def _load_state(self) -> dict:
        path = os.path.join(self.state_dir, _STATE)
        if not os.path.exists(path):
            return {"version": 1, "jobs": []}
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        if not isinstance(state, dict) or not isinstance(state.get("jobs"), list):
            raise LLMError(f"{path} is not a batch state file")
        return state

    def _save_state(self, state: dict) -> None:
        _write_atomically(os.path.join(self.state_dir, _STATE),
                          json.dumps(state, indent=1, ensure_ascii=False).encode("utf-8"))

    def _lock(self):
        """An exclusive lock on ``state_dir`` for this process (released by closing the file, or by its end)."""
        os.makedirs(self.state_dir, exist_ok=True)
        handle = open(os.path.join(self.state_dir, "lock"), "a")
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise LLMError(f"another process is running batch jobs in {self.state_dir}") from None
        return handle

    def _mine(self, job: dict) -> bool:
        return job.get("base_url") == _shown_url(self.base_url) and job.get("model") == self.model

    # --- the steps of a job -----------------------------------------------------------------------------------
    def _write_input(self, state: dict, keys: list[str], bodies: dict[str, dict], round_: int) -> dict:
        """Writes the JSONL of ``keys`` and records it as a job (before anything is sent)."""
        name = f"input-{len(state['jobs']):05d}-{secrets.token_hex(4)}.jsonl"
        lines = "".join(json.dumps({"custom_id": k, "method": "POST", "url": BATCH_ENDPOINT, "body": bodies[k]},
                                   ensure_ascii=False) + "\n" for k in keys)
        _write_atomically(os.path.join(self.state_dir, name), lines.encode("utf-8"))
        job = {"file": name, "base_url": _shown_url(self.base_url), "model": self.model, "custom_ids": list(keys),
               "input_file_id": None, "file_created_at": None, "batch_id": None, "status": "written",
               "round": round_, "done": False, "written_at": time.time()}
        state["jobs"].append(job)
        self._save_state(state)
        return job

    def _upload(self, state: dict, job: dict) -> None:
        with open(os.path.join(self.state_dir, job["file"]), "rb") as f:
            content = f.read()
        boundary = "lamp-" + secrets.token_hex(16)
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{job["file"]}"\r\n'
                f'Content-Type: application/jsonl\r\n\r\n').encode() + content + f"\r\n--{boundary}--\r\n".encode()
        reply = self._http("POST", "/files", body, f"multipart/form-data; boundary={boundary}", big=True)
        try:
            file = json.loads(reply)
            job["input_file_id"], job["file_created_at"] = str(file["id"]), file.get("created_at")
        except (ValueError, KeyError, TypeError):
            raise BatchAPIError("POST /files: the reply has no file id") from None
        job["status"] = "uploaded"
        self._uploaded_here.add(job["input_file_id"])
        self._save_state(state)  # before the job is created: a kill after this adopts or creates, never twice
        self._tell(f"[lamp] LLM batch: uploaded {len(job['custom_ids'])} requests ({job['input_file_id']})")

    def _find_batch(self, job: dict) -> dict | None:
        """The server's batch made from the job's input file, if any (batches are listed newest first)."""
        after = None
        for _ in range(100):
            page = self._json("GET", "/batches?limit=100" + (f"&after={after}" if after else ""))
            data = page.get("data") or []
            for batch in data:
                if batch.get("input_file_id") == job["input_file_id"]:
                    return batch
            older = [b.get("created_at") for b in data if isinstance(b.get("created_at"), (int, float))]
            since = job.get("file_created_at")
            if not data or not page.get("has_more") or (since is not None and older and min(older) < since):
                return None
            after = data[-1].get("id")
        return None

    def _create(self, state: dict, job: dict) -> None:
        """Creates the job's batch, or adopts the one that a lost reply (or a kill) left on the server."""
        # a file uploaded by an earlier process may have been made into a batch just before that process ended
        batch = None if job["input_file_id"] in self._uploaded_here else self._find_batch(job)
        adopted = batch is not None
        payload = {"input_file_id": job["input_file_id"], "endpoint": BATCH_ENDPOINT,
                   "completion_window": self.completion_window,
                   "metadata": {"created_by": "lamp", "lamp_input": job["file"]}}
        for attempt in range(self.http_retries + 1):
            if batch is not None:
                break
            try:
                batch = self._json("POST", "/batches", payload, retries=0)
            except BatchAPIError as exc:
                if not _retryable(exc.status):
                    raise
                batch = self._find_batch(job)  # the reply may be lost while the batch was made
                adopted = batch is not None
                if batch is None and attempt == self.http_retries:
                    raise
                if batch is None:
                    time.sleep(_core.http_backoff(attempt + 1, -1.0, self.backoff_base, self.backoff_max,
                                                  secrets.randbelow(1 << 20) / (1 << 20)))
        if not isinstance(batch.get("id"), str):
            raise BatchAPIError("POST /batches: the reply has no batch id")
        job["batch_id"], job["status"] = batch["id"], batch.get("status", "validating")
        self._save_state(state)
        self._tell(f"[lamp] LLM batch: {'adopted' if adopted else 'created'} {batch['id']} "
                   f"({len(job['custom_ids'])} requests)")

    def _bodies_of(self, job: dict, bodies: dict[str, dict]) -> dict[str, dict]:
        """The request body of each of the job's custom ids: from its input file, else from this call."""
        try:
            with open(os.path.join(self.state_dir, job["file"]), encoding="utf-8") as f:
                found = {}
                for text in f:
                    line = json.loads(text)
                    found[line["custom_id"]] = line["body"]
                return found
        except (OSError, ValueError, KeyError, TypeError):
            return {k: bodies[k] for k in job["custom_ids"] if k in bodies}

    def _collect(self, state: dict, job: dict, batch: dict, bodies: dict[str, dict],
                 answers: dict[str, ChatResult], failures: dict[str, tuple[str, bool]]) -> None:
        """Reads a finished job: answers into the cache (and ``answers``), failures into ``failures``
        (message, worth retrying)."""
        ids = set(job["custom_ids"])
        status = batch.get("status")
        if status == "failed":
            errors = batch.get("errors")
            errors = errors.get("data") if isinstance(errors, dict) else errors
            errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
            shown = "; ".join(f"{e.get('message') or e.get('code')}" + (f" (line {e['line']})" if e.get("line")
                                                                        else "") for e in errors[:5]) or "no reason"
            message = self._redact(f"batch {batch.get('id')} failed: {shown}")
            for key in ids:
                failures[key] = (message, False)
            self._tell(f"[lamp] LLM {message}")
        else:
            known = self._bodies_of(job, bodies)
            seen: set[str] = set()
            for field in ("output_file_id", "error_file_id"):
                if batch.get(field):
                    self._read_output(self._http("GET", f"/files/{batch[field]}/content", big=True), ids, known,
                                      seen, answers, failures)
            for key in ids - seen:
                failures[key] = (f"no answer in batch {batch.get('id')} (it ended {status})", True)
            self._tell(f"[lamp] LLM batch {batch.get('id')} {status}: {len(ids & set(answers))} answered, "
                       f"{len(ids - set(answers))} failed")
        self._close(state, job, status)

    def _close(self, state: dict, job: dict, status: str) -> None:
        """Marks a job ended (its answers are in the cache): its ids and input file are no longer needed."""
        job.update(status=status, done=True, requests=len(job["custom_ids"]), custom_ids=[])
        self._save_state(state)
        try:
            os.unlink(os.path.join(self.state_dir, job["file"]))
        except OSError:
            pass

    def _read_output(self, content: bytes, ids: set, known: dict, seen: set, answers: dict, failures: dict) -> None:
        rows = []
        for text in content.decode("utf-8", errors="replace").splitlines():
            try:
                line = json.loads(text)
                key = line["custom_id"]
            except (ValueError, KeyError, TypeError):
                continue
            if key not in ids or key in seen:
                continue
            seen.add(key)
            response = line.get("response") or {}
            status = response.get("status_code", 0) if isinstance(response, dict) else 0
            reply = json.dumps(response.get("body"), ensure_ascii=False) if isinstance(response, dict) else "null"
            reply = self._redact(reply, count=True)
            if status == 200:
                answer, usage, problem = _parse_reply(reply.encode("utf-8"))
                if problem is None:
                    self.stats.unknown_usage += _usage_malformed(reply.encode("utf-8"), usage)
                    answers[key] = ChatResult(answer, None, False, usage)
                    failures.pop(key, None)
                    if key in known:
                        body = known[key]
                        params = {k: v for k, v in body.items() if k not in ("model", "messages")}
                        rows.append(answer_row(key, self.model, body["messages"], params, reply, answer, usage))
                    if len(rows) >= 200:
                        self.cache.put_many(rows)
                        rows = []
                    continue
                failures[key] = (problem, True)
                continue
            error = line.get("error") or {}
            if status:
                message = f"HTTP {status}: {reply[:200]}"
            else:
                message = f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
            failures[key] = (self._redact(message), not status or _retryable(status))
        self.cache.put_many(rows)

    def _progress(self, polled: list[dict], sizes: list[int], started: float) -> None:
        # the server counts the requests once the job is validated: until then, the job's own count
        total = sum(max((b.get("request_counts") or {}).get("total") or 0, n) for b, n in zip(polled, sizes))
        done = sum((b.get("request_counts") or {}).get("completed") or 0 for b in polled)
        failed = sum((b.get("request_counts") or {}).get("failed") or 0 for b in polled)
        created = [b["created_at"] for b in polled if isinstance(b.get("created_at"), (int, float))]
        elapsed = time.time() - min(created) if created else time.monotonic() - started
        what = (f"{polled[0].get('id')} {polled[0].get('status')}" if len(polled) == 1 else
                f"{len(polled)} jobs " + ", ".join(sorted({str(b.get('status')) for b in polled})))
        self._tell(f"[lamp] LLM batch {what}: {done}/{total} completed, {failed} failed, "
                   f"{_duration(max(elapsed, 0.0))} elapsed", event=False)

    def _wait(self, state: dict, jobs: list[dict], bodies: dict, answers: dict, failures: dict) -> None:
        """Polls the jobs until each has ended, and reads each as it ends."""
        started = time.monotonic()
        misses = {id(job): 0 for job in jobs}
        open_jobs = list(jobs)
        while open_jobs:
            polled, sizes, still = [], [], []
            for job in open_jobs:
                try:
                    batch = self._json("GET", f"/batches/{job['batch_id']}")
                except BatchAPIError as exc:
                    misses[id(job)] += 1
                    if exc.status == 404 or misses[id(job)] >= 5:
                        gone = exc.status == 404
                        for key in job["custom_ids"]:
                            failures[key] = (f"{exc}" + ("" if gone else "; the job goes on on the server and a "
                                                         "rerun with the same state_dir resumes it"), gone)
                        if gone:  # its requests go out again in the next round
                            self._close(state, job, "missing")
                        continue
                    self._tell(f"[lamp] LLM batch: polling failed ({exc}); trying again")
                    still.append(job)
                    continue
                misses[id(job)] = 0
                polled.append(batch)
                sizes.append(len(job["custom_ids"]))
                if batch.get("status") != job["status"] and batch.get("status") not in _TERMINAL:
                    job["status"] = batch.get("status")
                    self._save_state(state)
                if batch.get("status") in _TERMINAL:
                    try:
                        self._collect(state, job, batch, bodies, answers, failures)
                    except BatchAPIError as exc:
                        gone = exc.status == 404  # an output file the server no longer has: ask again
                        for key in set(job["custom_ids"]) - set(answers):
                            failures[key] = (f"{exc}" + ("" if gone else "; a rerun with the same state_dir "
                                                         "downloads it again"), gone)
                        if gone:
                            self._close(state, job, "missing")
                else:
                    still.append(job)
            if polled:
                self._progress(polled, sizes, started)
            open_jobs = still
            if open_jobs:
                time.sleep(self.poll_interval)

    def _submit(self, state: dict, keys: list[str], bodies: dict, round_: int, failures: dict) -> list[dict]:
        """New jobs for ``keys`` (split at ``max_requests_per_batch``), uploaded and created."""
        jobs = []
        for start in range(0, len(keys), self.max_requests_per_batch):
            job = self._write_input(state, keys[start:start + self.max_requests_per_batch], bodies, round_)
            if self._start(state, job, failures):
                jobs.append(job)
        return jobs

    def _start(self, state: dict, job: dict, failures: dict) -> bool:
        """Uploads and creates a job as far as its state says it is not yet; False (its requests failed) when
        the server refuses."""
        try:
            if not job.get("input_file_id"):
                self._upload(state, job)
            if not job.get("batch_id"):
                self._create(state, job)
        except BatchAPIError as exc:
            for key in job["custom_ids"]:
                failures[key] = (str(exc), False)
            self._tell(f"[lamp] LLM batch: {exc}")
            return False
        return True

    # --- the contract ---------------------------------------------------------------------------------------
    def chat(self, requests: Sequence[list[dict]]) -> list[ChatResult]:
        """Answer every request (a list of ``{"role", "content"}`` messages), in order, through batch jobs.

        Cached answers are returned without a request; identical requests are asked once; the rest go out
        as batch jobs (resumed from ``state_dir`` when a previous run left them), cached as they are read.
        One failed request never raises: it is reported in its result's ``error``.
        """
        requests = check_requests(requests)
        if not requests:
            raise ValueError("requests is empty: give at least one list of chat messages")
        for i, messages in enumerate(requests):
            if not messages:
                raise ValueError(f"requests[{i}] has no message (a batch line needs at least one)")
        keys, results, todo = cached_results(self.cache, self.model, self._params, requests, self.stats)
        if not todo:
            return results  # type: ignore[return-value]
        bodies: dict[str, dict] = {}
        for i in todo:
            bodies.setdefault(keys[i], request_body(self.model, requests[i], self._params))
        auth_headers(self.api_key_env)  # a missing key fails now, before anything is written
        answers: dict[str, ChatResult] = {}
        failures: dict[str, tuple[str, bool]] = {}
        tries: dict[str, int] = {}
        with self._lock():
            state = self._load_state()
            missing = list(bodies)
            for round_ in range(self.max_retries + 1):
                wanted = set(missing)
                jobs = [j for j in state["jobs"] if not j.get("done") and self._mine(j) and wanted & set(j["custom_ids"])]
                for job in jobs:
                    if job.get("batch_id"):
                        self._tell(f"[lamp] LLM batch: resuming {job['batch_id']} ({len(job['custom_ids'])} requests)")
                jobs = [j for j in jobs if j.get("batch_id") or self._start(state, j, failures)]
                covered = {k for j in jobs for k in j["custom_ids"]}
                jobs += self._submit(state, [k for k in missing if k not in covered], bodies, round_, failures)
                for job in jobs:
                    for key in job["custom_ids"]:
                        tries[key] = tries.get(key, 0) + 1
                self._wait(state, jobs, bodies, answers, failures)
                missing = [k for k in missing if k not in answers and failures.get(k, ("", True))[1]]
                if not missing:
                    break
                if round_ < self.max_retries:
                    self._tell(f"[lamp] LLM batch: {len(missing)} failed request(s) go out again as a smaller job "
                               f"(round {round_ + 2} of {self.max_retries + 1})")
        for i in todo:
            key = keys[i]
            if key in answers:
                a = answers[key]
                results[i] = ChatResult(a.text, None, False, a.usage, tries.get(key, 1))
            else:
                message, _ = failures.get(key, ("no answer", False))
                results[i] = ChatResult(None, f"{message} (in {tries.get(key, 0)} batch job(s))", False, {},
                                        tries.get(key, 0))
        for key in bodies:
            if key in answers:
                self.stats.misses += 1
                self.stats.prompt_tokens += answers[key].usage.get("prompt_tokens") or 0
                self.stats.completion_tokens += answers[key].usage.get("completion_tokens") or 0
            else:
                self.stats.failures += 1
        return results  # type: ignore[return-value]

    def cancel(self) -> list[str]:
        """Asks the server to cancel every job of ``state_dir`` that has not ended; returns their batch ids.
        A later :meth:`chat` collects what they answered before they stopped."""
        cancelled = []
        with self._lock():
            state = self._load_state()
            for job in state["jobs"]:
                if not job.get("done") and job.get("batch_id") and self._mine(job):
                    try:
                        self._json("POST", f"/batches/{job['batch_id']}/cancel", {})
                        cancelled.append(job["batch_id"])
                    except BatchAPIError as exc:
                        self._tell(f"[lamp] LLM batch: could not cancel {job['batch_id']}: {exc}")
        return cancelled
