"""Packaging: the README's commands are what CI runs; a built wheel works outside the checkout."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED


def _quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_has_exactly_two_quick_start_commands_and_ci_runs_the_second():
    cmds = _quick_start_commands()
    assert len(cmds) == 2 and all("\n" not in c for c in cmds)
    assert "evalsuite run" in cmds[0] and "pytest" in cmds[1]
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert cmds[1] in ci


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path, word_tokenizer_dir):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(dist), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("evalsuite-*.whl"))
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("evalsuite/tasks/ruler/") and n.endswith("__init__.py") for n in names)
    assert not any(n.startswith(("tests/", "tasks/")) for n in names)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True,
                         text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    exe = str(venv / "bin" / "evalsuite")
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)}
    r = subprocess.run([exe, "list", "tasks"], cwd=work, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and "ruler/niah_single_1" in r.stdout, r.stderr
    assert "helmet/multi_lexsum" in r.stdout  # HELMET's configs and prompts ship in the wheel
    essays = SHARED / "data" / "ruler" / "essays" / "PaulGrahamEssays"
    r = subprocess.run([exe, "run", "--tasks", "ruler/niah_single_1,ruler/niah_single_2,ruler/niah_single_3", "--backend", "gold", "--model", str(word_tokenizer_dir),
                        "-T", "length=1024", "-T", f"data_dir={essays}", "--limit", "3", "--json", "--run-id", "w"],
                       cwd=work, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    scores = json.loads(r.stdout)["scores"]
    assert set(scores) == {"ruler/niah_single_1", "ruler/niah_single_2", "ruler/niah_single_3"}
    assert all(s["value"] == 100.0 for s in scores.values())
    assert (work / "results" / "w" / "manifest.json").is_file()
