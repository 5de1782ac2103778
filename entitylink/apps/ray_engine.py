"""Annotation on Ray (``entitylink annotate --engine ray``; ``pip install 'entitylink[ray]'``).

Each Ray actor opens the index, the tagger and the encoder once and annotates blocks of documents; the
driver reads the input, sends each block to the least busy actor (a bounded number in flight each), and
yields the entities in input order, so the output is the single-process run's. The actors are
restartable and their calls retried: a worker that dies mid-run is replaced and its blocks annotated
again, so no document is lost or written twice. With no address Ray starts inside this process on this
machine (the embedded default); with one it joins that cluster.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator

from ..errors import EntityLinkError

logger = logging.getLogger(__name__)

DEFAULT_BLOCK = 32  # documents per call
IN_FLIGHT = 2  # blocks queued per actor: one annotated while the next waits
BUFFERED = 8  # annotated blocks per actor that may wait for an earlier one before the output


class _AnnotatorWorker:
    """One Ray actor: an Annotator opened from the ``annotate`` command's arguments."""

    def __init__(self, args: argparse.Namespace, threads: int):
        import torch

        from .cli import _annotator

        torch.set_num_threads(threads)
        self.annotator = _annotator(args)
        self.texts = 0  # annotated so far by this actor

    def pid(self) -> int:
        return os.getpid()

    def annotate(self, texts: list[str]) -> list:
        self.texts += len(texts)
        return list(self.annotator.annotate(texts))


class RayAnnotator:
    """Annotates documents on Ray actors, in input order.

    Args:
        args: the ``annotate`` command's arguments (index, tagger, detection settings, encoder options):
            each actor opens its own Annotator from them.
        address: a Ray cluster to join (``None``: start Ray on this machine, inside this process).
        workers: actors (default: one per CPU Ray sees); each runs its encoder on
            ``threads_per_worker`` threads (default: this machine's CPUs / workers, at least 1).
        block: documents per call.
    """

    def __init__(self, args: argparse.Namespace, *, address: str | None = None, workers: int | None = None,
                 block: int = DEFAULT_BLOCK, threads_per_worker: int | None = None):
        try:
            import ray
        except ImportError:
            raise EntityLinkError("--engine ray needs Ray: pip install 'entitylink[ray]'") from None
        if workers is not None and workers < 1:
            raise EntityLinkError(f"--workers must be at least 1, not {workers}")
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            options = {"address": address} if address else {"num_cpus": max(os.cpu_count() or 1, workers or 1)}
            try:
                ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, **options)
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise EntityLinkError(f"--address {address}: cannot join the Ray cluster ({err})") from None
        cpus = int(ray.available_resources().get("CPU", 1)) or 1
        self.workers = workers or cpus
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // self.workers)
        remote = ray.remote(num_cpus=min(1, cpus / self.workers), max_restarts=-1, max_task_retries=-1)
        self.actors = [remote(_AnnotatorWorker).remote(args, threads) for _ in range(self.workers)]
        self.block = block

    def annotate(self, texts: Iterable[str]) -> Iterator[list]:
        """The entities of each text, in input order.

        Each block goes to the actor with the fewest blocks in flight, so a slow or restarting actor
        holds back only its own blocks while the others go on, up to ``BUFFERED`` blocks per actor
        waiting to be written behind the one the output waits for.
        """
        ray = self._ray
        pending: deque = deque()  # calls in input order
        running: dict = {}  # call -> actor, for calls not yet seen to end

        def settle(wait: bool) -> None:
            if running:
                done, _ = ray.wait(list(running), num_returns=1 if wait else len(running),
                                   timeout=None if wait else 0)
                for call in done:
                    del running[call]

        def least_busy() -> int:
            load = [0] * len(self.actors)
            for actor in running.values():
                load[actor] += 1
            return load.index(min(load)) if min(load) < IN_FLIGHT else -1

        def submit(block: list[str]) -> None:
            settle(wait=False)
            while (actor := least_busy()) < 0:
                settle(wait=True)
            call = self.actors[actor].annotate.remote(block)
            running[call] = actor
            pending.append(call)

        def ready(limit: int) -> Iterator[list]:
            while pending and (len(pending) > limit or pending[0] not in running):
                call = pending.popleft()
                running.pop(call, None)
                yield from ray.get(call)

        limit = BUFFERED * len(self.actors)
        block: list[str] = []
        for text in texts:
            block.append(text)
            if len(block) == self.block:
                submit(block)
                block = []
                yield from ready(limit)
        if block:
            submit(block)
        yield from ready(0)

    def close(self) -> None:
        """End the actors (and Ray, if this object started it)."""
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []
        if self._started:
            self._ray.shutdown()
