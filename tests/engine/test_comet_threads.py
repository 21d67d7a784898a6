"""The COMET worker's CPU thread choice (no comet needed): one thread for a small encoder, torch's default
for a large one, an explicit count when asked, and the option reaching the worker request."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from evalsuite.metrics import _comet_worker as worker
from evalsuite.metrics.comet import Comet


def _model(hidden: int | None, via_config: bool = False):
    if via_config:
        return SimpleNamespace(encoder=SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(hidden_size=hidden))))
    return SimpleNamespace(encoder=SimpleNamespace(output_units=hidden))


def test_cpu_threads_rule():
    assert worker.cpu_threads(_model(32)) == 1  # the tiny test checkpoint
    assert worker.cpu_threads(_model(384, via_config=True)) == 1
    assert worker.cpu_threads(_model(1024)) is None  # wmt22-comet-da (XLM-R large): torch's default
    assert worker.cpu_threads(_model(None)) is None
    assert worker.cpu_threads(_model(32), 3) == 3 and worker.cpu_threads(_model(1024), "2") == 2
    assert worker.cpu_threads(_model(1024), "auto") is None
    with pytest.raises(worker.WorkerError):
        worker.cpu_threads(_model(32), 0)


def test_threads_option_reaches_the_request(monkeypatch):
    monkeypatch.setenv("EVALSUITE_COMET_THREADS", "2")
    m = Comet(model="/no/such.ckpt")
    monkeypatch.setattr(m, "_resolved_model", lambda: ("/no/such.ckpt", True))
    assert m.request([])["threads"] == 2
    assert Comet(model="/x.ckpt", threads="auto").threads is None
    from evalsuite.errors import UserError

    with pytest.raises(UserError):
        Comet(model="/x.ckpt", threads="many")
