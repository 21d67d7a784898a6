"""Data parallel on Ray: N long-lived actors, each holding one warm backend, fed from one queue.

``evalsuite run --workers N [--ray-address ADDR]`` wraps the selected backend in a :class:`RayPool`.
To the runner the pool is a backend like any other (same ``id``, so request keys, resume and results
are those of a one-process run); underneath:

* N actors are started once for the run, each building the backend through the registry exactly as
  the runner would (a vLLM engine per GPU or per tensor-parallel group, an HF model, an API client...).
* The driver keeps the queue of pending requests and hands a free actor the next chunk, sized by
  guided self-scheduling (``ceil(remaining / 2N)``, at most the backend's ``batch_size``, at least
  ``ceil(batch_size / N)``): big chunks while much is left, small ones at the end, so long and short
  items balance across workers.
* Each actor streams every generation back the moment its backend finishes it (a Ray streaming
  generator over the backend's ``generate_iter``); the runner persists it before taking the next.
* A worker that dies (process killed, node lost) has the requests of its chunk that had not come back
  put at the front of the queue for the others, and a replacement actor is started (at most N
  replacements per run). Every request is yielded exactly once. If no worker is left, the remaining
  requests come back as failed generations (a resumed run retries them), not as a crash.

Workers on a local cluster split this machine's cores (``torch.set_num_threads``). GPUs per worker:
``EVALSUITE_RAY_GPUS_PER_WORKER`` (default 0 on CPU-only clusters, else 1); for tensor parallelism give
each worker as many GPUs as ``-B tensor_parallel_size``. Ray is imported only when the pool is built.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from typing import Any, Iterator, Mapping, Sequence

from ..errors import UserError
from ..types import Generation, Request
from ..backends import DEFAULT_BATCH, BaseBackend
from ..contracts import Batched, PlanBound, PlanView, Streaming, Timed, Tokenized

INSTALL_HINT = "pip install 'evalsuite[ray]'"


class _Worker:
    """A Ray actor holding one backend for the whole run."""

    def __init__(self, name: str, model: str | None, options: Mapping[str, Any], threads: int | None):
        if threads:
            os.environ["OMP_NUM_THREADS"] = str(threads)
            try:
                import torch

                torch.set_num_threads(threads)
            except ImportError:
                pass
        from ..backends import construct_backend
        from ..registry import default_registry

        self.backend = construct_backend(default_registry().backend(name), name, model, dict(options))

    def info(self) -> dict[str, Any]:
        b = self.backend
        tok = b.tokenizer if isinstance(b, Tokenized) else None
        try:
            import pickle

            pickle.dumps(tok)
        except Exception:  # an engine's tokenizer wrapper that does not travel: the driver loads its own
            tok = "unpicklable"
        batched = isinstance(b, Batched)
        return {"id": b.id, "max_model_len": b.max_model_len if isinstance(b, Tokenized) else None,
                "batch_size": int(b.batch_size) if batched else DEFAULT_BATCH,
                "sort_by_length": bool(b.sort_by_length) if batched else False,
                "describe": b.describe(), "tokenizer": tok, "has_bind": isinstance(b, PlanBound),
                "pid": os.getpid(), "node": _node_ip()}

    def pid(self) -> int:
        return os.getpid()

    def bind(self, plan: PlanView) -> None:
        assert isinstance(self.backend, PlanBound)
        self.backend.bind(plan)

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, dict[str, Any]]]:
        if not isinstance(self.backend, Streaming):  # a chunk is one batch: one generate call
            outs = self.backend.generate(list(requests))
            for i, g in enumerate(outs):
                yield i, g.to_dict()
            return
        for pos, g in self.backend.generate_iter(list(requests)):
            yield pos, g.to_dict()

    def timings(self) -> dict[str, Any] | None:
        return self.backend.timings() if isinstance(self.backend, Timed) else None

    def close(self) -> None:
        self.backend.close()


def _node_ip() -> str | None:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:
        return None


def chunk_size(remaining: int, workers: int, batch_size: int) -> int:
    """Guided self-scheduling: ``ceil(remaining / 2N)`` requests, at most one batch, and never below
    ``ceil(batch / N)`` (nor below a whole batch with one worker), so the end of the queue still
    fills the backend's batches while leaving little for one worker to finish alone."""
    batch = max(1, batch_size)
    floor = batch if workers == 1 else math.ceil(batch / workers)
    return max(1, min(batch, remaining, max(math.ceil(remaining / (2 * workers)), floor)))


