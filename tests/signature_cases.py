"""Every metric signature the registry can render, keyed by a stable id, for tests/engine/test_signatures.py.

Each registered task is built with its default options and each of its metrics rendered; the registered
metric entry points are built with their defaults; a judged metric is rendered again after being told its
judge (``_judge_id`` / ``signature(judge)``); BLEU and chrF are rendered after scoring two segments (the
signature then carries sacrebleu's own). ``python tests/signature_cases.py --write`` records them in
``tests/fixtures/signatures.json``: run it only to add new ids, never to change an existing one (a recorded
signature must render byte for byte the same, or runs on disk stop comparing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "signatures.json"


def installed() -> dict[str, str]:
    """Versions of third-party scorers that signatures name, written ``<name>`` in the recorded file (a
    signature names the installed version, which the recorded strings must not pin)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg, part in (("jieba", "jieba:{}"), ("sacrebleu", "version:{}")):
        try:
            out[part.format(version(pkg))] = part.format(f"<{pkg}>")
        except PackageNotFoundError:
            pass
    return out


def normalized(sig: str) -> str:
    for real, placeholder in installed().items():
        sig = sig.replace(real + "|", placeholder + "|")
    return sig


class _Judge:
    id = "echo:judge-model"


def _renders(metric: Any) -> Iterator[tuple[str, str]]:
    import inspect

    params = inspect.signature(metric.signature).parameters
    yield "", str(metric.signature())
    if "judge" in params:
        yield "+judge", str(metric.signature(judge=_Judge()))
    if "dataset" in params and getattr(metric, "dataset", 1) is None:
        yield "+dataset:qasper", str(metric.signature(dataset="qasper"))
    for holder in (metric, getattr(metric, "inner", None)):
        if holder is not None and hasattr(holder, "_judge_id"):
            before = holder._judge_id
            holder._judge_id = _Judge.id
            if hasattr(holder, "_judge_kind"):
                holder._judge_kind, kind_before = "llm", holder._judge_kind
            yield "+judge_id", str(metric.signature())
            holder._judge_id = before
            if hasattr(holder, "_judge_kind"):
                holder._judge_kind = kind_before


def cases() -> dict[str, str]:
    from evalsuite.registry import Registry

    reg = Registry()
    reg.load_all()
    out: dict[str, str] = {}
    for name in sorted(reg.tasks):
        try:
            task = reg.task(name).factory()
            metrics = list(task.metrics())
        except Exception as exc:  # a task that cannot be built without data: its metrics are rendered elsewhere
            out[f"task:{name}"] = f"unbuildable: {type(exc).__name__}"
            continue
        for i, m in enumerate(metrics):
            for suffix, sig in _renders(m):
                out[f"task:{name}#{i}:{m.name}{suffix}"] = sig
    for name in sorted(reg.metrics):
        if name in ("comet", "cometkiwi"):
            factory = reg.metric(name)
            m = factory(model="some/model")
        else:
            try:
                m = reg.metric(name)()
            except Exception as exc:
                out[f"metric:{name}"] = f"unbuildable: {type(exc).__name__}"
                continue
        for suffix, sig in _renders(m):
            out[f"metric:{name}{suffix}"] = sig
    try:
        from evalsuite.metrics.sacrebleu_metrics import BLEU, CHRF
        from evalsuite.types import Generation, Record, Sample
    except ImportError:  # pragma: no cover
        return {k: normalized(v) for k, v in out.items()}
    recs = [Record(Sample(id=str(i), index=i, input=None, target=r, metadata={"target_lang": "zh"}), h,
                   Generation(h, "stop"))
            for i, (h, r) in enumerate([("猫坐在垫子上", "猫坐在垫子上"), ("今天天气很好", "今天天气不错")])]
    for key, m in (("zh", BLEU(target_lang="zh")), ("zh", CHRF(target_lang="zh")),
                   ("zh:beta1", CHRF(target_lang="zh", beta=1)), ("tok:char", BLEU(tokenize="char"))):
        m.score(recs)
        out[f"scored:{m.name}:{key}"] = m.signature()
    from evalsuite.metrics.comet import Comet

    comet = Comet(model="Unbabel/wmt22-comet-da")
    comet.run = lambda payload: {  # the COMET worker's reply, without the worker
        "scores": [0.5] * len(payload), "versions": {"unbabel-comet": "2.2.2"},
        "model": {"name": "Unbabel/wmt22-comet-da", "revision": "abc123", "class": "RegressionMetric",
                  "requires_references": True}}
    comet.score([Record(Sample(id="0", index=0, input=None, target="猫", metadata={"source": "cat"}), "猫",
                        Generation("猫", "stop"))])
    out["scored:comet"] = comet.signature()
    return {k: normalized(v) for k, v in out.items()}


if __name__ == "__main__":
    found = cases()
    if "--write" in sys.argv:
        old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        changed = [k for k in old if k in found and found[k] != old[k]]
        if changed:
            sys.exit(f"refusing to change recorded signatures: {changed[:5]}")
        GOLDEN.write_text(json.dumps({**found, **old}, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(json.dumps(found, indent=1, ensure_ascii=False))
