"""The ``evalsuite`` command line. Thin: parses arguments, calls the runner, the store and metrics.

Every option can also come from an ``EVALSUITE_<OPTION>`` environment variable (``--run-id`` from
``EVALSUITE_RUN_ID``, ``-T`` from ``EVALSUITE_TASK_ARGS`` as space-separated ``key=value`` words);
a flag on the command line wins. Nothing heavy is imported here: ``evalsuite --help`` loads neither
torch nor transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Any, Sequence

from . import __version__
from .errors import UserError
from .options import non_negative_float, positive_int

ENV_PREFIX = "EVALSUITE_"
EXIT_PARTIAL = 3
"""``run`` finished but the run is partial: requests failed or planned samples are missing."""

EPILOG = """\
examples:
  evalsuite run --tasks ruler/niah_single_1,ruler/vt --limit 5 -T length=2048   # embedded SmolLM2, offline
  evalsuite run --tasks ruler --model ./my-model --backend hf -T lengths=4096,8192 -T data_dir=RULER/json
  evalsuite run --tasks ruler/niah_single_1 --model ./my-model --backend hf -T length=8192
  evalsuite run --tasks ruler --backend openai --model my-served-model \\
      -B base_url=http://127.0.0.1:8000/v1 -B tokenizer=./my-model
  evalsuite data status longbench,ruler --json          # what each task reads, what is cached
  evalsuite data fetch longbench,ruler --to ./data-pack  # then, offline: -T data_dir=./data-pack
  evalsuite show results/<run-id> --samples --failed
  evalsuite score-file preds.jsonl --metric string_match_all
  evalsuite export results/run-a results/run-b --table samples -o samples.parquet
  evalsuite score-file pred/llama2-7b-chat-4k/ --result-json result.json         # LongBench's eval.py, faster

`evalsuite run` exit status: 0 complete; 2 usage error (nothing was run); 3 partial (requests failed or
planned samples are missing; what finished is saved and the same command resumes); 130 interrupted.
"""

RUN_EPILOG = """Without --run-id the run id is derived from what defines the run (tasks, options, backend, model,
generation parameters, --limit/--samples/--shard): running the same command again resumes it.

