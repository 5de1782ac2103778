"""HTTP linking service: FastAPI app with micro-batching, a small web page, and the ``serve`` command.

    entitylink serve --index hpo-index --port 8000
    curl -s localhost:8000/link -H 'content-type: application/json' -d '{"mentions": ["heart attack"], "k": 3}'

Endpoints: ``POST /link``, ``POST /annotate``, ``GET /health``, ``GET /info``, ``GET /`` (the page) and
``GET /docs`` (OpenAPI). Concurrent ``/link`` requests are grouped into one encoder call: each request
waits at most ``batch_window_ms`` for others to join its batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from . import __version__
from .linker import Candidate, Linker
from .serve_settings import ServiceSettings

logger = logging.getLogger(__name__)


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mentions: list[str] = Field(description="mentions to link")
    k: int = Field(5, gt=0, description="concepts per mention")


class AnnotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="free text; entities are found by the spaCy pipeline, then linked")
    k: int = Field(5, gt=0)


class ServiceError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


class MicroBatcher:
    """Groups concurrent link calls into one ``Linker.link`` call run in a worker thread."""

    def __init__(self, linker: Linker, window_ms: float, max_batch: int):
        self.linker, self.window, self.max_batch = linker, window_ms / 1000, max_batch
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.calls = 0  # encoder calls made, for tests and /info

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()

    async def link(self, mentions: list[str], k: int) -> list[list[Candidate]]:
        assert self.queue is not None, "batcher not started"
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((mentions, k, future))
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
            mentions = [m for item in batch for m in item[0]]
            k = max(item[1] for item in batch)
            try:
                self.calls += 1
                results = await asyncio.to_thread(self.linker.link, mentions, k=k) if mentions else []
            except Exception as err:  # noqa: BLE001 - every waiting request learns of the failure
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            start = 0
            for item_mentions, item_k, future in batch:
                part = [r[:item_k] for r in results[start : start + len(item_mentions)]]
                start += len(item_mentions)
                if not future.done():
                    future.set_result(part)


def dictionary_pipeline(linker: Linker, min_length: int = 3, max_patterns: int = 200_000):
    """A spaCy pipeline that finds dictionary names in text (phrase matching, case-insensitive) and links them."""
    import spacy

    from .spacy_component import EntityLinkerComponent  # noqa: F401 - registers the factory

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    names = sorted({n for n in linker.index.names if len(n) >= min_length})[:max_patterns]
    ruler.add_patterns([{"label": "CONCEPT", "pattern": name} for name in names])
    component = nlp.add_pipe("entitylink", config={"threshold": 0.0, "k": linker.k})
    component._linker = linker
    return nlp


def create_app(linker: Linker, nlp=None, settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI application linking with ``linker`` (and annotating with ``nlp`` if given)."""
    settings = settings or ServiceSettings()
    batcher = MicroBatcher(linker, settings.batch_window_ms, settings.max_batch)
    state: dict[str, Any] = {"nlp": nlp, "started": time.time(), "requests": 0}
    name_of: dict[str, str] = {}
    for cid, name in zip(linker.index.concept_ids, linker.index.names):
        name_of.setdefault(cid, name)

    async def lifespan(app: FastAPI):
        if settings.micro_batching:
            await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="entitylink", version=__version__, lifespan=lifespan,
                  description="Biomedical entity linking: mentions or free text to ontology concept ids.")
    app.state.batcher = batcher
    app.state.settings = settings

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, err: ServiceError):
        return JSONResponse(status_code=err.status, content={"error": err.message})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in err.errors()]
        return JSONResponse(status_code=422, content={"error": "invalid request", "details": problems})

    def check_k(k: int) -> None:
        if k > settings.max_k:
            raise ServiceError(422, f"k must be at most {settings.max_k}")

    async def link(mentions: list[str], k: int) -> list[list[Candidate]]:
        if settings.micro_batching:
            return await batcher.link(mentions, k)
        batcher.calls += 1
        return await asyncio.to_thread(linker.link, mentions, k=k)

    @app.post("/link", summary="Top-k concepts for each mention")
    async def link_endpoint(request: LinkRequest) -> dict:
        check_k(request.k)
        if len(request.mentions) > settings.max_mentions:
            raise ServiceError(
                413, f"at most {settings.max_mentions} mentions per request, got {len(request.mentions)}"
            )
        too_long = [i for i, m in enumerate(request.mentions) if len(m) > settings.max_mention_length]
        if too_long:
            raise ServiceError(413, f"mention {too_long[0]} is longer than {settings.max_mention_length} characters")
        state["requests"] += 1
        results = await link(request.mentions, request.k)
        return {"results": [{"mention": m, "candidates": [c._asdict() for c in cands]}
                            for m, cands in zip(request.mentions, results)]}

    @app.post("/annotate", summary="Entities of a text, each with its top-k concepts")
    async def annotate_endpoint(request: AnnotateRequest) -> dict:
        check_k(request.k)
        if state["nlp"] is None:
            raise ServiceError(503, "no spaCy pipeline: start the server with --pipeline, or use /link")
        if len(request.text) > settings.max_text_length:
            raise ServiceError(413, f"text longer than {settings.max_text_length} characters ({len(request.text)})")
        state["requests"] += 1
        doc = await asyncio.to_thread(state["nlp"], request.text)
        entities = [{
            "start": ent.start_char, "end": ent.end_char, "text": ent.text, "label": ent.label_,
            "kb_id": ent.kb_id_ or None,
            "candidates": [{"concept_id": cid, "score": score,
                            "name": name_of.get(cid)} for cid, score in ent._.kb_ents[: request.k]],
        } for ent in doc.ents]
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
            "normalizer": linker.index.normalizer.to_dict(), "annotate": state["nlp"] is not None,
            "limits": {"max_mentions": settings.max_mentions, "max_text_length": settings.max_text_length,
                       "max_k": settings.max_k},
            "micro_batching": settings.micro_batching, "encoder_calls": batcher.calls,
            "requests": state["requests"], "uptime_s": round(time.time() - state["started"], 1),
        }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return resources.files("entitylink").joinpath("static/index.html").read_text(encoding="utf-8")

    return app


def serve(index: str | Path, *, pipeline: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
          settings: ServiceSettings | None = None, k: int = 5, precision: str = "auto",
          dictionary_ner: bool = True) -> None:
    """Load the index (and pipeline) and run the service with uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    linker = Linker.load(index, k=k, precision=precision)
    nlp = None
    if pipeline:
        import spacy

        nlp = spacy.load(pipeline)
    elif dictionary_ner:
        nlp = dictionary_pipeline(linker)
    app = create_app(linker, nlp, settings)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=30)
