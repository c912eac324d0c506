"""The results of docs/proposer.md: lamp's knowledge-graph proposers on the whole ICEWS14 test split.

    python scripts/proposer_results.py [OUT]      (OUT: also write the output there, e.g.
                                                   docs/recorded/proposer_results.txt)

Object queries in both directions (time-aware filtered ranks over all entities, the truth in the top
20), and the pair task (subject, ?, ?, time) over all relation x object pairs (the truth in the top
100).  Speed is measured by ``benchmarks/bench_kg.py``.  ``tests/test_docs_numbers.py`` checks the
page against the recorded output.
"""
import datetime
import subprocess
import sys

import lamp.datasets
from lamp.tpp import KGHawkes, RecurrencyBaseline


def _row(name, metrics, cover):
    return (f"| {name} | {metrics['mrr']:.3f} | {metrics['hits@1']:.3f} | {metrics['hits@3']:.3f} | "
            f"{metrics['hits@10']:.3f} | {100 * metrics[cover]:.1f}% |")


def main() -> int:
    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except OSError:
        commit = "?"
    say(f"# python scripts/proposer_results.py  ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}, "
        f"commit {commit or '?'})")
    store = lamp.datasets.load_icews14()
    kg = KGHawkes().fit(store)
    kg_metrics = kg.evaluate(store, m=20)
    rec_metrics = RecurrencyBaseline().fit(store).evaluate(store, m=20)
    queries = kg_metrics["n"]
    say(f"object queries in both directions: {queries:,} over all {store.num_entities:,} candidates; "
        f"KGHawkes half-lives chosen on valid: {', '.join(f'{h:g}' for h in kg.half_lives)}")
    say()
    say("| model | MRR | Hits@1 | Hits@3 | Hits@10 | truth in top 20 |")
    say("|---|---|---|---|---|---|")
    say(_row("`RecurrencyBaseline` (most frequent/recent triple)", rec_metrics, "coverage@20"))
    say(_row(f"`KGHawkes` (half-lives {', '.join(f'{h:g}' for h in kg.half_lives)} days, chosen on valid)",
             kg_metrics, "coverage@20"))
    say()
    pm = kg.evaluate(store, task="pair", m=100)  # the object task's intensity over (relation, object) pairs
    say(f"pair task (s, ?, ?, t), {pm['n']} test queries, "
        f"{store.num_relations * store.num_entities:,} (relation, object) pairs, M = 100: "
        f"MRR {pm['mrr']:.3f}, Hits@1/3/10 {pm['hits@1']:.3f} / {pm['hits@3']:.3f} / {pm['hits@10']:.3f}, "
        f"truth in the top 100 for {100 * pm['coverage@100']:.1f}% of queries")
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
