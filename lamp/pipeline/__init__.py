"""The LAMP pipeline end to end: propose -> abduce -> match -> rank -> evaluate.

``Pipeline.from_yaml(path).run()`` (or ``lamp run CONFIG``) loads the data,
fits or loads the proposer, proposes the top-M events for every train, valid
and test query (the true event added to the training candidates), asks the LLM
for the causes of every candidate (through the cache), retrieves the evidence,
trains the ranker on train with validation selection, reranks test, and
writes the metrics of the base order, LAMP and the ablations.

One module per stage, each imported only by the stages after it::

    tasks     Queries, task names, StageContext (settings, run directory, store, logger)
    queries   select_queries
    propose   fit_proposer, propose, proposer_quality
    abduce    effects, make_abductor, make_client, abduce (per candidate or per event type)
    plan      plan, plan_text (the cost of abduction, asking no LLM)
    match     EventWorld (TKGWorld, TypedWorld), gather_evidence
    rank      ranking_samples, rerank
    evaluate  evaluate
    core      Pipeline, run_typed

Every stage function takes a :class:`StageContext` and its inputs; both data
kinds (temporal knowledge graphs and typed sequences) run through the same
functions.  Every stage writes its output to the run directory keyed by a
fingerprint of its inputs and settings (:mod:`lamp.runs`): a rerun skips
finished stages, a config change recomputes only the stages downstream of it,
and LLM answers are kept one by one in the SQLite cache, so a killed run
resumes without re-sending a single answered request.
"""
from lamp.pipeline.core import Pipeline, load_metrics, run_typed
from lamp.pipeline.tasks import DEFAULT_M, TKG_TASKS, TYPED_TASKS, Queries, StageContext

__all__ = ["Pipeline", "Queries", "StageContext", "run_typed", "load_metrics", "DEFAULT_M", "TKG_TASKS",
           "TYPED_TASKS"]
