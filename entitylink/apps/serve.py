"""HTTP linking service: FastAPI app with micro-batching, a small web page, and the ``serve`` command.

    entitylink serve --index hpo-index --port 8000
    curl -s localhost:8000/link -H 'content-type: application/json' -d '{"mentions": ["heart attack"], "k": 3}'

Endpoints: ``POST /link``, ``POST /annotate``, ``GET /health``, ``GET /info``, ``GET /`` (the page) and
``GET /docs`` (OpenAPI). Concurrent requests are grouped into one encoder call: each request waits at
most ``batch_window_ms`` for others to join its batch. Both endpoints link through the one
:class:`~entitylink.link.linker.Linker` and its policy (k, threshold, abbreviations) as saved with the
index or overridden on the command line; a request may ask for another ``k`` up to ``max_k``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import require

require("fastapi", "entitylink serve", "pip install 'entitylink[serve]'")

from fastapi import FastAPI, Request  # noqa: E402 - after the check that names the missing extra
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import HTMLResponse, JSONResponse  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from .._version import __version__  # noqa: E402
from ..link.linker import Candidate, Linker  # noqa: E402
from ..model.defaults import DEFAULT_PRECISION  # noqa: E402
from .settings import ServiceSettings  # noqa: E402

logger = logging.getLogger(__name__)


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mentions: list[str] = Field(description="mentions to link")
    k: int | None = Field(None, gt=0, description="concepts per mention (default: the linking policy's)")


class AnnotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="free text; entities are found by the spaCy pipeline, then linked")
    k: int | None = Field(None, gt=0, description="concepts per entity (default: the linking policy's)")


class ServiceError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


class MicroBatcher:
    """Groups concurrent link calls into one ``Linker.link`` call run in the batcher's own thread.

    A failed call fails every request of its batch with the same error; the batcher goes on. The thread is
    its own, not the event loop's pool: ``/annotate`` requests wait on the batcher from threads of that pool,
    and when they took every thread, a batch would wait for a thread that none of them gives back.
    """

    def __init__(self, linker: Linker, window_ms: float, max_batch: int):
        self.linker, self.window, self.max_batch = linker, window_ms / 1000, max_batch
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.calls = 0  # encoder calls made, for tests and /info
        self._thread: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="entitylink-batcher")
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop taking requests and wait until the worker has ended."""
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.task = None
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

    async def link(self, mentions: list[str], k: int, contexts: list[str | None] | None = None,
                   threshold: float | None = None, rerank: bool = True,
                   windows: list[tuple[str, str] | None] | None = None) -> list[list[Candidate]]:
        """Candidates of the mentions, linked together with the other requests waiting; ``threshold``,
        ``rerank`` and ``windows`` as for :meth:`Linker.link` (requests with other values of the first two are
        linked in their own call)."""
        assert self.queue is not None, "batcher not started"
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((mentions, k, contexts or [None] * len(mentions), future, (threshold, rerank),
                              windows or [None] * len(mentions)))
        return await future

    async def _run(self) -> None:
        assert self.queue is not None
        while True:
            first = await self.queue.get()
            batch, size = [first], len(first[0])
            deadline = time.perf_counter() + self.window
            while size < self.max_batch:
                timeout = deadline - time.perf_counter()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                batch.append(item)
                size += len(item[0])
            groups: dict[tuple, list] = {}
            for item in batch:
                groups.setdefault(item[4], []).append(item)
            for (threshold, rerank), group in groups.items():
                await self._link_group(group, threshold, rerank)

    async def _link_group(self, group: list, threshold: float | None, rerank: bool) -> None:
        mentions = [m for item in group for m in item[0]]
        contexts = [c for item in group for c in item[2]]
        windows = [w for item in group for w in item[5]]
        k = max(item[1] for item in group)
        try:
            self.calls += 1
            call = functools.partial(self.linker.link, mentions, k=k, contexts=contexts, threshold=threshold,
                                     rerank=rerank, windows=windows if any(windows) else None)
            results = await asyncio.get_running_loop().run_in_executor(self._thread, call) if mentions else []
        except Exception as err:  # noqa: BLE001 - every waiting request learns of the failure
            for item in group:
                if not item[3].done():
                    item[3].set_exception(err)
            return
        start = 0
        for item_mentions, item_k, _, future, _, _ in group:
            part = [r[:item_k] for r in results[start : start + len(item_mentions)]]
            start += len(item_mentions)
            if not future.done():
                future.set_result(part)


