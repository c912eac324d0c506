"""Strict reading of data files, shared by every loader.

- :func:`read_text`: a file (gzipped when it ends in ``.gz``) as UTF-8 text lines; a leading BOM
  is dropped; undecodable bytes, a corrupt or truncated gzip stream, or a file too big for memory
  raise :class:`DataError` naming the file (and the line of a bad byte).
- :func:`parse_int` / :func:`parse_time`: the one number rule for text -- ASCII decimal digits, an
  optional sign, for times an optional fraction and exponent; no ``_``, no spaces, no non-ASCII
  digits, no ``nan``/``inf``.
- :func:`as_int` / :func:`as_time`: the same checks for values that are already numbers (JSON,
  pickles): ``bool`` is not a number, a string is read by the text rule only where allowed.
- Every time is finite and ``|t| < 2**62`` (:data:`MAX_TIME`), so the int64 event clock holds it.
- :func:`load_json`: JSON with its errors (syntax, nesting too deep, integers too long, memory)
  turned into :class:`DataError`.
- :func:`load_pickle`: EasyTPP pickles through a restricted unpickler that builds only builtin
  containers and scalars and NumPy arrays, dtypes and scalars; anything else is refused.
"""
from __future__ import annotations

import gzip
import io
import json
import math
import os
import pickle
import re
import reprlib
import zlib
from typing import Any

import numpy as np

from lamp.errors import DataError

__all__ = ["MAX_TIME", "read_text", "parse_int", "parse_time", "as_int", "as_time", "check_time", "load_json",
           "load_pickle", "PICKLE_ALLOWED"]

#: Times must satisfy ``|t| < MAX_TIME`` (the int64 event clock holds them with room to spare).
MAX_TIME = 2.0 ** 62

_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = {"nan", "inf", "infinity"}
_MAX_INT_DIGITS = 19  # longer than any int64


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 40, 40  # a value nested 100,000 deep prints as [[[...]]]


def _short(value: Any, limit: int = 40) -> str:
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int too long to print
        return f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else "<unprintable>"
    except RecursionError:
        return f"<a {type(value).__name__} nested too deep to print>"
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------
# text files


def read_text(path: str) -> list[str]:
    """The lines of a UTF-8 text file (``.gz``: gzipped), without line ends; a leading BOM is dropped.  Memory
    running out at any step is a :class:`DataError` naming the file and its size."""
    try:
        return _read_text(path)
    except MemoryError:
        raise DataError(f"is too big to read into memory ({file_size(path):,} bytes on disk)", path=path) from None


def _read_text(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"cannot be read ({exc.strerror or exc})", path=path) from None
    if str(path).lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            raise DataError(f"is not a readable gzip file ({type(exc).__name__}: {exc})", path=path) from None
        except MemoryError:
            raise DataError("decompresses to more than fits in memory", path=path) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} ({exc.reason})",
                        path=path, line=line) from None
    if "\r" in text:  # universal newlines, as text mode reads them
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# --------------------------------------------------------------------------
# numbers


def parse_int(text: str, what: str, path: str | None = None, line: int | None = None,
              sequence: int | None = None) -> int:
    """An integer written in ASCII decimal digits with an optional sign (``"1_000"``, ``"١٢"`` and ``"1e3"``
    are errors)."""
    if not isinstance(text, str) or not _INT_RE.fullmatch(text):
        raise DataError(f"{what} {_short(text)} is not an integer (ASCII digits with an optional sign)",
                        path=path, line=line, sequence=sequence)
    if len(text.lstrip("+-")) > _MAX_INT_DIGITS:
        raise DataError(f"{what} {_short(text)} is out of range", path=path, line=line, sequence=sequence)
    return int(text)


def parse_time(text: str, what: str, path: str | None = None, line: int | None = None,
               sequence: int | None = None) -> float:
    """A time written as an ASCII decimal number (sign, digits, optional fraction and exponent), finite,
    with ``|t| < 2**62``."""
    if isinstance(text, str) and text.lstrip("+-").lower() in _NON_FINITE:
        raise DataError(f"{what} {_short(text)} is not finite", path=path, line=line, sequence=sequence)
    if not isinstance(text, str) or not _FLOAT_RE.fullmatch(text):
        raise DataError(f"{what} {_short(text)} is not a number (ASCII decimal digits, optional sign, "
                        "fraction and exponent)", path=path, line=line, sequence=sequence)
    return check_time(float(text), what, path, line, sequence)


def check_time(t: float, what: str, path: str | None = None, line: int | None = None,
               sequence: int | None = None) -> float:
    """``t`` itself when finite and ``|t| < 2**62``; DataError otherwise."""
    if not math.isfinite(t):
        raise DataError(f"{what} {t!r} is not finite", path=path, line=line, sequence=sequence)
    if not -MAX_TIME < t < MAX_TIME:
        raise DataError(f"{what} {t:g} is out of range (|t| must be below 2**62)", path=path, line=line,
                        sequence=sequence)
    return t


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def as_time(value: Any, what: str, path: str | None = None, line: int | None = None, sequence: int | None = None,
            *, strings: bool = False) -> float:
    """A number (not a bool; a string only when ``strings`` and by the text rule) as a checked time."""
    if strings and isinstance(value, str):
        return parse_time(value, what, path, line, sequence)
    if not _is_real(value):
        raise DataError(f"{what} must be a number, got {type(value).__name__} {_short(value)}", path=path,
                        line=line, sequence=sequence)
    try:
        t = float(value)
    except OverflowError:
        raise DataError(f"{what} is out of range (|t| must be below 2**62)", path=path, line=line,
                        sequence=sequence) from None
    return check_time(t, what, path, line, sequence)


