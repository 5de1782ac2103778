"""The HTTP service: endpoints, bad requests, micro-batching, and a real server under faults."""

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from entitylink import DictionaryIndex, Linker, Ontology  # noqa: E402
from entitylink.apps.serve import ServiceSettings, create_app  # noqa: E402
from entitylink.link.annotate import Annotator  # noqa: E402

ONTOLOGY = Ontology.from_pairs([
    ("D009203", "Heart attack"), ("D009203", "Myocardial infarction"), ("D006973", "High blood pressure"),
    ("D006973", "Hypertension"), ("D012640", "Seizures"), ("D004827", "Epilepsy"), ("D013167", "Short stature"),
])


@pytest.fixture
def linker(tiny_encoder):
    return Linker(DictionaryIndex.build(ONTOLOGY, tiny_encoder), k=3)


@pytest.fixture
def client(linker):
    app = create_app(linker, settings=ServiceSettings(max_mentions=10, max_text_length=500),
                     annotator=Annotator(linker, detector="exact"))
    with TestClient(app) as client:
        yield client


def test_health_info_and_page(client):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["entries"] == 7 and info["model"]["pooling"] == "cls" and info["annotate"] is True
    page = client.get("/")
    assert page.status_code == 200 and "<title>entitylink</title>" in page.text
    assert "/link" in client.get("/openapi.json").json()["paths"]


def test_link(client):
    response = client.post("/link", json={"mentions": ["heart attack", "hypertension", ""], "k": 2})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["mention"] for r in results] == ["heart attack", "hypertension", ""]
    assert results[0]["candidates"][0]["concept_id"] == "D009203" and len(results[0]["candidates"]) == 2
    assert results[2]["candidates"] == []
    assert client.post("/link", json={"mentions": []}).json() == {"results": []}


def test_link_passes_each_mention_its_context_window(client, linker, monkeypatch):
    seen = []
    real = linker.link

    def link(mentions, **kwargs):
        seen.append(kwargs.get("windows"))
        return real(mentions, **kwargs)

    monkeypatch.setattr(linker, "link", link)
    body = {"mentions": ["ms", "heart attack"], "windows": [["Relapsing ", " lesions in the brain"], None]}
    assert client.post("/link", json=body).status_code == 200
    assert seen[-1] == [("Relapsing ", " lesions in the brain"), None]
    assert client.post("/link", json={"mentions": ["ms"]}).status_code == 200 and seen[-1] is None


def test_annotate_finds_and_links_dictionary_names(client):
    text = "A boy with short stature had seizures; later a Heart Attack."
    entities = client.post("/annotate", json={"text": text}).json()["entities"]
    assert [(e["text"], e["kb_id"]) for e in entities] == [
        ("short stature", "D013167"), ("seizures", "D012640"), ("Heart Attack", "D009203"),
    ]
    assert all(text[e["start"]:e["end"]] == e["text"] for e in entities)
    assert entities[0]["candidates"][0]["name"] == "Short stature"
    assert all(e["concept_id"] == e["kb_id"] and e["source"] == "exact" for e in entities)
    assert all(len(e["candidates"]) <= 3 for e in entities)
    # the same entities as the Python Annotator
    expected = Annotator(client.app.state.linker, detector="exact").annotate_one(text)
    assert [(e["start"], e["end"], e["kb_id"]) for e in entities] == [(e.start, e.end, e.concept_id) for e in expected]


def test_annotate_goes_through_the_micro_batcher_of_link(linker):
    annotator = Annotator(linker, threshold=-1.0)
    app = create_app(linker, settings=ServiceSettings(max_mentions=10, max_text_length=500), annotator=annotator)
    text = "Her hypertensive blood pressure (HBP) persisted; HBP and seizures again."
    expected = Annotator(linker, threshold=-1.0).annotate_one(text)
    with TestClient(app) as client:
        before = app.state.batcher.calls
        entities = client.post("/annotate", json={"text": text}).json()["entities"]
        assert app.state.batcher.calls == before + 1  # one call annotated the text in the encoder thread
        links = [client.post("/link", json={"mentions": ["hypertension"]}) for _ in range(3)]
    assert all(r.status_code == 200 for r in links)
    assert [(e["start"], e["end"], e["kb_id"], e["label"]) for e in entities] == \
        [(e.start, e.end, e.concept_id, "ENTITY") for e in expected]
    assert any(e["text"] == "HBP" for e in entities)


