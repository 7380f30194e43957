"""Bodies over a real socket to a real server: a chunked body meets the same 1 MiB limit."""

import http.client
import json
from urllib.parse import urlsplit

from tests.live import served  # noqa: F401  (fixture)

MIB = 1024 * 1024


def chunked_post(api, path: str, chunks: list[bytes], content_type: str):
    """POST with Transfer-Encoding: chunked (no Content-Length), as streaming clients send."""
    where = urlsplit(api.base)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/v1" + path,
            body=iter(chunks),
            headers={"Authorization": f"Bearer {api.token}", "Content-Type": content_type},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read().decode("utf-8"))
    finally:
        connection.close()


def tasks_of(api) -> int:
    return len(api.call("GET", "/tasks")[1]["items"])


def test_a_chunked_body_past_the_limit_is_a_413_and_stores_nothing(served):  # noqa: F811
    api, _ = served
    head = json.dumps({"type": "demo", "params": {"stages": 1, "seconds": 0}}).encode()
    # Valid JSON whose first MiB alone would also parse: it must not be acted on.
    status, body = chunked_post(api, "/tasks", [head, b" " * (2 * MIB)], "application/json")
    assert (status, body) == (413, {"detail": "Request body too large (limit 1 MiB)"})
    status, body = chunked_post(
        api, "/tasks", [head[:-1], b" " * MIB, b', "x": 1}'], "application/json"
    )
    assert status == 413
    assert tasks_of(api) == 0


def test_a_chunked_body_within_the_limit_works(served):  # noqa: F811
    api, _ = served
    text = json.dumps({"type": "demo", "params": {"stages": 1, "message": "分块"}}).encode()
    status, body = chunked_post(api, "/tasks", [text[:10], text[10:]], "application/json")
    assert status == 201 and body["params"]["message"] == "分块"