class _Chunk:
    __slots__ = ("slot", "positions", "received")

    def __init__(self, slot: int, positions: list[int]):
        self.slot = slot
        self.positions = positions
        self.received: set[int] = set()


class RayPool(BaseBackend, PlanBound, Timed):
    """A backend that spreads requests over N Ray actors, each holding a warm copy of the real backend."""

    actors: list[Any] = []
    """The workers' actors (a dead one is None); empty until they are started."""

    def __init__(self, backend_name: str, model: str | None, options: Mapping[str, Any], workers: int = 1,
                 address: str | None = None, gpus_per_worker: float | None = None):
        try:
            import ray
        except ImportError:
            raise UserError(f"--workers / --ray-address need Ray: {INSTALL_HINT}") from None
        if workers < 1:
            raise UserError("--workers must be at least 1")
        self.ray = ray
        self.name, self.model, self.options = backend_name, model, dict(options)
        self.workers = workers
        self.address = address
        self._started_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=max(os.cpu_count() or 1, workers), **kwargs)
            self._started_ray = True
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        env_gpus = os.environ.get("EVALSUITE_RAY_GPUS_PER_WORKER")
        if gpus_per_worker is None:
            gpus_per_worker = float(env_gpus) if env_gpus else (1.0 if cluster_gpus else 0.0)
        self.gpus_per_worker = gpus_per_worker
        local = not address
        self.threads = max(1, (os.cpu_count() or 1) // workers) if local and not gpus_per_worker else None
        self._remote_cls = ray.remote(_Worker)
        self.max_replacements = workers
        self.replacements = 0
        self.deaths: list[dict[str, Any]] = []
        self._bound: Any = None
        t0 = time.perf_counter()
        self.actors: list[Any] = [self._start() for _ in range(workers)]
        infos = self._get([a.info.remote() for a in self.actors])
        self.load_s = time.perf_counter() - t0
        ids = {i["id"] for i in infos}
        if len(ids) != 1:
            raise UserError(f"workers built different backends: {sorted(ids)} (is every node given the same "
                            f"model files?)")
        first = infos[0]
        self.id = first["id"]
        self.max_model_len = first["max_model_len"]
        self.batch_size = first["batch_size"]
        self.sort_by_length = first["sort_by_length"]
        self._has_bind = first["has_bind"]
        self._inner_describe = first["describe"]
        self.worker_info = [{"pid": i["pid"], "node": i["node"]} for i in infos]
        tok = first["tokenizer"]
        if tok == "unpicklable":
            tok = self._driver_tokenizer()
        self.tokenizer = tok

    # -- actors ---------------------------------------------------------------------------------------
    def _start(self) -> Any:
        opts: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0, "max_concurrency": 2}
        if self.gpus_per_worker:
            opts["num_gpus"] = self.gpus_per_worker
        return self._remote_cls.options(**opts).remote(self.name, self.model, self.options, self.threads)

    def _get(self, refs: Any) -> Any:
        from ray.exceptions import RayTaskError

        try:
            return self.ray.get(refs)
        except RayTaskError as exc:  # the backend raised while being built (bad option, missing model...)
            cause = exc.as_instanceof_cause()
            if isinstance(cause, UserError):
                raise UserError(str(cause).splitlines()[0]) from None
            raise

    def _driver_tokenizer(self) -> Any:
        from pathlib import Path

        from ..tokenizer import load_tokenizer

        if self.model and (Path(self.model).expanduser() / "tokenizer.json").is_file():
            return load_tokenizer(self.model)
        return None

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (tests kill one to check recovery)."""
        return self.ray.get([a.pid.remote() for a in self.actors if a is not None])

    def bind(self, plan: PlanView) -> None:
        if not self._has_bind:
            return
        try:
            self._bound = self.ray.put(PlanView(dict(plan.tasks), dict(plan.samples), plan.partial))
        except Exception as exc:
            raise UserError(f"backend {self.name}: its task data cannot be sent to Ray workers ({exc})") from None
        self.ray.get([a.bind.remote(self._bound) for a in self.actors if a is not None])

    # -- generation -----------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        for pos, g in self.generate_iter(requests):
            out[pos] = g
        return [g if g is not None else Generation.failed("no output") for g in out]

    def generate_iter(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        from ray.exceptions import RayActorError, RayError, RayTaskError

        ray = self.ray
        queue: deque[int] = deque(range(len(requests)))
        inflight: dict[Any, _Chunk] = {}
        done: set[int] = set()
        unanswered: dict[int, int] = {}  # position -> chunks that ended without its generation

        def alive() -> list[int]:
            return [i for i, a in enumerate(self.actors) if a is not None]

        def assign(slot: int) -> None:
            if not queue:
                return
            size = chunk_size(len(queue), max(1, len(alive())), self.batch_size)
            positions = [queue.popleft() for _ in range(min(size, len(queue)))]
            gen = self.actors[slot].run.options(num_returns="streaming").remote([requests[p] for p in positions])
            inflight[gen] = _Chunk(slot, positions)

        def feed() -> None:
            """Give every live worker without a chunk the next one (replacements and idle survivors)."""
            busy = {c.slot for c in inflight.values()}
            for slot in alive():
                if queue and slot not in busy:
                    assign(slot)

        def lost(gen: Any, chunk: _Chunk, exc: BaseException) -> None:
            del inflight[gen]
            back = [p for p in chunk.positions if p not in chunk.received and p not in done]
            queue.extendleft(reversed(back))
            if self.actors[chunk.slot] is not None:
                self.deaths.append({"slot": chunk.slot, "requeued": len(back), "error": type(exc).__name__})
                self.actors[chunk.slot] = None
                if self.replacements < self.max_replacements:
                    self.replacements += 1
                    self.actors[chunk.slot] = self._start()
                    if self._bound is not None:
                        try:
                            self.ray.get(self.actors[chunk.slot].bind.remote(self._bound))
                        except RayError as exc2:  # the replacement itself did not come up
                            self.deaths.append({"slot": chunk.slot, "requeued": 0, "error": type(exc2).__name__})
                            self.actors[chunk.slot] = None
            feed()  # a worker that had gone idle takes the re-queued requests too

        feed()
        try:
            while inflight:
                ready, _ = ray.wait(list(inflight), num_returns=1)
                gen = ready[0]
                chunk = inflight[gen]
                try:
                    ref = next(gen)
                except StopIteration:
                    del inflight[gen]
                    back = [p for p in chunk.positions if p not in chunk.received and p not in done]
                    for p in back:
                        unanswered[p] = unanswered.get(p, 0) + 1
                    # a skipped request (or a lost result) is tried again, at most three times in all
                    queue.extendleft(reversed([p for p in back if unanswered[p] < 3]))
                    for p in back:
                        if unanswered[p] >= 3:
                            done.add(p)
                            yield p, Generation.failed("the backend ended three chunks without answering "
                                                       "this request")
                    feed()
                    continue
                except RayActorError as exc:
                    lost(gen, chunk, exc)
                    continue
                try:
                    local, gd = ray.get(ref)
                except RayActorError as exc:
                    lost(gen, chunk, exc)
                    continue
                except RayTaskError as exc:
                    cause = exc.as_instanceof_cause()
                    raise cause from None
                except RayError:
                    # The actor lives but this one result was lost (e.g. ObjectLostError): its position
                    # is not in chunk.received, so it goes back to the queue when the chunk ends.
                    continue
                pos = chunk.positions[local]
                if pos in done:
                    continue
                chunk.received.add(pos)
                done.add(pos)
                yield pos, Generation.from_dict(gd)
                feed()
        finally:
            for gen in list(inflight):
                try:
                    ray.cancel(gen)
                except Exception:
                    pass
        for pos in queue:
            if pos not in done:
                yield pos, Generation.failed("every Ray worker died and the replacement budget is spent; "
                                             "re-run to resume")

    # -- records --------------------------------------------------------------------------------------
    def timings(self) -> dict[str, Any]:
        per_worker = []
        for a in self.actors:
            if a is None:
                continue
            try:
                per_worker.append(self.ray.get(a.timings.remote(), timeout=30))
            except Exception:
                per_worker.append(None)
        return {"workers_load_s": round(self.load_s, 3), "worker_deaths": list(self.deaths),
                "replacements": self.replacements, "per_worker": per_worker}

    def describe(self) -> dict[str, Any]:
        d = dict(self._inner_describe)
        d["executor"] = {"kind": "ray", "ray_version": self.ray.__version__, "workers": self.workers,
                         "address": self.address, "gpus_per_worker": self.gpus_per_worker,
                         "threads_per_worker": self.threads, "worker_nodes": sorted({str(w["node"]) for w in self.worker_info})}
        return d

    def close(self) -> None:
        for a in self.actors:
            if a is None:
                continue
            try:
                self.ray.get(a.close.remote(), timeout=30)
            except Exception:
                pass
            try:
                self.ray.kill(a)
            except Exception:
                pass
        self.actors = []
        if self._started_ray:
            self.ray.shutdown()
