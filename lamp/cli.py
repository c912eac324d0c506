"""Command line: ``lamp run CONFIG``, ``lamp plan CONFIG``, ``lamp config CONFIG``, ``lamp export-scores CONFIG``,
``lamp info``, ``lamp datasets``."""
from __future__ import annotations

import argparse
import sqlite3
import sys
import warnings

from lamp import __version__


def _cmd_datasets(args) -> int:
    from lamp import datasets

    for name in datasets.available():
        print(f"{name:24s} {datasets.ATTRIBUTION[name]}")
    return 0


def _cmd_info(args) -> int:
    from lamp import config as lamp_config
    from lamp import datasets

    if args.target.endswith((".yaml", ".yml")):
        cfg = lamp_config.load(args.target, args.experiment)
        store = cfg.load_data()
    else:
        loaders = {"icews14": datasets.load_icews14, "gdelt_sample": datasets.load_gdelt_sample,
                   "amazon_reviews_sample": datasets.load_amazon_sample}
        if args.target not in loaders:
            print(f"lamp info: unknown data set {args.target!r}; bundled: {sorted(loaders)}", file=sys.stderr)
            return 2
        store = loaders[args.target]()
    print(store.summary())
    return 0


def _load(args):
    """The config (``--set`` applied) and ``--limit`` as an integer (or None), ``--limit`` and ``--out``
    checked before anything is read: every problem of the arguments and the config in one ConfigError."""
    import os
    import re

    from lamp import config as lamp_config
    from lamp.errors import ConfigError

    problems, limit = [], None
    if args.limit is not None:
        text = args.limit.strip()
        if not re.fullmatch(r"[0-9]{1,18}", text) or int(text) < 1:  # ASCII digits only, as every number lamp reads
            problems.append(f"--limit {args.limit!r}: must be a positive integer (the number of test queries)")
        else:
            limit = int(text)
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        problems.append(f"--out {args.out}: is an existing file; give a run directory (created when missing)")
    try:
        cfg = lamp_config.load(args.config, args.experiment, overrides=args.set)
    except ConfigError as exc:
        raise ConfigError("\n".join(problems + [str(exc)])) from None
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg, limit


def _cmd_run(args) -> int:
    from lamp import study

    cfg, limit = _load(args)
    if study.is_study(cfg):
        if limit is not None:
            from lamp.errors import ConfigError

            raise ConfigError(f"--limit: experiment {cfg.experiment_id!r} is a study; its runs set their own "
                              "query_limit (change it with --set on the run, or in the config's study.runs)")
        study.run_study(cfg, out=args.out, resume=not args.fresh, wait=not args.no_wait)
        return 0
    from lamp.pipeline import Pipeline

    pipeline = Pipeline(cfg, out=args.out, limit=limit, resume=not args.fresh, wait=not args.no_wait)
    pipeline.run()
    return 0


def _cmd_config(args) -> int:
    import yaml

    from lamp import config as lamp_config

    if args.reference:
        from lamp.config.reference import reference_markdown

        print(reference_markdown())
        return 0
    if args.config is None:
        from lamp.errors import ConfigError

        raise ConfigError("lamp config: give a CONFIG file (or --reference for the reference of every key)")
    cfg = lamp_config.load(args.config, args.experiment, overrides=args.set)
    print(yaml.safe_dump(cfg.resolved(), sort_keys=False, default_flow_style=False), end="")
    return 0


def _cmd_plan(args) -> int:
    from lamp import study
    from lamp.pipeline import Pipeline

    cfg, limit = _load(args)
    if study.is_study(cfg):
        study.plan_study(cfg, out=args.out, wait=not args.no_wait)
        return 0
    Pipeline(cfg, out=args.out, limit=limit, wait=not args.no_wait).plan()
    return 0


def _cmd_export_scores(args) -> int:
    from lamp import config as lamp_config
    from lamp.errors import ConfigError
    from lamp.export import export_scores

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    top_k = None
    if args.top_k is not None:
        if not args.top_k.strip().isdigit() or not args.top_k.strip().isascii() or int(args.top_k) < 1:
            raise ConfigError(f"--top-k {args.top_k!r}: must be a positive integer")
        top_k = int(args.top_k)
    cfg = lamp_config.load(args.config, args.experiment, overrides=args.set)
    export_scores(cfg, out=args.out, fmt=args.format, splits=splits, top_k=top_k,
                  both_directions=args.both_directions, say=lambda m: print(f"[lamp] {m}", flush=True))
    return 0


def _add_no_wait(parser) -> None:
    parser.add_argument("--no-wait", action="store_true",
                        help="when another lamp process is running in the same run directory, stop at once (exit 2, "
                             "naming its PID) instead of waiting for it")


