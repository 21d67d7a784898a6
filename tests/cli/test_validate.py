"""Issue 18: mistakes are caught before anything heavy loads, in a fixed order (evalsuite.validate):
task names, -T keys and values, backend and -B keys/values/model, judge and -J, data, metric
dependencies, output folder. The model loader is never reached (asserted, not timed: the timing is
benchmarks/fail_fast.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import cli_env
from evalsuite.cli import main


@pytest.fixture
def no_loader(monkeypatch, tmp_path):
    """Every way a backend could start loading a model raises; returns the list of attempted calls."""
    import evalsuite.backends.embedded as emb
    import evalsuite.backends.hf as hf
    import evalsuite.runner as runner

    calls: list[str] = []

    def trap(name):
        def boom(*a, **k):
            calls.append(name)
            raise AssertionError(f"{name} was called")
        return boom

    monkeypatch.setattr(emb, "ensure_model", trap("ensure_model"))
    monkeypatch.setattr(emb, "ensure_tokenizer", trap("ensure_tokenizer"))
    monkeypatch.setattr(hf.HFBackend, "_load", trap("HFBackend._load"))
    monkeypatch.setattr(runner, "build_backend", trap("build_backend"))
    monkeypatch.chdir(tmp_path)
    return calls


def _fails(capsys, args, needle):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert needle in err, err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_misspelled_task_option_with_the_embedded_model_exits_2_before_the_loader(no_loader, capsys, tmp_path):
    err = _fails(capsys, ["run", "--tasks", "ruler/niah_single_1", "--limit", "8", "-T", "lenght=1024"], "lenght")
    assert no_loader == []
    assert not (tmp_path / "results").exists()  # nothing written either
    assert err.startswith("evalsuite: error:")


@pytest.mark.parametrize("args, needle", [
    # 1. task names
    (["--tasks", "ruler/niah_single_9", "-T", "lenght=1"], "unknown task 'ruler/niah_single_9'"),
    # 2. -T keys, then values (before any backend option)
    (["--tasks", "ruler/niah_single_1", "-T", "lenght=1", "-B", "dtype=fp33"], "lenght"),
    (["--tasks", "ruler/niah_single_1", "-T", "length=many", "-B", "dtype=fp33"], "bad value for option 'length'"),
    (["--tasks", "ruler/niah_single_1", "--samples", "ruler/niah_singel_1:3"], "did you mean 'ruler/niah_single_1'"),
    # 3. backend, -B keys and values (before data)
    (["--tasks", "ruler/niah_single_1", "-B", "batchsize=4", "-T", "data_dir=/no/such"], "did you mean 'batch_size'"),
    (["--tasks", "ruler/niah_single_1", "-B", "dtype=fp33", "-T", "data_dir=/no/such"], "dtype must be one of"),
    (["--tasks", "ruler/niah_single_1", "--backend", "hf", "--model", "/no/such/model", "-T", "data_dir=/no/such"],
     "does not exist"),
    (["--tasks", "ruler/niah_single_1", "--model", "org/model", "--backend", "hf"], "offline"),
    (["--tasks", "ruler/niah_single_1", "--backend", "echo", "-B", "dely=1"], "did you mean 'delay'"),
    # 4. judge and -J, generation parameters
    (["--tasks", "ruler/niah_single_1", "--judge-backend", "replay", "-J", "fil=x.jsonl"], "did you mean 'file'"),
    (["--tasks", "ruler/niah_single_1", "--judge-backend", "replay", "-J", "temperature=hot"], "judge option temperature"),
    (["--tasks", "ruler/niah_single_1", "--top-p", "1.5"], "top_p must be in (0, 1]"),
    # 5. data (before metric dependencies and the output folder)
    (["--tasks", "ruler/niah_single_1", "-T", "data_dir=/no/such/ruler", "--output", "/proc/x"],
     "data folder '/no/such/ruler' does not exist"),
    # 7. output folder
    (["--tasks", "ruler/niah_single_1", "--output", "/proc/evalsuite-results"], "kernel filesystem"),
])
def test_each_check_comes_before_the_model_and_in_order(no_loader, capsys, args, needle):
    _fails(capsys, ["run", *args], needle)
    assert no_loader == []


def test_output_that_is_a_file_is_refused_up_front(no_loader, capsys, tmp_path):
    (tmp_path / "taken").write_text("x")
    _fails(capsys, ["run", "--tasks", "ruler/niah_single_1", "--output", str(tmp_path / "taken" / "results")],
           "is a file, not a folder")
    assert no_loader == []


def test_missing_metric_dependency_fails_before_the_model(no_loader, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sacrebleu" else real(name, *a))
    _fails(capsys, ["run", "--tasks", "drt/direct", "--limit", "2"], "bleu needs sacrebleu")
    assert no_loader == []


def test_missing_comet_environment_fails_before_the_model(no_loader, capsys, monkeypatch, tmp_path):
    # no unbabel-comet here, no environment at the default place, none configured
    monkeypatch.delenv("EVALSUITE_COMET_PYTHON", raising=False)
    monkeypatch.setenv("EVALSUITE_COMET_ENV", str(tmp_path / "no-comet-env"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "comet" else real(name, *a))
    _fails(capsys, ["run", "--tasks", "drt/direct", "-T", "comet=default"], "no COMET environment is configured")
    assert no_loader == []


def test_bad_task_option_does_not_import_torch():
    """The same check in a fresh interpreter: exit 2 and neither torch nor transformers imported."""
    code = ("import sys\nfrom evalsuite.cli import main\nrc = main(['run', '--tasks', 'ruler/niah_single_1', "
            "'-T', 'lenght=1024'])\nprint(rc, [m for m in ('torch', 'transformers') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(plugin=False),
                       timeout=120)
    assert r.stdout.split("\n")[0] == "2 []", (r.stdout, r.stderr)
