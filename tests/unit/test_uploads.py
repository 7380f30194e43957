"""Files sent with a submit (UploadParam, here transcribe's `audio`): stored under the data dir,
named in params, refused where they do not belong, capped in size, deleted with their last task.
"""

import io
from datetime import timedelta
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app.security import TOO_LARGE, ChunkedBodyLimit, body_limit
from app.services import accounts, commands, lease, retention
from app.services.uploads import safe_name
from tests.drive import submit, task

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40)  # the bytes do not matter until a stage runs


@pytest.fixture
def uploads(app) -> Path:
    return Path(app.config["UPLOADS_DIR"])


def sent(api_as, *, files=None, **fields):
    """A multipart submit of transcribe with `files` ({field: (bytes, name)}) and text fields.

    Encoded here, in memory: the test client would spool a big body to a temporary
    file and leave it open when the app answers 413 without reading it.
    """
    data = MultiDict({"type": "transcribe", **fields})
    for field, (content, name) in (files or {}).items():
        data.add(field, FileStorage(io.BytesIO(content), filename=name))
    boundary, body = encode_multipart(data)
    return api_as.post(
        "/tasks", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def everything_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


def test_a_file_sent_with_the_task_is_kept_and_named_in_its_params(api, uploads):
    alice = api("alice")
    response = sent(
        alice, files={"params.audio": (WAV, "会议 录音.wav")}, **{"params.speakers": "2"}
    )
    assert response.status_code == 201, response.get_json()
    task = response.get_json()
    assert task["params"]["audio"] == f"upload:{task['id']}/audio/会议 录音.wav"
    assert task["params"]["speakers"] == 2
    assert (uploads / task["id"] / "audio" / "会议 录音.wav").read_bytes() == WAV


def test_the_task_page_names_the_uploaded_file_not_its_storage(api, browser):
    task = sent(api("alice"), files={"params.audio": (WAV, "会议.wav")}).get_json()
    page = browser.login("alice").get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert "<dd>会议.wav (uploaded)</dd>" in page and "upload:" not in page


def test_a_path_under_the_files_root_still_works_in_json_and_in_the_form(
    api, app, browser, uploads
):
    (Path(app.config["FILES_ROOT"]) / "a.wav").write_bytes(WAV)
    alice = api("alice")
    by_json = alice.post("/tasks", json={"type": "transcribe", "params": {"audio": "a.wav"}})
    assert by_json.status_code == 201 and by_json.get_json()["params"]["audio"] == "a.wav"
    page = browser.login("alice").get("/tasks/new?type=transcribe").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'type="file" ' in page
    assert '<select id="p-language"' in page  # a Literal of one value: a choice, not a text box
    # The form's file input left empty is sent with no file name: the path field is used.
    by_form = browser.post(
        "/tasks/new",
        data={"type": "transcribe", "params.audio": [(io.BytesIO(b""), ""), "a.wav"]},
        content_type="multipart/form-data",
    )
    assert by_form.status_code == 302, by_form.get_data(as_text=True)
    task_id = by_form.headers["Location"].rsplit("/", 1)[1]
    assert alice.get(f"/tasks/{task_id}").get_json()["params"]["audio"] == "a.wav"
    with_file = browser.post(
        "/tasks/new",
        data={"type": "transcribe", "params.audio": [(io.BytesIO(WAV), "录音.wav"), ""]},
        content_type="multipart/form-data",
    )
    assert with_file.status_code == 302
    task_id = with_file.headers["Location"].rsplit("/", 1)[1]
    assert (uploads / task_id / "audio" / "录音.wav").read_bytes() == WAV


@pytest.mark.parametrize(
    "name, kept",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\talk.wav", "talk.wav"),
        ("..", "upload"),
        (". .", "upload"),
        ("\u3000.\u3000.", "upload"),
        (".hidden.wav", "hidden.wav"),
        ("bad\r\nname\x00.wav", "badname.wav"),
        ("长" * 300 + ".wav", "长" * 83 + ".wav"),  # 255 bytes of UTF-8 at most, suffix kept
    ],
    ids=["escape", "windows", "dots", "spaced-dots", "wide-dots", "hidden", "control", "long"],
)
def test_a_client_s_file_name_becomes_a_plain_name(name, kept):
    assert safe_name(name) == kept
    assert len(safe_name(name).encode()) <= 255


def test_json_cannot_name_another_task_s_upload(api, uploads):
    alice, bob = api("alice"), api("bob")
    theirs = sent(bob, files={"params.audio": (WAV, "bob.wav")}).get_json()["params"]["audio"]
    response = alice.post("/tasks", json={"type": "transcribe", "params": {"audio": theirs}})
    assert response.status_code == 422
    assert "names an upload that was not sent with this task" in response.get_json()["detail"]
    forged = sent(alice, **{"params.audio": theirs})  # as a form's text field: the same
    assert forged.status_code == 422


def test_refused_submits_leave_no_file_behind(api, uploads):
    alice = api("alice")
    bad_param = sent(
        alice, files={"params.audio": (WAV, "a.wav")}, **{"params.speakers": "9"}
    )  # the file is fine, another param is not
    assert bad_param.status_code == 422 and "speakers" in bad_param.get_json()["detail"]
    not_a_file_param = sent(alice, files={"params.vocabulary": (b"x", "v.txt")})
    assert not_a_file_param.status_code == 422
    assert "vocabulary: takes no file" in not_a_file_param.get_json()["detail"]
    demo = alice.post(
        "/tasks",
        data={"type": "demo", "params.seconds": (io.BytesIO(b"x"), "x")},
        content_type="multipart/form-data",
    )
    assert demo.status_code == 422 and "seconds: takes no file" in demo.get_json()["detail"]
    odd_field = sent(alice, files={"audio": (WAV, "a.wav")})
    assert odd_field.status_code == 400 and "params.<name>" in odd_field.get_json()["detail"]
    assert everything_under(uploads) == []