def _add_set(parser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. --set lamp.num_candidates=10 --set lamp.abduction.backend=none "
                             "(values are YAML; unknown keys are errors)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamp", description="LLM-assisted event prediction (LAMP) with a C core.")
    parser.add_argument("--version", action="version", version=f"lamp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the LAMP pipeline of a config")
    run.add_argument("config", help="YAML config (EasyTPP layout with a lamp experiment block)")
    run.add_argument("--experiment", help="experiment block to run (default: the only lamp block)")
    run.add_argument("--limit", metavar="N", help="evaluate N test queries (a seeded random subset; N >= 1)")
    run.add_argument("--out", help="run directory (default: lamp.run_dir/<experiment>)")
    run.add_argument("--resume", action="store_true",
                     help="reuse the finished stages of an earlier run in the same directory (the default)")
    run.add_argument("--fresh", action="store_true",
                     help="recompute every stage (the LLM cache still answers requests it has seen)")
    _add_no_wait(run)
    _add_set(run)
    run.set_defaults(func=_cmd_run)

    plan = sub.add_parser("plan", help="print what abduction will ask, cost and take, without calling the LLM")
    plan.add_argument("config", help="YAML config")
    plan.add_argument("--experiment", help="experiment block (default: the only lamp block)")
    plan.add_argument("--limit", metavar="N", help="evaluate N test queries (as lamp run --limit)")
    plan.add_argument("--out", help="run directory (default: lamp.run_dir/<experiment>); its finished stages are reused")
    _add_no_wait(plan)
    _add_set(plan)
    plan.set_defaults(func=_cmd_plan)

    conf = sub.add_parser("config", help="print the resolved config of an experiment (defaults, file, --set), or "
                                         "with --reference every key with its default, choices and meaning")
    conf.add_argument("config", nargs="?", help="YAML config")
    conf.add_argument("--reference", action="store_true",
                      help="print the reference of every lamp key (generated from the schema; docs/configuration.md)")
    conf.add_argument("--experiment", help="experiment block (default: the only lamp block)")
    _add_set(conf)
    conf.set_defaults(func=_cmd_config)

    exp = sub.add_parser("export-scores", help="write the scores of a config's proposer (kg_hawkes, recurrency) "
                                               "for its queries, for proposer: {model: scores, path: FILE}")
    exp.add_argument("config", help="YAML config")
    exp.add_argument("--experiment", help="experiment block (default: the only lamp block)")
    exp.add_argument("--out", help="the score file (default: <proposer>_scores.<format> here)")
    exp.add_argument("--format", choices=("npz", "npy", "pkl"),
                     help="npz (lamp's), npy (with FILE.queries.txt) or pkl (Gastinger et al.'s evaluation dict); "
                          "default: the extension of --out, else npz")
    exp.add_argument("--splits", default="train,valid,test",
                     help="the splits whose queries (as lamp run selects them) are written (default: all three)")
    exp.add_argument("--top-k", metavar="K", help="npz only: write the top K candidates of each query, not all")
    exp.add_argument("--both-directions", action="store_true",
                     help="object task: add each query's inverse (subject) query, as the community evaluation asks")
    _add_set(exp)
    exp.set_defaults(func=_cmd_export_scores)

    info = sub.add_parser("info", help="summarise a bundled data set or the data of a config")
    info.add_argument("target", help="icews14 | gdelt_sample | amazon_reviews_sample | CONFIG.yaml")
    info.add_argument("--experiment")
    info.set_defaults(func=_cmd_info)

    ds = sub.add_parser("datasets", help="list the bundled data sets")
    ds.set_defaults(func=_cmd_datasets)
    return parser


def _error_lines(exc: BaseException) -> list[str]:
    """What ``lamp: error:`` says: a lamp error's own lines; for a file-system, SQLite or memory failure no lamp
    code named, one line with the path and the problem."""
    from lamp.errors import LampError

    if isinstance(exc, LampError):
        return str(exc).splitlines() or [type(exc).__name__]
    if isinstance(exc, MemoryError):
        return [f"out of memory{': ' + str(exc) if str(exc) else ''} (use a smaller data set, --limit, or a machine "
                "with more memory; finished stages are kept)"]
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        from lamp.errors import storage_error

        return [str(storage_error(exc, exc.filename, "cannot read or write it"))]
    return [" ".join(str(exc).split()) or type(exc).__name__]


def _format_warning(message, category, filename, lineno, line=None) -> str:
    if issubclass(category, (UserWarning, RuntimeWarning)):
        return f"lamp: warning: {message}\n"
    return _default_formatwarning(message, category, filename, lineno, line)


_default_formatwarning = warnings.formatwarning


def main(argv=None) -> int:
    from lamp.errors import LampError

    args = build_parser().parse_args(argv)
    formatwarning = warnings.formatwarning
    warnings.formatwarning = _format_warning  # lamp's own warnings as one line each, not a source excerpt
    try:
        return args.func(args)
    except (LampError, OSError, sqlite3.Error, MemoryError) as exc:
        for line in _error_lines(exc):  # a ConfigError: one line per problem
            print(f"lamp: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lamp: interrupted; finished stages and every LLM answer received are kept (rerun to resume)",
              file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = formatwarning
