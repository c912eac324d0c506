"""EasyTPP-compatible padded batches from an :class:`~lamp.data.EventSequences`.

The output has EasyTPP's batch contract (``time_seqs``, ``time_delta_seqs``,
``type_seqs``, ``seq_non_pad_mask``, ``attention_mask``) and matches
``easy_tpp.preprocess.EventTokenizer.pad`` on the same input, with one
deliberate difference: with ``padding_side="left"`` EasyTPP marks the *first*
``seq_len`` positions of ``seq_non_pad_mask`` as real events, which are
padding there; lamp marks the real events.  And with ``padding_strategy=
"longest"`` plus truncation, EasyTPP pads to the longest sequence measured
*before* truncation (extra columns that are all padding); lamp pads to the
longest truncated sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lamp.data import EventSequences

__all__ = ["BatchBuilder", "build_batch"]

_PADDING = {"longest", "max_length"}
_SIDES = {"left", "right"}


@dataclass(frozen=True)
class BatchBuilder:
    """Pads and truncates sequences into EasyTPP batches.

    Parameters
    ----------
    num_event_types : int
        ``K``; real types are ``0..K-1``.
    pad_token_id : int
        Value used to pad times, time deltas and types.  Must not be a real
        type (EasyTPP's attention mask treats every type equal to it as
        padding); EasyTPP's convention is ``K``.
    padding_side, truncation_side : {"right", "left"}
    padding_strategy : {"longest", "max_length"}
        Pad to the longest sequence of the batch, or to ``max_len``.
    max_len : int, optional
        Required by ``padding_strategy="max_length"`` and by truncation.
    truncation : bool
        Cut sequences longer than ``max_len`` (from ``truncation_side``).
    """

    num_event_types: int
    pad_token_id: int
    padding_side: str = "right"
    truncation_side: str = "right"
    padding_strategy: str = "longest"
    max_len: int | None = None
    truncation: bool = False

    def __post_init__(self):
        k, pad = self.num_event_types, self.pad_token_id
        if not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"num_event_types must be a positive integer, got {k!r}")
        if not isinstance(pad, (int, np.integer)) or isinstance(pad, bool):
            raise TypeError(f"pad_token_id must be an integer, got {pad!r}")
        if 0 <= pad < k:
            raise ValueError(f"pad_token_id={pad} is a real event type (types are 0..{k - 1}); "
                             f"padding would be indistinguishable from events. Use {k} (EasyTPP's convention)")
        for name in ("padding_side", "truncation_side"):
            if getattr(self, name) not in _SIDES:
                raise ValueError(f"{name} must be 'left' or 'right', got {getattr(self, name)!r}")
        if self.padding_strategy not in _PADDING:
            raise ValueError(f"padding_strategy must be one of {sorted(_PADDING)}, got {self.padding_strategy!r}")
        if (self.padding_strategy == "max_length" or self.truncation) and self.max_len is None:
            raise ValueError("max_len is required with padding_strategy='max_length' or truncation=True")
        if self.max_len is not None and (not isinstance(self.max_len, (int, np.integer)) or self.max_len <= 0):
            raise ValueError(f"max_len must be a positive integer, got {self.max_len!r}")

    @classmethod
    def from_data_specs(cls, specs: dict) -> "BatchBuilder":
        """Build from an EasyTPP ``data_specs`` mapping."""
        truncation = specs.get("truncation_strategy") not in (None, False, "do_not_truncate")
        padding = specs.get("padding_strategy") or "longest"
        if padding is True:
            padding = "longest"
        return cls(num_event_types=specs["num_event_types"], pad_token_id=specs["pad_token_id"],
                   padding_side=specs.get("padding_side") or "right",
                   truncation_side=specs.get("truncation_side") or "right",
                   padding_strategy=padding, max_len=specs.get("max_len"), truncation=truncation)

    def __call__(self, data: EventSequences, indices: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Batch the sequences ``indices`` of ``data`` (all of them by default)."""
        if not isinstance(data, EventSequences):
            raise TypeError(f"data must be EventSequences, got {type(data).__name__}")
        if data.num_types > self.num_event_types:
            raise ValueError(f"data has {data.num_types} event types but the batch builder has "
                             f"num_event_types={self.num_event_types}")
        idx = np.arange(data.num_sequences) if indices is None else np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or len(idx) == 0:
            raise ValueError("indices must be a non-empty one-dimensional list of sequence indices")
        if idx.min() < -data.num_sequences or idx.max() >= data.num_sequences:
            raise IndexError(f"indices must be in [0, {data.num_sequences}), got {idx.min()}..{idx.max()}")
        idx %= data.num_sequences
        deltas = data.time_deltas()
        starts, ends = data.offsets[idx].copy(), data.offsets[idx + 1].copy()
        lengths = ends - starts
        if self.truncation:
            over = lengths > self.max_len
            if self.truncation_side == "right":
                ends[over] = starts[over] + self.max_len
            else:
                starts[over] = ends[over] - self.max_len
            lengths = ends - starts
        width = int(lengths.max()) if self.padding_strategy == "longest" else int(self.max_len)
        if width < int(lengths.max()):
            raise ValueError(f"a sequence has {int(lengths.max())} events, more than max_len={width}; "
                             "enable truncation or raise max_len")
        b = len(idx)
        times = np.full((b, width), self.pad_token_id, dtype=np.float32)
        dts = np.full((b, width), self.pad_token_id, dtype=np.float32)
        types = np.full((b, width), self.pad_token_id, dtype=np.int64)
        real = np.zeros((b, width), dtype=bool)
        for row, (s, e, n) in enumerate(zip(starts, ends, lengths)):
            cols = slice(0, n) if self.padding_side == "right" else slice(width - n, width)
            times[row, cols] = data.times[s:e]
            dts[row, cols] = deltas[s:e]
            types[row, cols] = data.marks[s:e]
            real[row, cols] = True
        future = np.triu(np.ones((width, width), dtype=bool), k=1)
        attention = future[None, :, :] | (types == self.pad_token_id)[:, None, :]
        return {"time_seqs": times, "time_delta_seqs": dts, "type_seqs": types,
                "seq_non_pad_mask": real, "attention_mask": attention}


def build_batch(data: EventSequences, indices: Sequence[int] | None = None, *, pad_token_id: int | None = None,
                **options) -> dict[str, np.ndarray]:
    """One EasyTPP batch from ``data`` (see :class:`BatchBuilder` for the options).

    ``pad_token_id`` defaults to ``data.num_types`` (EasyTPP's convention).
    """
    k = options.pop("num_event_types", data.num_types)
    builder = BatchBuilder(num_event_types=k, pad_token_id=k if pad_token_id is None else pad_token_id, **options)
    return builder(data, indices)