class BatchedLinker:
    """A linker whose ``link`` calls go through a :class:`MicroBatcher`: an :class:`Annotator` running in a
    worker thread then shares the one encoder with ``/link`` (its other calls, such as ``link_within``, go to
    the linker itself; ``Encoder.encode`` lets one thread at a time use the encoder)."""

    def __init__(self, linker: Linker, batcher: MicroBatcher, loop: asyncio.AbstractEventLoop):
        self._linker, self._batcher, self._loop = linker, batcher, loop

    def __getattr__(self, name: str):
        return getattr(self._linker, name)

    def link(self, mentions, k: int | None = None, *, threshold: float | None = None, contexts=None,
             rerank: bool = True, windows=None, **_: Any) -> list[list[Candidate]]:
        items = list(mentions)
        call = self._batcher.link(items, k or self._linker.policy.k, list(contexts) if contexts else None,
                                  threshold=threshold, rerank=rerank, windows=list(windows) if windows else None)
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()


def _linking_components(nlp) -> list[str]:
    """Names of entitylink components in a pipeline: the service links itself, so they are skipped."""
    from .spacy_component import EntityLinkerComponent

    return [name for name, component in nlp.pipeline if isinstance(component, EntityLinkerComponent)]


def create_app(linker: Linker, nlp=None, settings: ServiceSettings | None = None, annotator=None) -> FastAPI:
    """The FastAPI application linking with ``linker``; ``/annotate`` finds mentions with the spaCy pipeline
    ``nlp`` if given, else with ``annotator`` (an :class:`~entitylink.link.annotate.Annotator`)."""
    settings = settings or ServiceSettings()
    batcher = MicroBatcher(linker, settings.batch_window_ms, settings.max_batch)
    state: dict[str, Any] = {"nlp": nlp, "annotator": annotator, "started": time.time(), "requests": 0,
                             "skip": _linking_components(nlp) if nlp is not None else []}

    async def lifespan(app: FastAPI):
        if settings.micro_batching:
            await batcher.start()
            if annotator is not None:  # the annotator's encoder calls join /link's batches
                annotator.linker = BatchedLinker(linker, batcher, asyncio.get_running_loop())
        yield
        await batcher.stop()
        if annotator is not None:
            annotator.linker = linker

    app = FastAPI(title="entitylink", version=__version__, lifespan=lifespan,
                  description="Biomedical entity linking: mentions or free text to ontology concept ids.")
    app.state.batcher = batcher
    app.state.settings = settings
    app.state.linker = linker

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, err: ServiceError):
        return JSONResponse(status_code=err.status, content={"error": err.message})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in err.errors()]
        return JSONResponse(status_code=422, content={"error": "invalid request", "details": problems})

    def resolve_k(k: int | None) -> int:
        k = linker.policy.k if k is None else k
        if k > settings.max_k:
            raise ServiceError(422, f"k must be at most {settings.max_k}")
        return k

    async def link(mentions: list[str], k: int, contexts: list[str | None] | None = None) -> list[list[Candidate]]:
        if settings.micro_batching:
            return await batcher.link(mentions, k, contexts)
        batcher.calls += 1
        return await asyncio.to_thread(linker.link, mentions, k=k, contexts=contexts)

    @app.post("/link", summary="Top-k concepts for each mention")
    async def link_endpoint(request: LinkRequest) -> dict:
        k = resolve_k(request.k)
        if len(request.mentions) > settings.max_mentions:
            raise ServiceError(
                413, f"at most {settings.max_mentions} mentions per request, got {len(request.mentions)}"
            )
        too_long = [i for i, m in enumerate(request.mentions) if len(m) > settings.max_mention_length]
        if too_long:
            raise ServiceError(413, f"mention {too_long[0]} is longer than {settings.max_mention_length} characters")
        state["requests"] += 1
        results = await link(request.mentions, k)
        return {"results": [{"mention": m, "candidates": [c._asdict() for c in cands]}
                            for m, cands in zip(request.mentions, results)]}

    @app.post("/annotate", summary="Entities of a text, each with its top-k concepts")
    async def annotate_endpoint(request: AnnotateRequest) -> dict:
        k = resolve_k(request.k)
        if state["nlp"] is None and state["annotator"] is None:
            raise ServiceError(503, "no mention detector: start the server with --pipeline or the dictionary "
                                    "detector, or use /link")
        if len(request.text) > settings.max_text_length:
            raise ServiceError(413, f"text longer than {settings.max_text_length} characters ({len(request.text)})")
        state["requests"] += 1
        if state["nlp"] is None:
            found = await asyncio.to_thread(state["annotator"].annotate_one, request.text)
            return {"text": request.text, "entities": [{
                "start": e.start, "end": e.end, "text": e.text, "label": "ENTITY", "kb_id": e.concept_id,
                "concept_id": e.concept_id, "score": e.score, "source": e.source,
                "candidates": [c._asdict() for c in e.candidates[:k]],
            } for e in found]}
        doc = await asyncio.to_thread(state["nlp"], request.text, disable=state["skip"])
        ents = list(doc.ents)
        results = await link([ent.text for ent in ents], k, [request.text] * len(ents)) if ents else []
        entities = [{
            "start": ent.start_char, "end": ent.end_char, "text": ent.text, "label": ent.label_,
            "kb_id": candidates[0].concept_id if candidates else None,
            "candidates": [c._asdict() for c in candidates],
        } for ent, candidates in zip(ents, results)]
        return {"text": request.text, "entities": entities}

    @app.get("/health", summary="Liveness")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/info", summary="Model, index and service settings")
    async def info() -> dict:
        meta = getattr(linker.index, "meta", {})
        return {
            "entitylink": __version__, "model": meta.get("encoder", {}), "entries": len(linker.index),
            "concept_ids": meta.get("n_concepts"), "ontology": meta.get("ontology"), "built": meta.get("built"),
            "normalizer": linker.index.normalizer.to_dict(),
            "annotate": state["nlp"] is not None or state["annotator"] is not None,
            "policy": linker.policy.to_dict(),
            "limits": {"max_mentions": settings.max_mentions, "max_text_length": settings.max_text_length,
                       "max_k": settings.max_k},
            "micro_batching": settings.micro_batching, "encoder_calls": batcher.calls,
            "requests": state["requests"], "uptime_s": round(time.time() - state["started"], 1),
        }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    return app