def test_a_body_over_the_upload_limit_is_413_before_it_is_stored(app, api, uploads):
    app.config["UPLOAD_MAX"] = 2 * 1024 * 1024
    alice = api("alice")
    big = sent(alice, files={"params.audio": (bytes(3 * 1024 * 1024), "big.wav")})
    assert big.status_code == 413
    assert big.get_json()["detail"] == "Files too large (limit 2 MiB in all)"
    fits = sent(alice, files={"params.audio": (bytes(3 * 1024 * 512), "fits.wav")})
    assert fits.status_code == 201  # 1.5 MiB: over the 1 MiB of other bodies, under this one
    assert [p.name for p in everything_under(uploads) if p.is_file()] == ["fits.wav"]
    as_json = alice.post("/tasks", json={"type": "demo", "params": {"x": "y" * 2 * 1024 * 1024}})
    assert as_json.status_code == 413
    assert as_json.get_json()["detail"] == "Request body too large (limit 1 MiB)"


@pytest.mark.parametrize(
    "path, content_type, size, refused",
    [
        ("/api/v1/tasks", "multipart/form-data; boundary=b", 3000, False),  # a route for files
        ("/tasks/new", "multipart/form-data; boundary=b", 3000, False),
        ("/api/v1/tasks", "multipart/form-data; boundary=b", 5001, True),
        ("/api/v1/tasks", "application/json", 3000, True),  # files come multipart only
        ("/login", "multipart/form-data; boundary=b", 3000, True),  # takes no files
        ("/nothing-here", "multipart/form-data; boundary=b", 3000, True),
    ],
)
def test_a_chunked_body_meets_the_upload_limit_only_where_files_are_taken(
    app, path, content_type, size, refused
):
    app.config.update(MAX_CONTENT_LENGTH=1000, UPLOAD_MAX=4000)  # 5,000 with the fields
    seen = {}

    def inner(environ, start_response):
        seen.update(environ)
        return []

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": content_type,
        "wsgi.input": io.BytesIO(b"x" * size),
    }
    answer = ChunkedBodyLimit(inner, body_limit(app))(environ, None)
    assert bool(seen.get(TOO_LARGE)) is refused
    assert seen["CONTENT_LENGTH"] == ("0" if refused else str(size))
    assert len(seen["wsgi.input"].read()) == (0 if refused else size)
    answer.close()  # as the server does once the answer is sent
    assert seen["wsgi.input"].closed


def test_anonymous_bodies_get_no_upload_limit_and_a_413_says_why(app, api, uploads):
    app.config["UPLOAD_MAX"] = 2 * 1024 * 1024
    body = bytes(3 * 1024 * 512)  # 1.5 MiB: fine for alice, too much for nobody
    assert sent(api(None), files={"params.audio": (body, "a.wav")}).status_code == 413
    assert sent(api("alice"), files={"params.audio": (body, "a.wav")}).status_code == 201
    many = sent(api("alice"), **{f"params.x{i}": "y" for i in range(100)})
    assert many.status_code == 413
    assert many.get_json()["detail"] == "Too many form fields, or a text field over 500 KB"


def test_two_files_of_one_name_for_two_params_are_two_files(app, uploads):
    from app.services import uploads as kept
    from tasks.pipelines.files import UPLOAD, located

    class TwoFiles:
        params_schema = {"properties": {"a": {"format": UPLOAD}, "b": {"format": UPLOAD}}}

    task_id = "f" * 32
    sent = {name: kept.Upload("x.wav", io.BytesIO(name.encode())) for name in ("a", "b")}
    with app.app_context():
        values = kept.named(TwoFiles, task_id, sent)
        kept.store(task_id, sent, values)
    assert values == {"a": f"upload:{task_id}/a/x.wav", "b": f"upload:{task_id}/b/x.wav"}
    assert [located(v).read_bytes() for v in values.values()] == [b"a", b"b"]


def test_uploads_go_with_the_last_task_that_names_them(app, api, uploads):
    alice = api("alice")
    first = sent(alice, files={"params.audio": (WAV, "a.wav")}).get_json()["id"]
    with app.app_context():
        owner = accounts.find_user("alice")
        lease.fail_stage(lease.start_stage(first, 0, 1), "stage_error", "boom")
        retry = commands.retry(owner, first).new_task_id
        assert task(retry).params["audio"] == f"upload:{first}/audio/a.wav"  # the original's file
        assert retention.prune(timedelta(0))["uploads"] == 0  # the retry still names it
        assert (uploads / first / "audio" / "a.wav").is_file()
        lease.fail_stage(lease.start_stage(retry, 0, 1), "stage_error", "boom")
        # Text that only looks like the upload (in a param that is not one) keeps nothing.
        submit(accounts.find_user("bob"), message=f"upload:{first}/audio/a.wav")
        assert retention.prune(timedelta(0)) == {"tasks": 1, "files": 0, "uploads": 1}
    assert not (uploads / first).exists()
