"""The test server's Files and Batch APIs (:mod:`lamp.llm.testserver`): uploads, batch jobs processed in
the background line by line with the chat endpoint's answers, and the injected batch faults."""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time

from lamp.llm.testserver_replies import chat_answer

__all__ = ["Batches", "multipart_fields"]

_BATCH_ENDPOINT = "/v1/chat/completions"
_BATCH_LINE_ERROR = {"error": {"message": "injected line error (batch_line_errors)", "type": "server_error"}}


def multipart_fields(content_type: str, raw: bytes) -> dict[str, bytes] | None:
    """The fields of a multipart/form-data body (None when it is not one)."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type.startswith("multipart/form-data") or not m:
        return None
    fields = {}
    for part in raw.split(b"--" + m.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, sep, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if not sep or not name:
            return None
        fields[name.group(1).decode()] = value[:-2] if value.endswith(b"\r\n") else value
    return fields


def _chosen(text: str, share: float) -> bool:
    """True for that share of the texts, chosen by a hash (the same texts every time)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) < share * 16 ** 8


class Batches:
    """The server's files and batch jobs (OpenAI's Files and Batch APIs), each batch processed by a thread:
    validating -> in_progress -> finalizing -> completed over ``batch_latency`` seconds, or failed, expired
    or cancelled."""

    def __init__(self, server):
        self.server = server
        self.files: dict[str, dict] = {}     # id -> {"object": file object, "content": bytes}
        self.jobs: dict[str, dict] = {}      # id -> batch object, in creation order
        self.lines_seen: dict[str, int] = {}  # custom_id -> times processed
        self.created = self.uploaded = 0

    def _new_file(self, content: bytes, filename: str, purpose: str) -> dict:
        file_id = "file-" + hashlib.sha256(f"{time.time_ns()}{len(self.files)}".encode()).hexdigest()[:24]
        obj = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
               "filename": filename, "purpose": purpose, "status": "processed"}
        self.files[file_id] = {"object": obj, "content": content}
        return obj

    def upload(self, content_type: str, raw: bytes) -> tuple[int, dict]:
        fields = multipart_fields(content_type, raw)
        if fields is None or "file" not in fields:
            return 400, {"error": {"message": "expected multipart/form-data with a 'file' field"}}
        if fields.get("purpose") != b"batch":
            return 400, {"error": {"message": "purpose must be 'batch'"}}
        with self.server.lock:
            self.uploaded += 1
            return 200, self._new_file(fields["file"], "batch_input.jsonl", "batch")

    def create(self, request) -> tuple[int, dict]:
        if not isinstance(request, dict):
            return 400, {"error": {"message": "expected a JSON object"}}
        if request.get("endpoint") != _BATCH_ENDPOINT:
            return 400, {"error": {"message": f"endpoint must be {_BATCH_ENDPOINT}"}}
        if request.get("completion_window") != "24h":
            return 400, {"error": {"message": "completion_window must be '24h'"}}
        with self.server.lock:
            file = self.files.get(request.get("input_file_id"))
            if file is None or file["object"]["purpose"] != "batch":
                return 404, {"error": {"message": "no such input file"}}
            index = self.created
            self.created += 1
            now = int(time.time())
            batch_id = "batch_" + hashlib.sha256(f"{time.time_ns()}{index}".encode()).hexdigest()[:24]
            job = {"id": batch_id, "object": "batch", "endpoint": _BATCH_ENDPOINT, "errors": None,
                   "input_file_id": file["object"]["id"], "completion_window": "24h", "status": "validating",
                   "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                   "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
                   "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                   "request_counts": {"total": 0, "completed": 0, "failed": 0},
                   "metadata": request.get("metadata")}
            self.jobs[batch_id] = job
            threading.Thread(target=self._run, args=(job, index, file["content"]), daemon=True).start()
            return 200, dict(job)

    def get(self, batch_id: str) -> tuple[int, dict]:
        with self.server.lock:
            job = self.jobs.get(batch_id)
            return (200, json.loads(json.dumps(job))) if job else (404, {"error": {"message": "no such batch"}})

    def listing(self, query: dict) -> tuple[int, dict]:
        with self.server.lock:
            jobs = list(reversed(list(self.jobs.values())))
            after = query.get("after", [None])[0]
            if after in self.jobs:
                jobs = jobs[[j["id"] for j in jobs].index(after) + 1:]
            limit = max(1, min(100, int(query.get("limit", ["20"])[0])))
            page = json.loads(json.dumps(jobs[:limit]))
        return 200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                     "last_id": page[-1]["id"] if page else None, "has_more": len(jobs) > limit}

    def cancel(self, batch_id: str) -> tuple[int, dict]:
        with self.server.lock:
            job = self.jobs.get(batch_id)
            if job is None:
                return 404, {"error": {"message": "no such batch"}}
            if job["status"] not in ("validating", "in_progress", "finalizing"):
                return 400, {"error": {"message": f"cannot cancel a batch with status '{job['status']}'"}}
            job["status"], job["cancelling_at"] = "cancelling", int(time.time())
            return 200, dict(job)

    def content(self, file_id: str) -> bytes | None:
        with self.server.lock:
            file = self.files.get(file_id)
            return file["content"] if file else None

    def _set(self, job: dict, **fields) -> bool:
        """Updates the job unless it is being cancelled; False when it is."""
        with self.server.lock:
            if job["status"] == "cancelling":
                return False
            job.update(fields)
            return True

    @staticmethod
    def _validate(content: bytes) -> tuple[list[dict], list[dict]]:
        """(lines, errors) of an input file."""
        lines, errors, ids, models = [], [], set(), set()
        for k, text in enumerate(content.decode("utf-8", errors="replace").splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                errors.append({"code": "invalid_json_line", "message": "the line is not valid JSON", "line": k})
                continue
            body = line.get("body") if isinstance(line, dict) else None
            if not isinstance(body, dict) or not isinstance(line.get("custom_id"), str) \
                    or line.get("method") != "POST" or line.get("url") != _BATCH_ENDPOINT:
                errors.append({"code": "invalid_request", "message": "each line needs custom_id, method POST, "
                               f"url {_BATCH_ENDPOINT} and a body object", "line": k})
            elif line["custom_id"] in ids:
                errors.append({"code": "duplicate_custom_id", "message": "custom_id is not unique", "line": k})
            else:
                ids.add(line["custom_id"])
                models.add(body.get("model"))
                lines.append(line)
        if len(models) > 1:
            errors.append({"code": "mismatched_model", "message": "a batch holds one model", "line": None})
        if not lines and not errors:
            errors.append({"code": "empty_file", "message": "the input file has no requests", "line": None})
        return lines, errors

    def _run(self, job: dict, index: int, content: bytes) -> None:
        server, faults = self.server, self.server.faults
        latency = float(faults.get("batch_latency", 0.2))
        time.sleep(latency * 0.2)
        lines, errors = self._validate(content)
        if index < faults.get("batch_fail", 0):
            errors = [{"code": "invalid_request", "message": "injected batch failure (batch_fail)", "line": 1}]
        if errors:
            self._set(job, status="failed", failed_at=int(time.time()),
                      errors={"object": "list", "data": [{"param": None, **e} for e in errors]})
            return
        if not self._set(job, status="in_progress", in_progress_at=int(time.time()),
                         request_counts={"total": len(lines), "completed": 0, "failed": 0}):
            return self._finish(job, [], [], "cancelled")
        expire = index < faults.get("batch_expire", 0)
        stop = int(len(lines) * faults.get("batch_expire_share", 0.5)) if expire else len(lines)
        out, err, status = [], [], "completed"
        for k, line in enumerate(lines):
            if k >= stop:
                status = "expired"
                err += [{"id": f"batch_req_{index}_{j}", "custom_id": rest["custom_id"], "response": None,
                         "error": {"code": "batch_expired", "message": "This request could not be executed before "
                                   "the completion window expired."}} for j, rest in enumerate(lines[k:], k)]
                break
            time.sleep(latency * 0.6 / len(lines))
            with server.lock:
                seen = self.lines_seen.get(line["custom_id"], 0)
                self.lines_seen[line["custom_id"]] = seen + 1
            code, reply = chat_answer(server, line["body"], json.dumps(line["body"]).encode())
            if code == 200 and not seen and _chosen(line["custom_id"], faults.get("batch_line_errors", 0)):
                code, reply = 500, _BATCH_LINE_ERROR
            (out if code == 200 else err).append(
                {"id": f"batch_req_{index}_{k}", "custom_id": line["custom_id"],
                 "response": {"status_code": code, "request_id": f"req_{index}_{k}", "body": reply}, "error": None})
            with server.lock:
                job["request_counts"]["completed" if code == 200 else "failed"] += 1
                if job["status"] == "cancelling":
                    status = "cancelled"
                    break
        if status == "completed" and not self._set(job, status="finalizing", finalizing_at=int(time.time())):
            status = "cancelled"
        time.sleep(latency * 0.2)
        self._finish(job, out, err, status)

    def _finish(self, job: dict, out: list, err: list, status: str) -> None:
        with self.server.lock:
            for lines, field in ((out, "output_file_id"), (err, "error_file_id")):
                if lines:
                    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
                    job[field] = self._new_file(content, f"{job['id']}_{field[:-8]}.jsonl", "batch_output")["id"]
            job["status"] = status
            job[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]] = \
                int(time.time())