exit status: 0 complete; 2 usage error (nothing was run); 3 partial (requests failed or planned samples
are missing: the scores are not final; re-run the same command to retry and finish); 130 interrupted.
"""


def _kv(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    k, v = text.split("=", 1)
    if not k.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return k.strip(), v


def _argtype(check: Any, what: str) -> Any:
    """A shared validator (``evalsuite.options``) as an argparse type: "expected <what>, got '<text>'"."""
    def parse(text: str) -> Any:
        try:
            return check(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    parse.__name__ = check.__name__
    return parse


_positive_int = _argtype(positive_int, "a positive integer")
_non_negative_float = _argtype(non_negative_float, "a number >= 0")


def _env(dest: str) -> str | None:
    return os.environ.get(ENV_PREFIX + dest.upper())


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors exit 2 with one line (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"evalsuite: error: {message}\n")
        sys.exit(2)


def _add_env_defaults(p: argparse.ArgumentParser) -> None:
    """Fill option defaults from EVALSUITE_* variables and mention them in --help."""
    for action in p._actions:
        if not action.option_strings or action.dest in {"help", "version"}:
            continue
        env_name = ENV_PREFIX + action.dest.upper()
        action.help = (action.help or "") + f" [env {env_name}]"
        raw = os.environ.get(env_name)
        if raw is None:
            continue
        try:
            if isinstance(action, argparse._AppendAction):
                action.default = [action.type(w) if action.type else w for w in shlex.split(raw)]
            elif isinstance(action, (argparse._StoreTrueAction,)):
                action.default = raw.strip().lower() in {"1", "true", "yes", "on"}
            else:
                action.default = action.type(raw) if action.type else raw
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise UserError(f"{env_name}: {exc}") from None


def _add_judge_args(p: argparse.ArgumentParser) -> None:
    """The judge model for metrics that need one (see docs/judge.md)."""
    p.add_argument("--judge-backend", help="backend serving the judge model for judged metrics (hf, openai, "
                                           "replay, ...); `score` defaults to the run's recorded judge")
    p.add_argument("--judge-model", help="judge model: a local folder, a hub id or a served model name")
    p.add_argument("-J", dest="judge_args", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                   help="judge option (repeatable): max_tokens, temperature, top_p, seed, chat_template; "
                        "any other key goes to the judge backend")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="evalsuite", description="Benchmark and evaluation harness for long-context LLMs.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"evalsuite {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="run tasks through a backend and score them (the same command resumes)",
                       description="Run tasks through a generation backend, persist every generation as it "
                                   "finishes, then score. Re-running the same command (or the same --run-id) "
                                   "resumes: completed requests are never regenerated.",
                       epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--tasks", nargs="+", required=_env("tasks") is None, default=_env("tasks"),
                   help="task or group names, comma- or space-separated (see `evalsuite list tasks`)")
    r.add_argument("--model", help="model: a local folder, a hub id, or a served model name "
                                    "(default: the embedded SmolLM2-135M-Instruct); provider/model "
                                    "(openai/gpt-4o-mini, hf/org/name, vllm/...) also selects the backend")
    r.add_argument("--backend", help="backend name: hf, embedded, openai, echo, replay, gold, or a plugin's "
                                     "(default: embedded without --model, hf with one)")
    r.add_argument("--limit", type=_positive_int, help="only the first N samples of each task")
    r.add_argument("--samples", help="only these samples: comma-separated sample ids or <task>:<index>")
    r.add_argument("-T", dest="task_args", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                   help="task option (repeatable); <group>.KEY=VALUE targets a group's tasks, <task>.KEY=VALUE "
                        "one task (task > group > global)")
    r.add_argument("-B", dest="backend_args", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                   help="backend option (repeatable)")
    r.add_argument("--max-tokens", type=_positive_int, help="override every task's generation budget (recorded)")
    r.add_argument("--temperature", type=_non_negative_float,
                   help="sampling temperature for every request (0: greedy; recorded)")
    r.add_argument("--top-p", type=float, help="nucleus sampling top_p for every request (recorded)")
    r.add_argument("--seed", dest="gen_seed", type=int,
                   help="sampling seed for every request (recorded)")
    r.add_argument("--gen-kwargs", metavar="K=V,...",
                   help="generation parameters for every request, lm-eval style: temperature=0.7,top_p=0.95,"
                        "seed=1,stop=[\"\\n\"] (max_gen_toks, until, do_sample accepted; recorded)")
    r.add_argument("--run-id", help="run id (folder name under --output); default: derived from the command, "
                                    "so the same command resumes; an existing id resumes if nothing that "
                                    "changes prompts or generation differs (else exit 2)")
    r.add_argument("--output", default="results", help="results root folder (default: results)")
    r.add_argument("--log-prompts", action="store_true", help="also store full prompts (large)")
    r.add_argument("--no-progress", action="store_true",
                   help="no progress bar (without a terminal: no periodic progress lines on stderr)")
    r.add_argument("--json", action="store_true", help="print the scores as JSON instead of a table")
    r.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="data parallel: N Ray actors, each holding a warm backend, pull requests from one "
                        "queue (needs `pip install 'evalsuite[ray]'`; see docs/ray.md)")
    r.add_argument("--ray-address", metavar="ADDR",
                   help="join an existing Ray cluster (e.g. auto or ray://head:10001) instead of a local one")
    r.add_argument("--wait-lock", action="store_true",
                   help="when another process is writing this run folder, wait for it instead of exiting 2")
    r.add_argument("--shard", metavar="I/N",
                   help="generate only the I-th of N interleaved slices of every task (0-based); combine "
                        "the N shard runs with `evalsuite merge`")
    _add_judge_args(r)

    ls = sub.add_parser("list", help="list registered tasks, backends or metrics")
    ls.add_argument("what", choices=["tasks", "backends", "metrics"])
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    sc = sub.add_parser("score", help="re-score a run from its logs without generating")
    sc.add_argument("run", help="run folder (results/<run-id>) or run id")
    sc.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sc.add_argument("--wait-lock", action="store_true",
                    help="when another process is writing this run folder, wait for it instead of exiting 2")
    _add_judge_args(sc)

    sf = sub.add_parser("score-file", help="score predictions produced elsewhere (files and folders)",
                        description="Score prediction files in one process. A folder means its *.jsonl files. "
                                    "With --metric: lines carry `prediction` and `references` (plus fields the "
                                    "metric needs). With --task TASK: lines in that benchmark's official "
                                    "prediction format. With --task GROUP (longbench, longbench_e, ruler, ...) or "
                                    "neither (longbench): each file's task is the group member its name gives, "
                                    "filename.split('.')[0] as LongBench's eval.py reads pred/<model>/. One file: "
                                    "prints its JSON; several: one table (--json for JSON).")
    sf.add_argument("files", nargs="+", metavar="PATH", help="prediction files (.jsonl) or folders of them")
    g = sf.add_mutually_exclusive_group()
    g.add_argument("--metric", help="metric name (see `evalsuite list metrics`)")
    g.add_argument("--task", help="task, or group whose member each file names (default: longbench)")
    sf.add_argument("--json", action="store_true", help="print JSON (always, for a single file)")
    sf.add_argument("--result-json", metavar="FILE",
                    help="also write upstream's result.json there: {dataset: score} as eval.py writes it")

    sh = sub.add_parser("show", help="print a run's scores, or its per-sample results")
    sh.add_argument("run", help="run folder (results/<run-id>) or run id")
    sh.add_argument("--json", action="store_true", help="machine-readable summary")
    sh.add_argument("--samples", action="store_true", help="list per-sample results")
    sh.add_argument("--failed", action="store_true", help="with --samples: only samples below the maximum or errored")
    sh.add_argument("--task", help="with --samples: only this task")

    cmp_p = sub.add_parser("compare", help="paired comparison of two runs (candidate - baseline) per task and metric",
                           description="Per task and metric, the paired difference on the samples both runs "
                                       "scored, with a paired bootstrap CI, McNemar's exact test for 0/1 scores "
                                       "and a corpus-level bootstrap for corpus metrics. Refuses runs whose task "
                                       "versions, data/config hashes, metric signatures or prompts differ.")
    cmp_p.add_argument("baseline", help="baseline run folder (results/<run-id>) or run id")
    cmp_p.add_argument("candidate", help="candidate run folder or run id")
    cmp_p.add_argument("--tasks", help="comma-separated tasks to compare (default: every task both runs scored)")
    cmp_p.add_argument("--iterations", type=_positive_int, default=2000, help="bootstrap resamples (default 2000)")
    cmp_p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    cmp_p.add_argument("--alpha", type=float, default=0.05, help="CI level is 1-alpha (default 0.05)")
    cmp_p.add_argument("--allow-mismatch", action="store_true",
                       help="compare even when versions, data, metrics or prompts differ (reported as warnings)")
    cmp_p.add_argument("--json", action="store_true", help="machine-readable output")

    gt = sub.add_parser("gate", help="fail (exit 1) when a candidate run regresses significantly beyond a policy",
                        description="Compare a candidate run with a baseline under a TOML policy (per-task/metric "
                                    "tolerance, direction, minimum sample count, significance level). Exit 0: no "
                                    "significant regression beyond tolerance; 1: at least one, or a NaN/missing "
                                    "value, or a partial candidate (unless allow_partial); 2: usage error or "
                                    "nothing was gated. Prints a markdown summary; see docs/gate.md.")
    gt.add_argument("--baseline", required=True, help="baseline run folder or run id")
    gt.add_argument("--candidate", required=True, help="candidate run folder or run id")
    gt.add_argument("--policy", required=True, help="policy file (TOML)")
    gt.add_argument("--markdown", metavar="FILE", help="also write the markdown summary here "
                                                       "(e.g. $GITHUB_STEP_SUMMARY; appended)")
    gt.add_argument("--json", dest="json_out", metavar="FILE", help="write the JSON report here")
    gt.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    gt.add_argument("--allow-mismatch", action="store_true",
                    help="gate even when versions, data, metrics or prompts differ (reported as warnings)")

    lb = sub.add_parser("leaderboard", help="build the static leaderboard site")
    lb_sub = lb.add_subparsers(dest="lb_command", metavar="ACTION", parser_class=_Parser, required=True)
    lbb = lb_sub.add_parser("build", help="build a self-contained static site from result folders",
                            description="Build a static site (no CDN; works from file:// and any static host) "
                                        "from run folders or results roots holding run folders.")
    lbb.add_argument("results", nargs="+", help="run folders (results/<run-id>) or folders of runs")
    lbb.add_argument("-o", "--output", required=True,
                     help="output folder; a folder built before is brought up to date (what did not change is "
                          "reused, what is gone is removed)")
    lbb.add_argument("--title", default="evalsuite leaderboard", help="site title")
    lbb.add_argument("--prompt-preview", type=int, default=0, metavar="CHARS",
                     help="show the first CHARS characters of each prompt in the sample browser when the run "
                          "logged prompts (--log-prompts); default 0: prompts by hash only")
    lbb.add_argument("--include-partial", action="store_true",
                     help="rank partial runs too (with a badge); by default they are listed apart")
    lbb.add_argument("--include-scripted", action="store_true",
                     help="rank runs of scripted backends (echo, replay, gold) too; by default they are listed apart")
    lbb.add_argument("--jobs", type=int, default=0, metavar="N",
                     help="worker processes for the per-sample data (default 0: one per CPU, at most 8); "
                          "the output is the same for any N")

    ex = sub.add_parser("export", help="stack the scores or samples of runs into one CSV, parquet or JSONL file",
                        description="Stack one table of several runs into one file for a notebook: `scores` "
                                    "(one row per run x task x metric) or `samples` (one row per sample: "
                                    "prediction, reference, per-sample metrics, flags, error, token counts, "
                                    "metadata). The same frames come from evalsuite.load_run(path).scores() / "
                                    ".samples() in Python.")
    ex.add_argument("runs", nargs="+", help="run folders (results/<run-id>) or run ids")
    ex.add_argument("-o", "--output", required=True, help="output file")
    ex.add_argument("--format", choices=["csv", "parquet", "jsonl"],
                    help="file format (default: from the output file's suffix)")
    ex.add_argument("--table", choices=["scores", "samples"], default="scores", help="which table (default scores)")

    mg = sub.add_parser("merge", help="combine the shard runs of one evaluation (run --shard i/n) into one run",
                        description="Check that the shard runs belong together (same backend, tasks, options, "
                                    "prompts and full plan; every shard once), concatenate their logs into a new "
                                    "run and score it: the result equals the unsharded run.")
    mg.add_argument("shards", nargs="+", help="shard run folders (results/<run-id>) or run ids")
    mg.add_argument("--run-id", required=True, help="id of the merged run (a new folder under --output)")
    mg.add_argument("--output", default="results", help="results root folder (default: results)")
    mg.add_argument("--json", action="store_true", help="print the scores as JSON instead of a table")
    mg.add_argument("--wait-lock", action="store_true",
                    help="when another process is writing a shard or the merged run, wait for it instead "
                         "of exiting 2")

    dr = sub.add_parser("doctor", help="check this machine: the code sandbox (bubblewrap), the C++ compiler",
                        description="Check what evalsuite needs to run model-written code safely: the sandbox "
                                    "mechanism and its version, the C++ compiler, and an end-to-end probe "
                                    "program run in the sandbox. Exit 0: all passed; 1: a check failed.")
    dr.add_argument("--json", action="store_true", help="machine-readable output")
    dr.add_argument("--cxx", default="g++", help="C++ compiler to check (default g++)")

    dt = sub.add_parser("data", help="show or fetch the data files tasks read (pinned, verified, cached)",
                        description="Every task declares its default data: files of a Hugging Face or GitHub "
                                    "repository at a pinned commit, checked against pinned sha256 / git blob ids. "
                                    "`status` shows what is needed and what is cached (offline, no download); "
                                    "`fetch` downloads it into the cache ($EVALSUITE_CACHE/data) or, with --to "
                                    "DIR, into DIR for a machine without internet (-T data_dir=DIR there).")
    dt_sub = dt.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser, required=True)
    dts = dt_sub.add_parser("status", help="needed files per task: present or not, source, size, license")
    dtf = dt_sub.add_parser("fetch", help="download (and verify) every file the tasks need")
    for sp in (dts, dtf):
        sp.add_argument("tasks", help="comma-separated task or group names")
        sp.add_argument("-T", dest="task_args", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                        help="task options as for `run` (e.g. -T data_dir=DIR to check a fetched folder)")
        sp.add_argument("--json", action="store_true", help="machine-readable output")
    dtf.add_argument("--to", metavar="DIR", help="write into DIR (cache layout) instead of the cache, for "
                                                 "`-T data_dir=DIR` on a machine without internet")

    for sp in (r, ls, sc, sf, sh, cmp_p, gt, lbb, mg, ex, dr, dts, dtf):
        _add_env_defaults(sp)
    return p


# -- commands --------------------------------------------------------------------------------------

def _cmd_run(args: argparse.Namespace) -> int:
    from .cli_habits import generation_overrides, resolve_model_spelling, split_tasks
    from .runner import RunConfig, parse_shard, run

    model, backend, note = resolve_model_spelling(args.model, args.backend)
    if note:
        print(note, file=sys.stderr)
    overrides = generation_overrides(args.temperature, args.top_p, args.gen_seed, args.gen_kwargs)
    max_tokens = args.max_tokens
    if "max_tokens" in overrides:
        if max_tokens is not None:
            raise UserError("max_tokens given both as --max-tokens and in --gen-kwargs")
        max_tokens = overrides.pop("max_tokens")
    cfg = RunConfig(
        tasks=split_tasks(args.tasks),
        model=model, backend=backend,
        task_options=dict(args.task_args), backend_options=dict(args.backend_args),
        limit=args.limit, samples=args.samples.split(",") if args.samples else None,
        run_id=args.run_id, output=args.output, log_prompts=args.log_prompts,
        max_tokens=max_tokens, gen_overrides=overrides, progress=not args.no_progress,
        judge_backend=args.judge_backend, judge_model=args.judge_model, judge_options=dict(args.judge_args),
        command=["evalsuite", *sys.argv[1:]],
        workers=args.workers, ray_address=args.ray_address,
        shard=parse_shard(args.shard) if args.shard else None, wait_lock=args.wait_lock,
    )
    outcome = run(cfg)
    from .report import summaries_for

    summaries = summaries_for(outcome.scores)
    n_missing = sum(s.get("n_missing", 0) for s in outcome.scores.values())
    n_failed = sum(s.get("n_errors", 0) for s in outcome.scores.values())
    n_planned = sum(s.get("n_planned", 0) for s in outcome.scores.values())
    summary = {"run_id": outcome.run_id, "run_dir": outcome.run_dir, "complete": outcome.complete,
               "n_planned": n_planned, "n_missing": n_missing, "n_failed": n_failed,
               "n_generated": outcome.n_generated, "n_resumed": outcome.n_reused, "timings": outcome.timings,
               "scores": _plain(outcome.scores), "summaries": summaries}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        from .report import print_scores

        print_scores(outcome.scores, title=f"run {outcome.run_id}", summaries=summaries)
    state = "complete" if outcome.complete else "PARTIAL"
    print(f"evalsuite: run {outcome.run_id} {state}: {outcome.run_dir}  (planned {n_planned}, generated "
          f"{outcome.n_generated}, resumed {outcome.n_reused}, failed {n_failed}, missing {n_missing}; "
          f"{outcome.timings.get('total_s', 0):.1f}s)", file=sys.stderr if args.json else sys.stdout)
    if not outcome.complete:
        print("evalsuite: partial run (exit 3): re-run the same command to retry the failed requests and "
              "generate the missing ones", file=sys.stderr)
        return EXIT_PARTIAL
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from .merge import merge_shards
    from .report import print_scores

    store, scores = merge_shards(args.shards, args.output, args.run_id, wait_lock=args.wait_lock)
    if args.json:
        print(json.dumps({"run_id": store.run_id, "run_dir": str(store.dir), "scores": _plain(scores)}, indent=2))
    else:
        print_scores(scores, title=f"merged run {store.run_id}")
        missing = sum(s.get("n_missing", 0) for s in scores.values())
        print(f"results: {store.dir}" + (f"  ({missing} planned samples have no answer yet: re-run the "
                                          f"shard(s) that stopped early, then merge again)" if missing else ""))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .registry import default_registry

    reg = default_registry()
    reg.load_all()
    if args.what == "tasks":
        from .datacli import list_summary

        items = [{"name": n, "description": e.description, "data": list_summary(e.factory, n)}
                 for n, e in sorted(reg.tasks.items())]
        groups = [{"name": g, "members": m} for g, m in sorted(reg.groups.items())]
        if args.json:
            print(json.dumps({"tasks": items, "groups": groups}, indent=2))
        else:
            for it in items:
                d = it["data"]
                state = ("manual step" if d["manual"] else "available" if d["available"]
                         else "not cached: downloads on first run (evalsuite data fetch)")
                print(f"{it['name']:40s} {it['description']}\n{'':40s}   data: {d['source']} [{state}]")
            for gr in groups:
                print(f"{gr['name']:40s} group: {', '.join(gr['members'])}")
    else:
        table = reg.backends if args.what == "backends" else reg.metrics
        items = [{"name": n, "target": _target(f), "description": _summary_line(f)} for n, f in sorted(table.items())]
        if args.json:
            print(json.dumps(items, indent=2))
        else:
            for it in items:
                print(f"{it['name']:24s} {it['description']}")
    for tag, err in sorted(reg.load_errors.items()):
        print(f"warning: plugin {tag} failed to load: {err}", file=sys.stderr)
    return 0


def _plain(scores: Any) -> dict[str, Any]:
    """Task scores (``rows.TaskScores``) as their ``scores.json`` form, for JSON output."""
    return {t: dict(s) for t, s in scores.items()}


def _target(factory: Any) -> str:
    """``module:QualifiedName`` of a registered backend or metric factory (a class or a function)."""
    import inspect

    module = inspect.getmodule(factory)
    return f"{module.__name__ if module else '?'}:{factory.__qualname__}"


def _summary_line(factory: Any) -> str:
    """The first line of a factory's own docstring, or ""."""
    doc = factory.__doc__
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def _cmd_score(args: argparse.Namespace) -> int:
    from .runner import rescore
    from .store import ResultsStore

    store = ResultsStore.open_existing(args.run)
    from .report import print_scores, summaries_for

    from .runner import RunConfig

    judge = RunConfig(tasks=[], judge_backend=args.judge_backend, judge_model=args.judge_model,
                      judge_options=dict(args.judge_args)).judge_config()
    scores = rescore(store, judge_config=judge, wait_lock=args.wait_lock)
    summaries = summaries_for(scores)
    from .completeness import run_completeness

    comp = run_completeness(store)
    if args.json:
        print(json.dumps({"complete": comp.complete, "completeness": comp.to_dict(), "scores": _plain(scores),
                          "summaries": summaries}, indent=2))
    else:
        print_scores(scores, title=f"run {store.run_id} (re-scored)", summaries=summaries)
        print(f"run {store.run_id}: {comp.summary()}")
    return 0