def test_every_model_call_runs_in_the_one_encoder_thread(linker, monkeypatch):
    """PyTorch driven from two threads runs slower in both (a second OpenMP team): the service uses one."""
    from entitylink.apps.serve import encoder_thread

    threads = set()
    for name in ("link", "link_within"):
        real = getattr(linker, name)

        def record(*args, _real=real, **kwargs):
            threads.add(threading.current_thread().name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(linker, name, record)
    thread = encoder_thread()
    thread_name = thread.submit(lambda: threading.current_thread().name).result()
    texts = [f"Her hypertensive blood pressure {i} (HBP{i}) persisted; seizures and heart attack." for i in range(6)]
    for micro_batching in (True, False):
        app = create_app(linker, annotator=Annotator(linker, threshold=-1.0), thread=thread,
                         settings=ServiceSettings(micro_batching=micro_batching))

        async def run(app=app):
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                    return await asyncio.gather(*[http.post("/annotate", json={"text": t}) for t in texts],
                                                *[http.post("/link", json={"mentions": [t]}) for t in texts])

        assert all(r.status_code == 200 for r in asyncio.run(run()))
    assert threads == {thread_name}
    thread.shutdown()


def test_concurrent_annotate_requests_share_annotate_calls(linker):
    annotator = Annotator(linker, threshold=-1.0)
    sizes = []
    real = annotator.annotate

    def annotate(texts):
        texts = list(texts)
        sizes.append(len(texts))
        return real(texts)

    annotator.annotate = annotate
    app = create_app(linker, annotator=annotator)
    texts = [f"Her hypertensive blood pressure {i} (HBP{i}) persisted; seizures and heart attack." for i in range(12)]
    expected = [[(e.start, e.end, e.concept_id) for e in Annotator(linker, threshold=-1.0).annotate_one(t)]
                for t in texts]

    async def run():
        async with app.router.lifespan_context(app):
            app.state.batcher.thread.submit(time.sleep, 0.5)  # the encoder thread is busy: requests queue up
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await asyncio.gather(*[http.post("/annotate", json={"text": t}) for t in texts])

    responses = asyncio.run(run())
    assert [[(e["start"], e["end"], e["kb_id"]) for e in r.json()["entities"]] for r in responses] == expected
    assert sum(sizes) == len(texts) and max(sizes) > 1  # texts that waited were annotated together


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/link", "not json", 422, "invalid request"),
        ("/link", {"mentions": "heart attack"}, 422, "invalid request"),
        ("/link", {"mentions": ["a"], "k": 0}, 422, "invalid request"),
        ("/link", {"mentions": ["a"], "k": 1000}, 422, "k must be at most 100"),
        ("/link", {"mentions": ["a"] * 11}, 413, "at most 10 mentions"),
        ("/link", {"mentions": ["a" * 5000]}, 413, "longer than 1000 characters"),
        ("/link", {"mentions": [1, 2]}, 422, "invalid request"),
        ("/link", {"mentions": ["a"], "extra": True}, 422, "invalid request"),
        ("/link", {"mentions": ["a", "b"], "windows": [["x", "y"]]}, 422, "1 windows for 2 mentions"),
        ("/link", {"mentions": ["a"], "windows": [["x" * 600, "y"]]}, 413, "window is longer than 500"),
        ("/link", {"mentions": ["a"], "windows": [["x"]]}, 422, "invalid request"),
        ("/annotate", {"text": "x" * 1_000_000}, 413, "text longer than 500"),
        ("/annotate", {}, 422, "invalid request"),
    ],
)
def test_bad_requests_get_a_clear_json_error(client, path, body, status, message):
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    response = client.post(path, **kwargs)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert client.get("/health").status_code == 200


def test_annotate_without_pipeline(linker):
    with TestClient(create_app(linker)) as client:
        response = client.post("/annotate", json={"text": "heart attack"})
        assert response.status_code == 503 and "no mention detector" in response.json()["error"]


def test_concurrent_requests_share_encoder_calls(linker):
    app = create_app(linker, settings=ServiceSettings(batch_window_ms=50))

    async def run():
        await app.state.batcher.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            responses = await asyncio.gather(*[
                http.post("/link", json={"mentions": [f"heart attack {i}", "seizures"], "k": 1 + i % 3})
                for i in range(20)
            ])
        await app.state.batcher.stop()
        return responses

    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses)
    assert [len(r.json()["results"][0]["candidates"]) for r in responses] == [1 + i % 3 for i in range(20)]
    assert app.state.batcher.calls <= 3  # 20 requests, a handful of encoder calls


