"""HTTP linking service: FastAPI app with micro-batching, a small web page, and the ``serve`` command.

    entitylink serve --index hpo-index --port 8000
    curl -s localhost:8000/link -H 'content-type: application/json' -d '{"mentions": ["heart attack"], "k": 3}'

Endpoints: ``POST /link``, ``POST /annotate``, ``GET /health``, ``GET /info``, ``GET /`` (the page) and
``GET /docs`` (OpenAPI). Concurrent requests are grouped into one encoder call: each request waits at
most ``batch_window_ms`` for others to join its batch. Both endpoints link through the one
:class:`~entitylink.link.linker.Linker` and its policy (k, threshold, abbreviations) as saved with the
index or overridden on the command line; a request may ask for another ``k`` up to ``max_k``.

Every model call of the service runs in one thread, the one the index was loaded in (:func:`encoder_thread`):
PyTorch's OpenMP threads, driven from a second thread, form a second team, and once libgomp manages more
threads than there are cores it stops spinning between parallel regions; on 2 cores every encoder call then
ran about 1.5x slower, in both threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    windows: list[tuple[str, str] | None] | None = Field(
        None, description="each mention's text before and after it, [left, right] (or null), read by a reranker "
                          "trained with context")


class AnnotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="free text; entities are found by the spaCy pipeline, then linked")
    k: int | None = Field(None, gt=0, description="concepts per entity (default: the linking policy's)")


class ServiceError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def encoder_thread() -> ThreadPoolExecutor:
    """The one thread that runs the service's model calls (load the linker in it too: see the module docs)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="entitylink-encoder")


@dataclass
class _Links:
    """A request's mentions to link, and where its answer goes."""

    mentions: list[str]
    k: int
    contexts: list[str | None]
    windows: list[tuple[str, str] | None]
    key: tuple[float | None, bool]  # (threshold, rerank): requests differing here are linked in their own call
    future: asyncio.Future

    @property
    def size(self) -> int:
        return len(self.mentions)


@dataclass
class _Text:
    """A request's text to annotate, and where its entities go."""

    text: str
    future: asyncio.Future
    size: int = 1


class MicroBatcher:
    """Groups concurrent requests into one call run in the encoder thread: the mentions of ``/link`` requests
    into one ``Linker.link`` call, the texts of ``/annotate`` requests into one ``Annotator.annotate`` call
    (which links each distinct span of them once).

    A failed call fails every request of its batch with the same error; the batcher goes on. The thread is
    not one of the event loop's pool, so a batch never waits for a pool thread that requests hold.

    Args:
        window_ms: the longest a ``/link`` request waits for others to join its batch (a text to annotate
            waits for none); requests that arrive while the encoder thread is busy join the next batch.
        max_batch: the most mentions (or texts) in one call.
        thread: the encoder thread (:func:`encoder_thread`); default: one of the batcher's own, from
            :meth:`start` to :meth:`stop`.
        annotator: annotates the texts of :meth:`annotate` (an :class:`~entitylink.link.annotate.Annotator`
            linking with ``linker``).
    """

    def __init__(self, linker: Linker, window_ms: float, max_batch: int, thread: ThreadPoolExecutor | None = None,
                 annotator: Any = None):
        self.linker, self.window, self.max_batch = linker, window_ms / 1000, max_batch
        self.annotator = annotator
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.calls = 0  # model calls made (link or annotate), for tests and /info
        self.thread, self._own_thread = thread, thread is None

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        if self.thread is None:
            self.thread = encoder_thread()
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop taking requests and wait until the worker has ended."""
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.task = None
        if self._own_thread and self.thread is not None:
            self.thread.shutdown(wait=False)
            self.thread = None

    async def link(self, mentions: list[str], k: int, contexts: list[str | None] | None = None,
                   threshold: float | None = None, rerank: bool = True,
                   windows: list[tuple[str, str] | None] | None = None) -> list[list[Candidate]]:
        """Candidates of the mentions, linked together with the other requests waiting; ``threshold``,
        ``rerank`` and ``windows`` as for :meth:`Linker.link`."""
        assert self.queue is not None, "batcher not started"
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Links(mentions, k, contexts or [None] * len(mentions),
                                    windows or [None] * len(mentions), (threshold, rerank), future))
        return await future

    async def annotate(self, text: str) -> list:
        """The annotator's entities of ``text``, annotated together with the other texts waiting."""
        assert self.queue is not None, "batcher not started"
        if self.annotator is None:
            raise ValueError("this batcher has no annotator")
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Text(text, future))
        return await future

    async def _run(self) -> None:
        assert self.queue is not None
        while True:
            batch = [await self.queue.get()]
            size = batch[0].size
            # a text's spans already fill an encoder call: it goes at once, with whatever else waits
            deadline = time.perf_counter() + (self.window if isinstance(batch[0], _Links) else 0.0)
            while size < self.max_batch:
                try:  # whatever arrived while the last batch ran joins at once
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    timeout = deadline - time.perf_counter()
                    if timeout <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), timeout)
                    except asyncio.TimeoutError:
                        break
                batch.append(item)
                size += item.size
            groups: dict[tuple, list] = {}
            for item in batch:
                groups.setdefault(item.key if isinstance(item, _Links) else "annotate", []).append(item)
            for key, group in groups.items():
                if key == "annotate":
                    texts = [item.text for item in group]
                    results = await self._call(group, lambda texts=texts: list(self.annotator.annotate(texts)))
                else:
                    results = await self._link_group(group, *key)
                for item, result in zip(group, results or ()):
                    if not item.future.done():
                        item.future.set_result(result)

    async def _call(self, group: list, call) -> list | None:
        """``call()`` in the encoder thread; a failure is given to every request of the group (and None returned)."""
        try:
            self.calls += 1
            return await asyncio.get_running_loop().run_in_executor(self.thread, call)
        except Exception as err:  # noqa: BLE001 - every waiting request learns of the failure
            for item in group:
                if not item.future.done():
                    item.future.set_exception(err)
            return None

    async def _link_group(self, group: list[_Links], threshold: float | None, rerank: bool) -> list | None:
        """Each request's candidates, from one ``Linker.link`` call for the group's mentions."""
        mentions = [m for item in group for m in item.mentions]
        if not mentions:
            return [[] for _ in group]
        windows = [w for item in group for w in item.windows]
        call = functools.partial(self.linker.link, mentions, k=max(item.k for item in group),
                                 contexts=[c for item in group for c in item.contexts], threshold=threshold,
                                 rerank=rerank, windows=windows if any(windows) else None)
        results = await self._call(group, call)
        if results is None:
            return None
        out, start = [], 0
        for item in group:
            out.append([r[: item.k] for r in results[start : start + item.size]])
            start += item.size
        return out


