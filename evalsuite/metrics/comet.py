"""COMET (unbabel-comet) as a corpus-level metric, run in-process or in its own environment.

unbabel-comet pins ``transformers<5``, ``numpy<2`` (and needs ``setuptools<81``), so it cannot live beside
vLLM. Where it runs, in this order:

1. ``python=`` (task option ``comet_python=``, or ``EVALSUITE_COMET_PYTHON``): that interpreter runs
   ``_comet_worker.py`` in a subprocess (JSON in, JSON out; the worker imports comet, never evalsuite).
2. comet importable here: the worker's :func:`score` runs in this process.
3. the default COMET environment ``$EVALSUITE_COMET_ENV`` or ``~/.cache/evalsuite/comet-env`` (made by
   ``python -m evalsuite.metrics.comet create-env``), when it exists: as in 1.
4. otherwise a ``UserError`` that says how to make one.

What is computed: ``value`` = 100 x the mean segment score (COMET's system score, as the DRT and RAGtrans
papers report it); ``per_sample`` = the segment scores (0-1 for COMET-22); the signature names the
checkpoint (hub id + snapshot revision, or local path + sha256), the model class, whether references were
used and the unbabel-comet version. Identical (src, mt, ref) triples are sent once; the worker sorts the
unique ones by length and scores them in large batches (``batch_size``, default 64 on CPU and 256 on a
GPU), on the GPU when one is visible (``device=``).

The source text comes from each record's metadata (``source``, or ``src``), the translation is the
prediction, the reference the record's target (one string; a one-element list is accepted).

Offline (``HF_HUB_OFFLINE``/``EVALSUITE_OFFLINE``) a hub id is looked up in the local hub cache before any
process starts, and when it is not there the error names the local-checkpoint option at once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..contracts import NO_CONTEXT, ScoreContext
from ..signature import Signature
from ..data import offline
from ..errors import UserError
from ..types import MetricResult, Record

DEFAULT_MODEL = "Unbabel/wmt22-comet-da"
KIWI_MODEL = "Unbabel/wmt22-cometkiwi-da"
WORKER = Path(__file__).with_name("_comet_worker.py")
SOURCE_KEYS = ("source", "src")

COMET_REQUIREMENTS = ("unbabel-comet==2.2.7", "transformers<5", "numpy<2", "setuptools<81")
"""What ``create-env`` installs beside torch: unbabel-comet's own pins plus setuptools<81 (torchmetrics
0.10 imports ``pkg_resources``, which setuptools 81 removed)."""
DEFAULT_TORCH = "torch==2.13.0"


def default_env_dir() -> Path:
    return Path(os.environ.get("EVALSUITE_COMET_ENV") or Path.home() / ".cache" / "evalsuite" / "comet-env")


def env_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _hub_cache_dirs() -> list[Path]:
    dirs = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]))
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    dirs.append(home / "hub")
    return dirs


def cached_hub_checkpoint(hub_id: str, storage: str | None = None) -> Path | None:
    """``.../models--Org--Name/snapshots/<rev>/checkpoints/model.ckpt`` in a local hub cache, if present."""
    folder = "models--" + hub_id.replace("/", "--")
    roots = ([Path(storage)] if storage else []) + _hub_cache_dirs()
    for root in roots:
        snaps = sorted((root / folder / "snapshots").glob("*/checkpoints/model.ckpt"))
        if snaps:
            return snaps[-1]
    return None


def _is_hub_id(model: str) -> bool:
    return not Path(model).expanduser().exists() and "/" in model and not model.startswith((".", "/", "~"))


class Comet:
    """COMET (unbabel-comet): 100 x mean segment score; own environment or in-process; batched."""

    name = "comet"
    higher_is_better = True
    version = "1"
    default_model = DEFAULT_MODEL

    def __init__(self, model: str | None = None, python: str | None = None, batch_size: int | str | None = None,
                 device: str | None = None, storage: str | None = None, timeout: float | str | None = None,
                 name: str | None = None, threads: int | str | None = None):
        self.model = model or os.environ.get("EVALSUITE_COMET_MODEL") or self.default_model
        self.python = python or os.environ.get("EVALSUITE_COMET_PYTHON") or None
        bs = batch_size or os.environ.get("EVALSUITE_COMET_BATCH_SIZE")
        self.batch_size = int(bs) if bs else None
        self.device = device or os.environ.get("EVALSUITE_COMET_DEVICE") or "auto"
        th = threads or os.environ.get("EVALSUITE_COMET_THREADS")
        try:
            self.threads = int(th) if th not in (None, "", "auto") else None
        except ValueError:
            raise UserError(f"EVALSUITE_COMET_THREADS / threads must be a positive integer or auto, got {th!r}") \
                from None
        if self.threads is not None and self.threads < 1:
            raise UserError(f"COMET threads must be a positive integer, got {th!r}")
        self.storage = storage
        self.timeout = float(timeout) if timeout else None
        if name:
            self.name = name
        self._last_signature: str | None = None
        self.last_response: dict[str, Any] | None = None

    # -- protocol -----------------------------------------------------------------------------------
    def signature(self) -> str:
        return self._last_signature or str(Signature(self.name, model=self.model, v=self.version))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        if not records:
            raise UserError(f"{self.name}: no records to score")
        items = [self._item(i, r) for i, r in enumerate(records)]
        uniq: dict[tuple[str, str, str | None], int] = {}
        slot = [uniq.setdefault((it["src"], it["mt"], it.get("ref")), len(uniq)) for it in items]
        payload = [{"src": s, "mt": m, **({"ref": r} if r is not None else {})} for s, m, r in uniq]
        resp = self.run(payload)
        seg = [float(resp["scores"][k]) for k in slot]
        m = resp["model"]
        version = m.get("revision") or (m.get("sha256") or "")[:16]
        refs = "yes" if m.get("requires_references") else "no"
        self._last_signature = str(Signature(self.name, model=m.get("name"), version=version, **{"class": m.get("class")},
                                             refs=refs, comet=resp["versions"].get("unbabel-comet"), scale=100,
                                             evalsuite=self.version))
        details = {"scale": 100.0, "system_score": sum(seg) / len(seg), "n_segments": len(seg),
                   "n_unique": resp.get("n_unique"), "model": m, "versions": resp.get("versions"),
                   "device": resp.get("device"), "batch_size": resp.get("batch_size"), "threads": resp.get("threads"),
                   "mode": resp.get("mode"), "timings": resp.get("timings")}
        return MetricResult(name=self.name, value=100.0 * sum(seg) / len(seg), signature=self._last_signature,
                            per_sample=tuple(seg), higher_is_better=True, details=details)

    def check_available(self) -> None:
        """Fail before the run loads a model when COMET cannot run: no environment with unbabel-comet, or
        a hub checkpoint while offline with no local copy (``evalsuite.validate``)."""
        self.mode()
        self._resolved_model()

    # -- helpers ------------------------------------------------------------------------------------
    def _item(self, i: int, rec: Record) -> dict[str, str]:
        meta = rec.sample.metadata or {}
        src = next((meta[k] for k in SOURCE_KEYS if isinstance(meta.get(k), str)), None)
        if src is None:
            raise UserError(f"{self.name}: sample {rec.sample.id!r} has no source text (metadata 'source'); "
                            "COMET scores (source, translation[, reference])")
        t = rec.sample.target
        if isinstance(t, (list, tuple)):
            if len(t) > 1:
                raise UserError(f"{self.name}: sample {rec.sample.id!r} has {len(t)} references; COMET takes one")
            t = t[0] if t else None
        item = {"src": src, "mt": rec.prediction if isinstance(rec.prediction, str) else str(rec.prediction)}
        if isinstance(t, str):
            item["ref"] = t
        return item

    def _resolved_model(self) -> tuple[str, bool]:
        """(model argument for the worker, local_files_only). Fails fast offline without a local copy."""
        if not _is_hub_id(self.model):
            p = Path(self.model).expanduser()
            if not p.exists() and "/" not in self.model:
                raise UserError(f"{self.name}: model {self.model!r} is neither a local checkpoint nor a hub id")
            return str(p.resolve()) if p.exists() else self.model, False
        if offline():
            cached = cached_hub_checkpoint(self.model, self.storage)
            if cached is None:
                raise UserError(
                    f"{self.name}: model {self.model!r} is a hub id and the hub is offline (HF_HUB_OFFLINE), and "
                    "it is not in the local hub cache; pass a local COMET checkpoint with "
                    "comet_model=/path/to/checkpoints/model.ckpt (task option) or EVALSUITE_COMET_MODEL, "
                    "or download the model once where the hub is reachable")
            return self.model, True
        return self.model, False

    def mode(self) -> tuple[str, str | None]:
        """``("subprocess", python)`` or ``("in-process", None)``, as :meth:`run` would choose."""
        if self.python:
            return "subprocess", self.python
        if importlib.util.find_spec("comet") is not None:
            return "in-process", None
        py = env_python(default_env_dir())
        if py.exists():
            return "subprocess", str(py)
        raise UserError(
            f"{self.name}: unbabel-comet is not importable here and no COMET environment is configured. It pins "
            "transformers<5 and numpy<2, so give it its own environment: `python -m evalsuite.metrics.comet "
            f"create-env` (makes {default_env_dir()}, found automatically) or point comet_python= / "
            "EVALSUITE_COMET_PYTHON at an interpreter that has unbabel-comet (see docs/comet.md)")

    def request(self, items: list[dict[str, str]]) -> dict[str, Any]:
        model, local_only = self._resolved_model()
        bs = self.batch_size
        return {"model": model, "items": items, "batch_size": bs, "device": self.device,
                "local_files_only": local_only, "storage": self.storage, "threads": self.threads}

    def run(self, items: list[dict[str, str]]) -> dict[str, Any]:
        """Score unique items with the worker; returns its response (plus ``mode``)."""
        req = self.request(items)
        mode, python = self.mode()
        if req["batch_size"] is None:
            req["batch_size"] = 0  # the worker picks: 64 on CPU, 256 on a GPU
        if mode == "in-process":
            from . import _comet_worker as w

            try:
                resp = w.score(req)
            except w.WorkerError as exc:
                raise UserError(f"{self.name}: {exc}") from None
        else:
            resp = _run_worker(python, req, self.timeout, self.name)
        resp["mode"] = mode if mode == "in-process" else f"subprocess:{python}"
        if len(resp["scores"]) != len(items):
            raise RuntimeError(f"{self.name}: worker returned {len(resp['scores'])} scores for {len(items)} items")
        self.last_response = resp
        return resp


class CometKiwi(Comet):
    """CometKiwi (reference-free COMET, default Unbabel/wmt22-cometkiwi-da, a gated hub model)."""

    name = "cometkiwi"
    default_model = KIWI_MODEL

    def __init__(self, model: str | None = None, **kw: Any):
        super().__init__(model=model or os.environ.get("EVALSUITE_COMETKIWI_MODEL") or KIWI_MODEL, **kw)


def _run_worker(python: str, req: dict[str, Any], timeout: float | None, name: str) -> dict[str, Any]:
    if not Path(python).exists():
        raise UserError(f"{name}: COMET interpreter {python!r} does not exist")
    with tempfile.TemporaryDirectory(prefix="evalsuite-comet-") as d:
        rq, rs = Path(d) / "request.json", Path(d) / "response.json"
        rq.write_text(json.dumps(req, ensure_ascii=False), encoding="utf-8")
        env = dict(os.environ)
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            proc = subprocess.run([python, "-I", str(WORKER), str(rq), str(rs)], capture_output=True, text=True,
                                  timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise UserError(f"{name}: the COMET worker ran past {timeout:g} s") from None
        resp = json.loads(rs.read_text(encoding="utf-8")) if rs.exists() else None
    if resp is None or "error" in resp:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        msg = resp["error"] if resp else f"the COMET worker ({python}) exited with {proc.returncode}"
        if resp is None or resp.get("kind") != "user":
            msg += f"\n{tail}" if tail else ""
        raise UserError(f"{name}: {msg}")
    return resp


# -- the COMET environment ---------------------------------------------------------------------------

def create_env(env_dir: Path | str | None = None, torch_spec: str = DEFAULT_TORCH,
               python: str | None = None, quiet: bool = False) -> Path:
    """Make (or reuse) a virtual environment with torch and unbabel-comet; returns its interpreter.

    Reused when it was made by this function with the same requirements (a marker file) and still has
    them installed. ``torch_spec`` is installed first and stays pinned
    (``pip`` would otherwise pull a CUDA build of the newest torch); pass e.g. ``torch==2.13.0`` from a
    CUDA index through ``PIP_EXTRA_INDEX_URL`` for a GPU machine.
    """
    env_dir = Path(env_dir).expanduser() if env_dir else default_env_dir()
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time: a second caller (another process, a test run while CI pre-builds the
    # environment) waits here and then finds it made.
    import fcntl

    with open(env_dir.with_name(env_dir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _create_env_locked(env_dir, torch_spec, python, quiet)


def _create_env_locked(env_dir: Path, torch_spec: str, python: str | None, quiet: bool) -> Path:
    py = env_python(env_dir)
    marker = env_dir / ".evalsuite-comet-env.json"
    spec = {"torch": torch_spec, "requirements": list(COMET_REQUIREMENTS)}
    # cheap reuse check (importing comet takes seconds): our marker + the installed distributions
    probe = [str(py), "-c", "import importlib.metadata as m; m.version('unbabel-comet'); m.version('torch')"]
    if py.exists() and marker.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        try:
            if json.loads(marker.read_text()) == spec:
                return py
        except ValueError:
            pass
    base = python or getattr(sys, "_base_executable", None) or sys.executable
    # The environment's pip must see only its own packages (not a PYTHONPATH checkout of evalsuite).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.DEVNULL if quiet else None
    if not py.exists():
        subprocess.run([base, "-m", "venv", str(env_dir)], check=True, stdout=out, env=env)
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"] + (["-q"] if quiet else [])
    subprocess.run(pip + [torch_spec], check=True, stdout=out, env=env)
    # torch stays as installed: its pin is repeated so pip never up- or downgrades it
    subprocess.run(pip + [torch_spec, *COMET_REQUIREMENTS], check=True, stdout=out, env=env)
    if subprocess.run([str(py), "-c", "import comet, torch"], capture_output=True, env=env).returncode != 0:
        raise UserError(f"the COMET environment {env_dir} was built but `import comet` fails in it")
    marker.write_text(json.dumps(spec))
    return py


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m evalsuite.metrics.comet",
                                description="COMET helpers: make the separate COMET environment.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create-env", help="create (or reuse) a venv with torch + unbabel-comet")
    c.add_argument("dir", nargs="?", help=f"target folder (default {default_env_dir()}, found automatically)")
    c.add_argument("--torch", default=DEFAULT_TORCH, help=f"torch requirement to install first ({DEFAULT_TORCH})")
    c.add_argument("--python", help="base interpreter for the venv (default: this one's base)")
    a = p.parse_args(argv)
    try:
        py = create_env(a.dir, a.torch, a.python)
    except (UserError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(py)
    if a.dir and Path(a.dir).expanduser().resolve() != default_env_dir().resolve():
        print(f"use it with: export EVALSUITE_COMET_PYTHON={py}", file=sys.stderr)
    return 0


__all__ = ["Comet", "CometKiwi", "create_env", "cached_hub_checkpoint", "default_env_dir"]


if __name__ == "__main__":
    sys.exit(main())