def _cmd_score_file(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .scorefile import print_table, score_files, write_result_json

    results = score_files(args.files, metric=args.metric, task=args.task)
    if args.result_json:
        write_result_json(results, args.result_json)
    if len(results) == 1 and len(args.files) == 1 and Path(args.files[0]).is_file():
        out = {k: v for k, v in results[0].items() if k not in {"file", "dataset", "official"}}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    elif args.json:
        print(json.dumps({"files": results}, indent=2, ensure_ascii=False))
    else:
        print_table(results)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from .report import show

    return show(args.run, as_json=args.json, samples=args.samples, failed=args.failed, task=args.task)


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import CompareOptions, compare_runs, print_comparison

    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha must be between 0 and 1, got {args.alpha}")
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip()) if args.tasks else None
    cmp = compare_runs(args.baseline, args.candidate,
                       CompareOptions(iterations=args.iterations, seed=args.seed, alpha=args.alpha,
                                      allow_mismatch=args.allow_mismatch, tasks=tasks))
    if args.json:
        print(json.dumps(cmp.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_comparison(cmp)
    return 0


def _cmd_gate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .gate import load_policy, nothing_gated_reason, run_gate, to_junit, to_markdown

    res = run_gate(args.baseline, args.candidate, load_policy(args.policy), allow_mismatch=args.allow_mismatch)
    md = to_markdown(res)
    print(md, end="")
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as f:
            f.write(md)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res.to_dict(), indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    if args.junit:
        Path(args.junit).write_text(to_junit(res), encoding="utf-8")
    if res.nothing_gated:
        print(f"evalsuite: error: {nothing_gated_reason(res)}", file=sys.stderr)
    return res.exit_code


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import build_site

    info = build_site(args.results, args.output, title=args.title, prompt_preview=args.prompt_preview,
                      jobs=args.jobs, include_partial=args.include_partial, include_scripted=args.include_scripted)
    unranked = info["n_runs"] - info.get("n_ranked", info["n_runs"])
    print(f"site: {info['output']}/index.html  ({info['n_runs']} runs"
          + (f", {unranked} not ranked (partial or scripted)" if unranked else "") + f", {info['n_tasks']} tasks, "
          f"{info['n_files']} files, {info['seconds']:.1f}s; {info['n_units_reused']} of {info['n_units']} run x task "
          f"sample sets reused, {info['n_written']} files written, {info['n_removed']} removed)")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import main as doctor

    return doctor(as_json=args.json, compiler=args.cxx)


def _cmd_data(args: argparse.Namespace) -> int:
    from .datacli import main as data_main

    return data_main(args)


def _cmd_export(args: argparse.Namespace) -> int:
    from .analysis import export

    info = export(args.runs, args.output, fmt=args.format, table=args.table)
    print(f"wrote {info['rows']} rows ({info['table']} of {info['runs']} run{'s' if info['runs'] != 1 else ''}) "
          f"to {info['output']} as {info['format']}")
    for run_id in info["partial"]:
        print(f"warning: run {run_id} is partial (column `complete`): its numbers are not final", file=sys.stderr)
    return 0


COMMANDS = {"data": _cmd_data, "export": _cmd_export, "run": _cmd_run, "list": _cmd_list, "score": _cmd_score, "score-file": _cmd_score_file,
            "show": _cmd_show, "compare": _cmd_compare, "gate": _cmd_gate, "leaderboard": _cmd_leaderboard,
            "merge": _cmd_merge, "doctor": _cmd_doctor}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        return COMMANDS[args.command](args)
    except UserError as exc:
        from .redact import redact_text

        print(f"evalsuite: error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from .runner import RunInterrupted

        run_id, run_dir = (exc.run_id, exc.run_dir) if isinstance(exc, RunInterrupted) else (None, None)
        where = f" in {run_dir}" if run_dir else ""
        again = f" (run {run_id}; or pass --run-id {run_id})" if run_id else ""
        print(f"evalsuite: interrupted: completed generations are saved{where}; re-run the same command to "
              f"resume{again}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _entry() -> Any:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
