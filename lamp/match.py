"""Former home of BM25 and dense retrieval, now :mod:`lamp.retrieval` (this import path keeps working)."""
from lamp.retrieval import ENGLISH_STOP_WORDS, BM25Index, DenseIndex, assemble_evidence

__all__ = ["BM25Index", "DenseIndex", "assemble_evidence", "ENGLISH_STOP_WORDS"]
