"""COMET scoring worker: runs inside an environment that has unbabel-comet.

unbabel-comet pins ``transformers<5`` and ``numpy<2``, which cannot share an environment with current vLLM,
so evalsuite may run this file with another interpreter (``comet_python=`` / ``EVALSUITE_COMET_PYTHON``)::

    <comet-env>/bin/python _comet_worker.py REQUEST.json RESPONSE.json

It imports only the standard library at module level (and comet, torch inside :func:`score`), never
evalsuite, so it runs from its path in an environment where evalsuite is not installed. When comet is
importable in evalsuite's own environment, :func:`score` is called in-process instead.

Request: ``{"model": <hub id | .ckpt file | model folder>, "items": [{"src", "mt", "ref"?}, ...],
"batch_size": int, "device": "auto"|"cpu"|"cuda"|"cuda:N", "local_files_only": bool,
"storage": <folder for hub downloads> | null, "threads": int | "auto" (CPU intra-op threads)}``.
Response: ``{"scores": [...], "model": {...}, "versions": {...}, "device": str, "n_unique": int,
"timings": {...}}`` or ``{"error": str, "kind": "user"|"internal"}``.

How scores are computed (equal to ``model.predict(items)`` up to float rounding of batch composition):
items the model reads identically (same ``src``/``mt`` and, for reference-based models, ``ref``) are
scored once; the unique items are sorted by length (characters of every input the model reads, longest
first, so a too-large batch fails at once) and cut into batches of ``batch_size``; each batch goes
through the model's own ``prepare_for_inference`` and ``predict_step`` under ``torch.inference_mode``
in eval mode (no dropout), which is what Lightning's predict loop calls, minus the Trainer. The next
batch is tokenized on a second thread meanwhile; on CPU a small encoder runs on one thread
(:func:`cpu_threads`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


class WorkerError(Exception):
    """A problem the user can fix (bad model name, offline hub, missing references)."""


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_checkpoint(model: str, local_files_only: bool, storage: str | None) -> tuple[Path, dict[str, Any]]:
    """A local ``.ckpt`` path for ``model`` and what identifies it (name, revision or sha256)."""
    p = Path(model).expanduser()
    if p.exists():
        ckpt = p / "checkpoints" / "model.ckpt" if p.is_dir() else p
        if not ckpt.is_file():
            raise WorkerError(f"COMET model folder {model!r} has no checkpoints/model.ckpt")
        info = {"name": str(p.resolve()), "source": "local", "sha256": _sha256(ckpt)}
        return ckpt.resolve(), info
    if "/" not in model or model.startswith((".", "/", "~")):
        raise WorkerError(f"COMET model {model!r} is neither an existing path nor a hub id (org/name)")
    from comet import download_model

    try:
        ckpt = Path(download_model(model, saving_directory=storage, local_files_only=local_files_only))
    except Exception as exc:  # offline, gated (CometKiwi), unknown id
        where = "in the local hub cache (offline)" if local_files_only else "on the hub"
        raise WorkerError(f"COMET model {model!r} could not be found {where} ({type(exc).__name__}: {exc}); "
                          "download it once where the hub is reachable, or pass a local checkpoint with "
                          "comet_model=/path/to/checkpoints/model.ckpt (EVALSUITE_COMET_MODEL)") from None
    parts = ckpt.resolve().parts
    revision = parts[parts.index("snapshots") + 1] if "snapshots" in parts else None
    info = {"name": model, "source": "hub", "revision": revision}
    if revision is None:
        info["sha256"] = _sha256(ckpt)
    return ckpt, info


def _to_device(obj: Any, device: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)({k: _to_device(v, device) for k, v in obj.items()}) if type(obj) is dict \
            else obj.__class__(**{k: _to_device(v, device) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


SMALL_ENCODER = 512
"""Below this hidden size a CPU op is too small to split across threads: scoring runs on one thread."""


def cpu_threads(model: Any, requested: Any = None) -> int | None:
    """Intra-op threads for CPU scoring: ``requested`` (a positive int) when given; else 1 for an encoder
    with hidden size under ``SMALL_ENCODER`` (thread hand-offs cost more than such ops: measured 3x slower
    on 2 threads for the tiny test checkpoint, and far worse on a busy machine); else None, torch's
    default (one per core), which the large encoders of real COMET models use well."""
    if requested not in (None, "", "auto"):
        n = int(requested)
        if n < 1:
            raise WorkerError(f"threads must be a positive integer, got {requested!r}")
        return n
    enc = getattr(model, "encoder", None)
    hidden = getattr(enc, "output_units", None)
    if hidden is None:
        cfg = getattr(getattr(enc, "model", None), "config", None)
        hidden = getattr(cfg, "hidden_size", None)
    return 1 if isinstance(hidden, int) and hidden < SMALL_ENCODER else None


def score(request: dict[str, Any]) -> dict[str, Any]:
    """Score ``request["items"]``; see the module docstring."""
    t0 = time.perf_counter()
    import torch
    from comet import load_from_checkpoint

    items = request["items"]
    local_only = bool(request.get("local_files_only"))
    ckpt, info = resolve_checkpoint(str(request["model"]), local_only, request.get("storage"))
    t_load = time.perf_counter()
    model = load_from_checkpoint(str(ckpt), local_files_only=local_only)
    model.eval()
    needs_ref = bool(model.requires_references())
    keys = ("src", "mt", "ref") if needs_ref else ("src", "mt")
    for i, it in enumerate(items):
        for k in keys:
            if not isinstance(it.get(k), str):
                raise WorkerError(f"item {i} has no {k!r} text, which this COMET model needs")

    want = str(request.get("device") or "auto")
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(want)
    model.to(device)
    threads = cpu_threads(model, request.get("threads")) if device.type == "cpu" else None
    saved_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)  # process-wide: put back below (in-process mode shares torch)
        return _score_loaded(model, items, keys, device, request, info, ckpt, t0, t_load)
    finally:
        torch.set_num_threads(saved_threads)


def _score_loaded(model: Any, items: list[dict[str, Any]], keys: tuple[str, ...], device: Any,
                  request: dict[str, Any], info: dict[str, Any], ckpt: Path, t0: float, t_load: float
                  ) -> dict[str, Any]:
    import torch

    needs_ref = "ref" in keys

    # identical inputs (as this model reads them) are scored once
    unique: dict[tuple[str, ...], int] = {}
    slot = [unique.setdefault(tuple(it[k] for k in keys), len(unique)) for it in items]
    uniq = [dict(zip(keys, u)) for u in unique]
    order = sorted(range(len(uniq)), key=lambda i: -sum(len(uniq[i][k]) for k in keys))
    bs = int(request.get("batch_size") or 0) or (256 if device.type == "cuda" else 64)
    out = [0.0] * len(uniq)
    batches = [order[start:start + bs] for start in range(0, len(order), bs)]
    t_run = time.perf_counter()
    t_wait = 0.0

    def prepare(idx: list[int]) -> Any:
        return model.prepare_for_inference([uniq[i] for i in idx])

    # The next batch is tokenized on a second thread while the model scores this one (tokenization was
    # ~45% of CPU scoring time; the Rust tokenizer releases the GIL). Same batches, same numbers.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="comet-prepare") as pool, torch.inference_mode():
        nxt = pool.submit(prepare, batches[0]) if batches else None
        for k, idx in enumerate(batches):
            t_w = time.perf_counter()
            batch = nxt.result()
            t_wait += time.perf_counter() - t_w
            nxt = pool.submit(prepare, batches[k + 1]) if k + 1 < len(batches) else None
            pred = model.predict_step(_to_device(batch, device))
            for i, v in zip(idx, pred["scores"].float().cpu().tolist()):
                out[i] = float(v)
    t_end = time.perf_counter()
    hp = getattr(model, "hparams", {})
    info.update({"class": type(model).__name__, "requires_references": needs_ref,
                 "pretrained_model": str(hp.get("pretrained_model", "")), "checkpoint": str(ckpt)})
    return {
        "scores": [out[s] for s in slot], "model": info, "n_unique": len(uniq), "device": str(device),
        "batch_size": bs, "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "versions": {"unbabel-comet": _version("unbabel-comet"), "torch": torch.__version__,
                     "transformers": _version("transformers"), "python": sys.version.split()[0]},
        "timings": {"import_s": t_load - t0, "load_s": t_run - t_load, "score_s": t_end - t_run,
                    "tokenize_wait_s": t_wait},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # run by path, this folder would come first on sys.path and `import comet` would find evalsuite's
    # comet.py; the parent runs ``python -I`` (no script folder), and this covers a manual run
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    if len(args) != 2:
        sys.stderr.write("usage: _comet_worker.py REQUEST.json RESPONSE.json\n")
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    req = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    code = 0
    try:
        resp = score(req)
    except WorkerError as exc:
        resp, code = {"error": str(exc), "kind": "user"}, 3
    except Exception as exc:  # reported to the parent with its type; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        resp, code = {"error": f"{type(exc).__name__}: {exc}", "kind": "internal"}, 4
    Path(args[1]).write_text(json.dumps(resp), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
