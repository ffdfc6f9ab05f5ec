"""The remote image-API backend against a real loopback HTTP server (litellm is never patched)."""

from __future__ import annotations

import base64
import io
import threading
import time

import pytest

from stage5cli.errors import UsageError
from stage5cli.images import ImageRequest, get_backend
from stage5cli.images.api import choose_size, known_sizes
from tests.loopback import LoopbackServer, Reply

KEY_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE")
FAST = {"retry-after-ms": "5"}  # keep the OpenAI SDK's own backoff short in tests


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)


def make_request(**over) -> ImageRequest:
    fields = dict(
        key="1",
        asset_id=5,
        asset_name="Mara",
        asset_type="character",
        description="A detective.",
        prompt="film noir portrait of a detective",
        negative_prompt="blurry",
        width=512,
        height=768,
        seed=1,
        steps=20,
        guidance=7.0,
        sampler="euler",
        palette=[],
        style_id="noir",
        style_name="Neo-noir",
        style_sha256="ef" * 32,
    )
    fields.update(over)
    return ImageRequest(**fields)


def png_bytes(width: int, height: int, colour=(200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def b64_reply(width: int, height: int, colour=(200, 30, 30), **kw) -> Reply:
    data = base64.b64encode(png_bytes(width, height, colour)).decode()
    return Reply(200, {"created": 1, "data": [{"b64_json": data}]}, **kw)


def size_of(req) -> tuple[int, int]:
    w, h = req.json["size"].split("x")
    return int(w), int(h)


class Script:
    """A responder that plays replies in order (the last one repeats)."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.lock = threading.Lock()

    def __call__(self, req):
        with self.lock:
            reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply(req) if callable(reply) else reply


@pytest.fixture(scope="module")
def shared_server():
    with LoopbackServer(lambda r: Reply(500, "no responder")) as srv:
        yield srv


@pytest.fixture
def serve(shared_server):
    """serve(responder) -> the module's running server, now answering with `responder`.
    (One server per module: shutting one down costs ~0.5 s of serve_forever polling.)"""

    def _serve(responder):
        shared_server.responder = responder
        with shared_server._lock:
            shared_server.requests.clear()
        return shared_server

    return _serve


def api(server, **opts):
    opts.setdefault("model", "openai/test-image")
    opts.setdefault("timeout", 5.0)
    opts.setdefault("backoff", 0.01)
    return get_backend("api", api_base=server.url + "/v1", **opts)


def posts(server):
    return [r for r in server.requests if r.method == "POST"]


# ---- success paths ---------------------------------------------------------------------------


def test_b64_answer_at_the_exact_size(serve):
    server = serve(lambda r: b64_reply(*size_of(r)))
    [result] = api(server).generate([make_request()])
    assert result.ok, result.error
    assert result.image.size == (512, 768)
    assert result.image.getpixel((10, 10)) == (200, 30, 30)
    assert result.info["source"] == "b64_json" and "resized" not in result.info
    [req] = server.requests
    assert (req.method, req.path) == ("POST", "/v1/images/generations")
    body = req.json
    assert body["model"] == "test-image" and body["prompt"] == "film noir portrait of a detective"
    assert body["size"] == "512x768" and body["n"] == 1
    assert result.cost_usd is None  # a local model has no price: unknown, not an error


def test_key_for_an_api_base_comes_only_from_a_variable_named_for_it(monkeypatch, serve):
    """The provider's default key never goes to an --api-base server; STAGE5_API_KEY or
    --api-key-env VAR does."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-environment-key-123")
    monkeypatch.delenv("STAGE5_API_KEY", raising=False)
    server = serve(lambda r: b64_reply(*size_of(r)))
    [result] = api(server).generate([make_request()])
    assert result.ok
    assert "sk-test-environment-key-123" not in server.requests[0].headers["Authorization"]
    monkeypatch.setenv("STAGE5_API_KEY", "stage5-key-for-this-server")
    server = serve(lambda r: b64_reply(*size_of(r)))
    [result] = api(server).generate([make_request()])
    assert server.requests[0].headers["Authorization"] == "Bearer stage5-key-for-this-server"
    monkeypatch.setenv("MY_IMAGE_KEY", "sk-test-named-key-456")
    server = serve(lambda r: b64_reply(*size_of(r)))
    [result] = api(server, api_key_env="MY_IMAGE_KEY").generate([make_request()])
    assert server.requests[0].headers["Authorization"] == "Bearer sk-test-named-key-456"


def test_image_api_error_that_echoes_the_key_is_scrubbed(monkeypatch, serve):
    monkeypatch.setenv("STAGE5_API_KEY", "plain-image-secret-987")

    def echo(req):
        auth = req.headers.get("Authorization", "")
        return Reply(400, {"error": {"message": f"bad request, you sent {auth} and "
                                                "plain-image-secret-987"}})

    server = serve(echo)
    [result] = api(server, retries=0).generate([make_request()])
    assert not result.ok and "plain-image-secret-987" not in result.error


def test_provider_size_differs_resize_and_centre_crop(serve):
    from PIL import Image

    def wide(req):  # the provider ignores the size: a 300x100 image, red|green|red thirds
        img = Image.new("RGB", (300, 100), (255, 0, 0))
        img.paste((0, 255, 0), (100, 0, 200, 100))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return Reply(200, {"data": [{"b64_json": base64.b64encode(buf.getvalue()).decode()}]})

    server = serve(wide)
    [result] = api(server).generate([make_request(width=100, height=100, asset_type="prop")])
    assert result.ok and result.image.size == (100, 100)
    assert result.info["resized"] is True
    assert result.info["provider_image_size"] == [300, 100]
    assert result.info["requested_size"] == [100, 100]
    assert result.image.getpixel((50, 50)) == (0, 255, 0)  # the centre was kept


def test_forced_provider_size_is_requested_and_recorded(serve):
    server = serve(lambda r: b64_reply(*size_of(r)))
    [result] = api(server, size="1024x1024").generate([make_request()])
    assert server.requests[0].json["size"] == "1024x1024"
    assert result.image.size == (512, 768)
    assert result.info["provider_size"] == [1024, 1024] and result.info["resized"] is True


def test_known_provider_gets_a_size_it_accepts_and_the_response_format(serve):
    server = serve(lambda r: b64_reply(*size_of(r)))
    backend = api(server, model="openai/dall-e-2", response_format="b64_json")
    [result] = backend.generate([make_request()])
    body = server.requests[0].json
    assert body["size"] == "1024x1024" and body["response_format"] == "b64_json"
    assert body["model"] == "dall-e-2"
    assert result.ok and result.image.size == (512, 768)
    assert result.info["provider_size"] == [1024, 1024] and result.info["resized"] is True


def test_url_answer_is_fetched_from_the_same_server(serve):
    def responder(req):
        if req.method == "POST":
            return Reply(200, {"data": [{"url": f"{server.url}/files/img.png"}]})
        if req.path == "/files/img.png":
            return Reply(
                200, png_bytes(512, 768, (10, 20, 30)), headers={"Content-Type": "image/png"}
            )
        return Reply(404, "no")

    server = serve(responder)
    [result] = api(server).generate([make_request()])
    assert result.ok, result.error
    assert result.info["source"] == "url"
    assert result.image.getpixel((5, 5)) == (10, 20, 30)
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/v1/images/generations"),
        ("GET", "/files/img.png"),
    ]