def as_int(value: Any, what: str, path: str | None = None, line: int | None = None, sequence: int | None = None,
           *, strings: bool = False, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (an int, or a float with an integer value; not a bool) in ``[lo, hi)`` when given."""
    if strings and isinstance(value, str):
        i = parse_int(value, what, path, line, sequence)
    elif isinstance(value, (float, np.floating)) and _is_real(value):
        if not math.isfinite(value) or not float(value).is_integer():
            raise DataError(f"{what} must hold integers, got {_short(value)}", path=path, line=line,
                            sequence=sequence)
        i = int(value)
    elif _is_real(value):
        i = int(value)
    else:
        raise DataError(f"{what} must hold integers, got {type(value).__name__} {_short(value)}", path=path,
                        line=line, sequence=sequence)
    if (lo is not None and i < lo) or (hi is not None and i >= hi):
        bounds = f"[{'' if lo is None else lo}, {'' if hi is None else hi})"
        raise DataError(f"{what} {_short(i)} is outside {bounds}", path=path, line=line, sequence=sequence)
    return i


# --------------------------------------------------------------------------
# JSON


def load_json(text: str, path: str, line: int | None = None) -> Any:
    """``json.loads`` with every failure as a DataError naming the file (and the line)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = line if line is not None else exc.lineno
        raise DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", path=path, line=where) from None
    except RecursionError:
        raise DataError("invalid JSON: nested too deeply", path=path, line=line) from None
    except MemoryError:
        raise DataError("invalid JSON: too big for memory", path=path, line=line) from None
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        raise DataError(f"invalid JSON: {exc}", path=path, line=line) from None


# --------------------------------------------------------------------------
# pickles


def _multiarray():
    try:
        from numpy._core import multiarray
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray
    return multiarray


class _NDArrayName:
    """What ``numpy.ndarray`` means inside a pickle: only an argument of ``_reconstruct`` (it cannot be
    instantiated by a NEWOBJ opcode with a shape of the pickle's choosing)."""


def _reconstruct(subtype, shape, dtype):
    if subtype is not _NDArrayName:
        raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
    return _multiarray()._reconstruct(np.ndarray, (0,), dtype)


def _frombuffer(buf, dtype, shape, order):
    # protocol-5 pickles of contiguous arrays (numpy._core.numeric._frombuffer)
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("_frombuffer of an object dtype")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


def _scalar(dtype, *args):
    return _multiarray().scalar(dtype, *args)


def _latin1_encode(text, encoding="latin1", errors="strict"):
    # protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, 'latin1')
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1", errors)


_BUILTINS = {"dict": dict, "list": list, "tuple": tuple, "set": set, "frozenset": frozenset}
_NUMPY = {("numpy", "ndarray"): _NDArrayName, ("numpy", "dtype"): np.dtype,
          ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
          ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
          ("numpy.core.numeric", "_frombuffer"): _frombuffer, ("numpy._core.numeric", "_frombuffer"): _frombuffer,
          ("numpy.core.multiarray", "scalar"): _scalar, ("numpy._core.multiarray", "scalar"): _scalar,
          ("_codecs", "encode"): _latin1_encode, ("collections", "OrderedDict"): dict}

#: The globals an EasyTPP pickle may name (module, name); every other one is refused.
PICKLE_ALLOWED = frozenset([(m, n) for m in ("builtins", "__builtin__") for n in _BUILTINS] + list(_NUMPY))


class _Refused(Exception):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.what = f"{module}.{name}"


class _RestrictedUnpickler(pickle._Unpickler):
    """The Python implementation of ``pickle.Unpickler`` with a whitelist.  Not the C one: its memo is an
    array that a 20-byte pickle can make it grow to gigabytes (``LONG_BINPUT 1000000000``); this one's is a
    dict.  It reads about 150,000 EasyTPP events a second."""

    def find_class(self, module, name):
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return _BUILTINS[name]
        if (module, name) in _NUMPY:
            return _NUMPY[(module, name)]
        raise _Refused(module, name)

    def persistent_load(self, pid):
        raise _Refused("persistent id", _short(pid))


def load_pickle(path: str) -> Any:
    """Unpickle ``path`` once, allowing only :data:`PICKLE_ALLOWED` (Python 2 ``str`` read as Latin-1)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"cannot be read ({exc.strerror or exc})", path=path) from None
    except MemoryError:
        raise DataError(f"is too big to read into memory ({file_size(path):,} bytes on disk)", path=path) from None
    try:
        return _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _Refused as exc:
        raise DataError(f"refusing to load this pickle: it asks for {exc.what}; lamp loads only builtin containers "
                        "and scalars and NumPy arrays, dtypes and scalars from a pickle (loading anything else "
                        "could run code); convert the file to EasyTPP JSON", path=path) from None
    except RecursionError:
        raise DataError("not a readable pickle (nested too deeply)", path=path) from None
    except MemoryError:
        raise DataError("not a readable pickle (too big for memory)", path=path) from None
    except Exception as exc:  # the unpickler raises many types on garbage input
        raise DataError(f"not a readable pickle ({type(exc).__name__}: {str(exc)[:120]})",
                        path=path) from None


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