def test_more_concurrent_annotate_requests_than_pool_threads_all_finish(linker):
    """Each /annotate waits on the batcher from a pool thread; with every thread taken, batches still run."""
    from concurrent.futures import ThreadPoolExecutor

    app = create_app(linker, annotator=Annotator(linker, threshold=-1.0))

    async def run():
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=3))
        async with app.router.lifespan_context(app):  # the service's start: /annotate links through the batcher
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                texts = [f"Her hypertensive blood pressure {i} (HBP{i}) persisted; HBP{i} again." for i in range(8)]
                responses = await asyncio.wait_for(
                    asyncio.gather(*[http.post("/annotate", json={"text": t}) for t in texts]), timeout=60)
            assert app.state.batcher.calls > 0
        return responses

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 8
    assert all(any(e["text"].startswith("HBP") for e in r.json()["entities"]) for r in responses)


def test_a_failed_batch_fails_each_of_its_requests_and_the_batcher_goes_on(linker, monkeypatch):
    from entitylink.apps.serve import MicroBatcher

    batcher = MicroBatcher(linker, window_ms=50, max_batch=100)
    real = linker.link
    failures = iter([RuntimeError("encoder crashed")])

    def flaky(mentions, **kw):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real(mentions, **kw)

    monkeypatch.setattr(linker, "link", flaky)

    async def run():
        await batcher.start()
        first = await asyncio.gather(*[batcher.link([f"heart attack {i}"], 2) for i in range(3)],
                                     return_exceptions=True)
        second = await batcher.link(["seizures"], 1)
        task = batcher.task
        await batcher.stop()
        return first, second, task

    first, second, task = asyncio.run(run())
    assert len(first) == 3 and all(isinstance(r, RuntimeError) and "encoder crashed" in str(r) for r in first)
    assert batcher.calls == 2  # the three requests shared the failed call
    assert second[0][0].concept_id == "D012640"
    assert task.done() and task.cancelled() and batcher.task is None  # stop waited for the worker to end


# ------------------------------------------------------------------ a real server process
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(linker, tmp_path):
    linker.save(tmp_path / "idx")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "entitylink", "serve", "--index", str(tmp_path / "idx"), "--port", str(port),
         "--precision", "fp32", "--batch-window-ms", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"server did not start: {proc.stdout.read()}")
    yield base, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_client_disconnect_and_timeout_leave_the_server_healthy(server):
    base, proc = server
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:  # half a request, then gone
        sock.sendall(b"POST /link HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b'Content-Length: 400\r\n\r\n{"men')
    with pytest.raises(httpx.TimeoutException):  # the 1 s batch window outlasts a 50 ms client timeout
        httpx.post(f"{base}/link", json={"mentions": ["heart attack"]}, timeout=0.05)
    assert httpx.get(f"{base}/health", timeout=5).json() == {"status": "ok"}
    assert httpx.post(f"{base}/link", json={"mentions": ["seizures"]}, timeout=10).status_code == 200
    assert proc.poll() is None


@pytest.mark.slow
def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(server):
    base, proc = server
    results = []

    def call(i):
        try:
            response = httpx.post(f"{base}/link", json={"mentions": [f"heart attack {i}"]}, timeout=30)
            results.append(response.status_code)
        except httpx.HTTPError as err:
            results.append(repr(err))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 20
    while httpx.get(f"{base}/info", timeout=5).json()["requests"] < 8 and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)  # all 8 are inside the server, most waiting in the 1 s batch window
    for thread in threads:
        thread.join(30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM: the conventional exit status of a terminated service
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert results == [200] * 8
    log = proc.stdout.read()
    assert "Waiting for application shutdown" in log and "Finished server process" in log


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (Debian: apt-get install chromium)")
def test_page_in_a_headless_browser(server, tmp_path):
    base, _ = server
    text = "A boy with short stature had seizures."
    url = f"{base}/?{urllib.parse.urlencode({'text': text})}"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    dom = run.stdout
    assert 'data-state="done"' in dom and 'data-entities="2"' in dom, run.stderr[-2000:]
    assert 'data-kb-id="D013167"' in dom and 'data-kb-id="D012640"' in dom