def test_url_download_retries_only_the_download(serve):
    state = {"gets": 0}

    def responder(req):
        if req.method == "POST":
            return Reply(200, {"data": [{"url": f"{server.url}/files/a.png"}]})
        state["gets"] += 1
        if state["gets"] == 1:
            return Reply(503, "busy", headers={"Retry-After": "0"})
        return Reply(200, png_bytes(512, 768), headers={"Content-Type": "image/png"})

    server = serve(responder)
    [result] = api(server).generate([make_request()])
    assert result.ok, result.error
    assert len(posts(server)) == 1 and state["gets"] == 2  # paid once, fetched twice


# ---- retries, timeouts, bad answers ----------------------------------------------------------


def test_500_then_success(serve):
    script = Script(
        Reply(500, {"error": {"message": "boom"}}, headers=FAST), lambda r: b64_reply(*size_of(r))
    )
    server = serve(script)
    [result] = api(server).generate([make_request()])
    assert result.ok, result.error
    assert len(posts(server)) == 2


def test_429_gives_up_after_bounded_retries_with_one_line(serve):
    server = serve(lambda r: Reply(429, {"error": {"message": "slow down"}}, headers=FAST))
    [result] = api(server).generate([make_request()])
    assert not result.ok and result.image is None
    assert "429" in result.error and "\n" not in result.error
    assert len(posts(server)) == 3  # litellm's OpenAI route: 1 + the SDK's 2 retries


def test_own_retries_on_top_of_the_sdk(serve):
    replies = [Reply(503, {"error": {"message": "busy"}}, headers=FAST)] * 3
    script = Script(*replies, lambda r: b64_reply(*size_of(r)))
    server = serve(script)
    [result] = api(server, retries=1).generate([make_request()])
    assert result.ok, result.error
    assert len(posts(server)) == 4 and result.info["attempts"] == 2


