"""The markdown table of docs/ranker.md from the ranker study's recorded metrics.

    python scripts/study_table.py [STUDY_DIR]     (default runs/study, as written by scripts/ranker_study.sh)
"""
import json
import os
import sys

RUNS = [
    ("oracle_icews14", "ICEWS14 object, kg_hawkes, M = 10, oracle abducer (a ceiling), 1000 train / 300 test"),
    ("nollm_icews14_kg", "ICEWS14 object, kg_hawkes, M = 20, no LLM, 4000 train / 3000 test"),
    ("nollm_icews14_recurrency", "ICEWS14 object, recurrency, M = 20, no LLM, 4000 train / 3000 test"),
    ("nollm_gdelt_kg", "GDELT sample object, kg_hawkes, M = 20, no LLM, 4000 train / all 2786 test"),
    ("actors_no_llm", "ICEWS14 actors next_type, hawkes, M = 5, no LLM, 4000 train / all test"),
    ("actors_oracle", "ICEWS14 actors next_type, hawkes, M = 5, oracle abducer (a ceiling)"),
]


def main(folder: str) -> int:
    print("| run | method | MR | MRR | n | MR vs base (95% CI) | test order (validation MR ranker / proposer, p) |")
    print("|---|---|---|---|---|---|---|")
    for name, what in RUNS:
        path = os.path.join(folder, name, "metrics.json")
        if not os.path.exists(path):
            print(f"| {what} | (not run) | | | | | |")
            continue
        with open(path, encoding="utf-8") as f:
            task, methods = next(iter(json.load(f).items()))
        for method, m in methods.items():
            ci = m.get("vs_base")
            sel = m.get("selection")
            ci_text = f"{ci['delta_mr']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}]" if ci else ""
            sel_text = ""
            if sel and "valid_mr_ranker" in sel:
                sel_text = (f"{sel['used']} ({sel['valid_mr_ranker']:.3f} / {sel['valid_mr_proposer']:.3f}, "
                            f"p {sel['p_not_better']:.3f})")
            print(f"| {what if method == 'base' else ''} | {method} | {m['mr']:.3f} | {m['mrr']:.3f} | {m['n']} | "
                  f"{ci_text} | {sel_text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runs", "study")))