def _linking_components(nlp) -> list[str]:
    """Names of entitylink components in a pipeline: the service links itself, so they are skipped."""
    from .spacy_component import EntityLinkerComponent

    return [name for name, component in nlp.pipeline if isinstance(component, EntityLinkerComponent)]


def create_app(linker: Linker, nlp=None, settings: ServiceSettings | None = None, annotator=None,
               thread: ThreadPoolExecutor | None = None) -> FastAPI:
    """The FastAPI application linking with ``linker``; ``/annotate`` finds mentions with the spaCy pipeline
    ``nlp`` if given, else with ``annotator`` (an :class:`~entitylink.link.annotate.Annotator`). ``thread``
    runs every model call (:func:`encoder_thread`, best the one ``linker`` was loaded in; default: a new one)."""
    settings = settings or ServiceSettings()
    own_thread = thread is None
    thread = thread or encoder_thread()
    batcher = MicroBatcher(linker, settings.batch_window_ms, settings.max_batch, thread, annotator)
    state: dict[str, Any] = {"nlp": nlp, "annotator": annotator, "started": time.time(), "requests": 0,
                             "skip": _linking_components(nlp) if nlp is not None else []}

    async def lifespan(app: FastAPI):
        if settings.micro_batching:
            await batcher.start()
        yield
        await batcher.stop()
        if own_thread:
            thread.shutdown(wait=False)

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

    async def link(mentions: list[str], k: int, contexts: list[str | None] | None = None,
                   windows: list[tuple[str, str] | None] | None = None) -> list[list[Candidate]]:
        if settings.micro_batching:
            return await batcher.link(mentions, k, contexts, windows=windows)
        batcher.calls += 1
        return await asyncio.get_running_loop().run_in_executor(
            thread, functools.partial(linker.link, mentions, k=k, contexts=contexts, windows=windows))

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
        if request.windows is not None and len(request.windows) != len(request.mentions):
            raise ServiceError(422, f"{len(request.windows)} windows for {len(request.mentions)} mentions")
        if any(w is not None and len(w[0]) + len(w[1]) > settings.max_text_length for w in request.windows or ()):
            raise ServiceError(413, f"a window is longer than {settings.max_text_length} characters")
        state["requests"] += 1
        windows = [tuple(w) if w is not None else None for w in request.windows] if request.windows else None
        results = await link(request.mentions, k, windows=windows)
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
            found = await batcher.annotate(request.text) if settings.micro_batching else \
                await asyncio.get_running_loop().run_in_executor(thread, state["annotator"].annotate_one, request.text)
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
    thread = encoder_thread()
    linker = thread.submit(functools.partial(Linker.load, index, precision=precision, **policy)).result()
    linker.policy = linker.policy.override(**annotation)
    nlp, annotator = None, None
    if pipeline:
        import spacy

        nlp = spacy.load(pipeline)
    elif detector is not None:
        from ..link.annotate import Annotator

        annotator = Annotator(linker, detector=detector)
    app = create_app(linker, nlp, settings, annotator=annotator, thread=thread)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=30)