@pytest.mark.slow
def test_timeout_is_explicit_and_bounded(serve):
    server = serve(lambda r: b64_reply(64, 64, delay=3.0))
    import litellm  # noqa: F401  (its import time is not what this test measures)

    t0 = time.perf_counter()
    [result] = api(server, timeout=0.2).generate([make_request()])
    elapsed = time.perf_counter() - t0
    assert not result.ok and "timed out after 0.2s" in result.error
    assert elapsed < 6.0  # 3 attempts of 0.2 s plus the SDK's short backoff, far below 3 s x 3


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        (Reply(200, "<html>definitely not json</html>"), "unreadable answer"),
        (Reply(200, {"created": 1, "data": []}), "empty data"),
        (Reply(200, {"data": [{"revised_prompt": "x"}]}), "neither b64_json nor url"),
        (
            Reply(200, {"data": [{"b64_json": base64.b64encode(b"GIF? no").decode()}]}),
            "not an image",
        ),
    ],
)
def test_non_image_answers(reply, detail, serve):
    server = serve(lambda r: reply)
    [result] = api(server).generate([make_request()])
    assert not result.ok
    assert result.error.startswith("provider returned no image (") and detail in result.error
    assert len(posts(server)) == 1  # an answer that is not an image is not retried


def test_url_that_is_not_an_image(serve):
    def responder(req):
        if req.method == "POST":
            return Reply(200, {"data": [{"url": f"{server.url}/x"}]})
        return Reply(200, "<html>login page</html>", headers={"Content-Type": "text/html"})

    server = serve(responder)
    [result] = api(server).generate([make_request()])
    assert "provider returned no image" in result.error and "text/html" in result.error


def test_4xx_is_not_retried_and_the_key_is_scrubbed(monkeypatch, serve):
    secret = "sk-test-SECRETSECRET1234567890"
    monkeypatch.setenv("STAGE5_API_KEY", secret)  # the key for an --api-base server
    body = {"error": {"message": f"Incorrect API key provided: {secret}"}}
    server = serve(lambda r: Reply(401, body))
    [result] = api(server).generate([make_request()])
    assert "401" in result.error and "STAGE5_API_KEY" in result.error
    assert secret not in result.error and "SECRETSECRET" not in result.error
    assert len(posts(server)) == 1


def test_one_failure_does_not_stop_the_batch(serve):
    def responder(req):
        if "anchor" in req.json["prompt"]:
            return Reply(400, {"error": {"message": "content policy"}})
        return b64_reply(*size_of(req))

    reqs = [make_request(key="a"), make_request(key="b", prompt="an anchor"), make_request(key="c")]
    server = serve(responder)
    results = list(api(server).generate(reqs))
    assert [r.ok for r in results] == [True, False, True]
    assert "400" in results[1].error and "content policy" in results[1].error


@pytest.mark.slow
def test_connection_refused_is_one_line():
    with LoopbackServer(lambda r: Reply(200, {})) as server:
        url = server.url
    backend = get_backend("api", model="openai/test-image", api_base=url + "/v1", timeout=1.0)
    [result] = backend.generate([make_request()])
    assert not result.ok and "cannot connect" in result.error and "\n" not in result.error


# ---- check(), sizes, cost --------------------------------------------------------------------


def test_check_needs_a_model_and_a_key():
    with pytest.raises(UsageError) as err:
        get_backend("api").check()
    assert "--model" in str(err.value)
    with pytest.raises(UsageError) as err:
        get_backend("api", model="openai/gpt-image-1").check()
    assert "OPENAI_API_KEY" in str(err.value)
    with pytest.raises(UsageError) as err:
        get_backend("api", model="no-provider-model-xyz").check()
    assert "provider" in str(err.value)
    get_backend("api", model="openai/local", api_base="http://127.0.0.1:9/v1").check()  # keyless


def test_generate_raises_usage_error_before_any_request():
    backend = get_backend("api", model="openai/gpt-image-1")
    with pytest.raises(UsageError):
        list(backend.generate([make_request()]))


def test_choose_size_for_known_providers():
    gpt = known_sizes("openai/gpt-image-1")
    assert choose_size(512, 768, gpt) == (1024, 1536)
    assert choose_size(512, 512, gpt) == (1024, 1024)
    assert choose_size(1024, 576, gpt) == (1536, 1024)
    dalle2 = known_sizes("dall-e-2")
    assert choose_size(512, 512, dalle2) == (512, 512)
    assert choose_size(512, 768, dalle2) == (1024, 1024)
    assert known_sizes("openai/my-local-sd") is None


def test_cost_estimate_from_litellm_cost_map():
    backend = get_backend("api", model="openai/gpt-image-1")
    cost = backend.estimate_cost(make_request())
    assert isinstance(cost, float) and cost > 0
    assert backend.provider_size(make_request()) == (1024, 1536)
    assert get_backend("api", model="openai/unpriced-local").estimate_cost(make_request()) is None
    assert get_backend("api", model="no-provider-model-xyz").estimate_cost(make_request()) is None
    assert get_backend("api").estimate_cost(make_request()) is None
