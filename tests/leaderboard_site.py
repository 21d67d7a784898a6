"""A leaderboard site built from real runs through the CLI, shared by test_leaderboard*.py.

Runs (scripted backends, a word-level tokenizer, offline):
* RULER niah_single_1 at 1024 and 2048 tokens: ``gold`` and an ``echo`` model whose output is an XSS
  payload (plus a think block);
* LongBench-E hotpotqa (length buckets) on the fixture data;
* the toy plugin's ``toy/addition`` and a dummy task from a second plugin written here, installed only
  through a ``*.dist-info/entry_points.txt`` on PYTHONPATH: the site code knows nothing about it.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, REPO, cli_env, run_cli

XSS = ('<script>document.title="pwned";window.__xss=1</script>'
       '<img src=x onerror="document.title=\'pwned-img\';window.__xss=2"> 42')
THINK = "<think>reasoning with <b>markup</b></think>"
DUMMY = {"display_name": "Dummy Plugin Benchmark", "description": "A dummy task that exists only in a test plugin.",
         "group": "dummy_bench"}

DUMMY_PLUGIN = '''
"""A test plugin registering one task with site metadata."""
from evalsuite.metrics import MeanMetric
from evalsuite.task import BaseTask
from evalsuite.types import GenParams, Request, Sample


class Match(MeanMetric):
    name = "dummy_match"

    def sample_score(self, record):
        return float(record.prediction.strip() == record.sample.target)


class Dummy(BaseTask):
    name = "dummyplug/echo_word"
    version = "3"
    display_name = {display_name!r}
    description = {description!r}
    group = {group!r}
    primary_metric = "dummy_match"
    higher_is_better = True

    def samples(self):
        for i, w in enumerate(["red", "green", "blue", "cyan", "plum"]):
            yield Sample(id=f"w{{i}}", index=i, input=w, target=w)

    def request(self, sample):
        return Request(task=self.name, sample_id=sample.id, index=sample.index,
                       prompt="Repeat: " + sample.input, params=GenParams(max_tokens=4))

    def metrics(self):
        return [Match()]

    def gold(self, sample):
        return sample.target


def register(registry):
    registry.add_task(Dummy.name, Dummy)
'''


def _write_dummy_plugin(root: Path) -> Path:
    pkg = root / "dummy_lb_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(DUMMY_PLUGIN.format(**DUMMY))
    dist = root / "dummy_lb_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dummy-lb-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalsuite.tasks]\ndummyplug = dummy_lb_plugin:register\n")
    return root


def env_with_plugins(root: Path) -> dict[str, str]:
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(PLUGIN_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture(scope="session")
def lb_runs(tmp_path_factory, word_tokenizer_dir):
    d = tmp_path_factory.mktemp("lb")
    plug = _write_dummy_plugin(d / "plugins")
    env = env_with_plugins(plug)

    def run(*args):
        r = run_cli(list(args), cwd=d, env=env)
        assert r.returncode == 0, r.stderr[-3000:]

    ruler = ["--tasks", "ruler/niah_single_1", "--model", str(word_tokenizer_dir), "-T", "lengths=1024,2048",
             "-T", "num_samples=4", "--no-progress", "--log-prompts"]
    run("run", *ruler, "--backend", "gold", "--run-id", "gold-ruler")
    run("run", *ruler, "--backend", "echo", "-B", f"text={THINK}{XSS}", "--run-id", "xss-ruler")
    run("run", "--tasks", "longbench_e/hotpotqa", "--backend", "gold", "--model", str(word_tokenizer_dir),
        "-T", f"data_dir={REPO / 'tests' / 'fixtures' / 'longbench'}", "--run-id", "lbe", "--no-progress")
    run("run", "--tasks", "toy/addition,dummyplug/echo_word", "-T", "n=12", "--backend", "gold",
        "--run-id", "toy", "--no-progress")
    return {"dir": d, "results": d / "results", "env": env}


@pytest.fixture(scope="session")
def built_site(lb_runs):
    d = lb_runs["dir"]
    # every run here comes from a scripted backend (offline, no model): rank them to exercise the tables
    r = run_cli(["leaderboard", "build", str(lb_runs["results"]), "-o", str(d / "site"), "--prompt-preview", "120",
                 "--include-scripted"], cwd=d, env=lb_runs["env"])
    assert r.returncode == 0, r.stderr[-3000:]
    return d / "site"


def read(site: Path, rel: str) -> str:
    return (site / rel).read_text(encoding="utf-8")


def load_json(site: Path, rel: str):
    return json.loads(read(site, rel))


def sample_items(site: Path, run: str, slug: str) -> list[dict]:
    """Every sample of a run x task as the site stores it (the compressed chunks, decoded in order)."""
    from evalsuite.leaderboard.samples import read_chunk

    out, n = [], 1
    while (site / "samples" / run / f"{slug}.{n}.js").is_file():
        k, items = read_chunk(site / "samples" / run / f"{slug}.{n}.js")
        assert k == n
        out += items
        n += 1
    return out


def site_texts(site: Path) -> dict[str, str]:
    """The text of every file of a site, sample chunks decoded to their JSON (what a search for leaked
    data must look at: the chunks are compressed)."""
    from evalsuite.leaderboard.samples import read_chunk

    out = {}
    for f in sorted(site.rglob("*")):
        if not f.is_file():
            continue
        rel = f.relative_to(site).as_posix()
        out[rel] = f.read_bytes().decode("utf-8", errors="replace")
        if rel.startswith("samples/") and rel.endswith(".js"):
            out[rel] += "\n" + json.dumps(read_chunk(f)[1], ensure_ascii=False)
    return out


__all__ = ["XSS", "THINK", "DUMMY", "lb_runs", "built_site", "env_with_plugins", "read", "sample_items", "site_texts",
           "textwrap"]