def serve(index: str | Path, *, pipeline: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
          settings: ServiceSettings | None = None, precision: str = DEFAULT_PRECISION,
          detector: str | None = "dictionary", **policy: Any) -> None:
    """Load the index (and pipeline) and run the service with uvicorn until SIGINT/SIGTERM.

    ``policy`` settings (``k``, ``threshold``, ``abbreviations``) override those saved with the index.
    ``/annotate`` runs ``pipeline`` (a spaCy pipeline directory) if given, else the :class:`Annotator`'s
    ``detector`` (``"dictionary"``, ``"exact"``; ``None``: no ``/annotate``).
    """
    require("uvicorn", "entitylink serve", "pip install 'entitylink[serve]'")
    import uvicorn

    from ..link.policy import ANNOTATION_SETTINGS

    annotation = {key: policy.pop(key, None) for key in ANNOTATION_SETTINGS}
    linker = Linker.load(index, precision=precision, **policy)
    linker.policy = linker.policy.override(**annotation)
    nlp, annotator = None, None
    if pipeline:
        import spacy

        nlp = spacy.load(pipeline)
    elif detector is not None:
        from ..link.annotate import Annotator

        annotator = Annotator(linker, detector=detector)
    app = create_app(linker, nlp, settings, annotator=annotator)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=30)
