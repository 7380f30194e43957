"""Own pipelines under real `taskdeck` processes: kills, child process groups, plug-in sources.

A worker SIGKILLed in the middle of ctx.each resumes after the last recorded
item; an isolated stage's process group never outlives the worker; a
pipeline shipped as an installed package is found through its entry point;
a plug-in that fails to import stops start-up with one line naming it.
Short timeouts stand in for the defaults, as in test_crash.py.
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import backends
from tests.conftest import wait_for
from tests.live import (  # noqa: F401
    FAST_RECOVERY,
    TASKDECK,
    deck,
    free_port,
    process_env,
    running_server,
)

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def alive(pid: int) -> bool:
    """Running: a zombie (exited, not yet reaped by whoever adopted it) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def parent_and_group(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(") ", 1)[1].split()
    return int(fields[1]), int(fields[2])


def marked(mark: Path) -> list[int]:
    """The pids on the stage's `pid …` line, once it has written it."""
    line = wait_for(lambda: mark.exists() and mark.read_text().strip(), timeout=20)
    return [int(pid) for pid in line.split()[1:]]


def submit(d, task_type: str, **params) -> str:
    status, body = d.http.call("POST", "/tasks", {"type": task_type, "params": params})
    assert status == 201, body
    return body["id"]


@pytest.fixture
def plugin_deck(deck):  # noqa: F811
    """A deck (web + workers started by the test) loading tests/plugins, with fast recovery."""
    return lambda: deck({**FAST_RECOVERY, "TASKDECK_PIPELINES_PATH": str(PLUGINS)})


# --- 1. SIGKILL in the middle of ctx.each ----------------------------------------------------


def runs_in(mark: Path) -> list[tuple[str, list[int]]]:
    """The mark file as (pid, items begun) per run of the stage."""
    runs = []
    for line in mark.read_text().splitlines():
        word, value = line.split()
        if word == "run":
            runs.append((value, []))
        else:
            runs[-1][1].append(int(value))
    return runs


def items(d, task_id: str) -> dict:
    return d.task(task_id)["stages"][0]["items"] or {"total": None, "done": 0, "failed": 0}


def test_a_sigkilled_worker_s_items_resume_after_the_last_recorded_one(plugin_deck, tmp_path):
    """In the worker's own thread and in an isolated child, side by side on one worker."""
    d = plugin_deck()
    first = d.start_worker(threads=2)
    count, marks, tasks = 200, {}, {}
    for task_type in ("resumable", "resumable_isolated"):
        marks[task_type] = mark = tmp_path / task_type
        tasks[task_type] = submit(d, task_type, mark=str(mark), count=count, seconds=0.02)
    wait_for(lambda: all(items(d, task_id)["done"] for task_id in tasks.values()), 20)
    first.send_signal(signal.SIGKILL)
    first.wait()
    recorded = {task_type: items(d, task_id)["done"] for task_type, task_id in tasks.items()}
    assert all(0 < done < count for done in recorded.values()), recorded

    d.start_worker(threads=2)
    for task_type, task_id in tasks.items():
        wait_for(lambda task_id=task_id: d.task(task_id)["state"] == "succeeded", 30)
        (killed, before), (resumed, after) = runs_in(marks[task_type])
        assert killed != resumed
        # The killed run began items 0..k in order, k >= the last one recorded ...
        assert before == list(range(len(before))) and len(before) >= recorded[task_type]
        # ... and the resumed run began at the first unrecorded item and ran each left once.
        assert after == list(range(recorded[task_type], count)), task_type
        done = d.task(task_id)
        assert done["stages"][0]["items"] == {"total": count, "done": count, "failed": 0}
        assert done["stages"][0]["output"] == {"count": count}
        requeued = [e for e in done["events"] if e["action"] == "stage_requeued"]
        assert len(requeued) == 1 and requeued[0]["reason"].startswith("worker lost: no heartbeat")


# --- 2. no child outlives its stage -------------------------------------------------------------


def start_isolated(d, tmp_path) -> tuple:
    """A worker running `stubborn` and `family` (a child with a grandchild), which sleep
    through orders; the task ids and the stages' pids, checked to be the worker's."""
    worker = d.start_worker(threads=2)
    tasks, pids = [], []
    for task_type in ("stubborn", "family"):
        mark = tmp_path / task_type
        tasks.append(submit(d, task_type, mark=str(mark), seconds=300))
        child, *grandchildren = marked(mark)
        assert parent_and_group(child) == (worker.pid, child)  # the worker's, leading a group
        assert all(parent_and_group(pid) == (child, child) for pid in grandchildren)
        pids += [child, *grandchildren]
    assert all(alive(pid) for pid in pids)
    return worker, tasks, pids


def test_isolated_stages_process_groups_die_with_a_sigkilled_worker(plugin_deck, tmp_path):
    d = plugin_deck()
    worker, _, pids = start_isolated(d, tmp_path)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    # Each child reads EOF on stdin (its only writer is gone) and SIGKILLs its group.
    wait_for(lambda: not any(alive(pid) for pid in pids), 5)


def test_sigterm_hands_isolated_stages_back_and_leaves_no_child(plugin_deck, tmp_path):
    d = plugin_deck()
    worker, tasks, pids = start_isolated(d, tmp_path)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert not any(alive(pid) for pid in pids)
    for task_id in tasks:
        back = d.task(task_id)
        assert (back["state"], back["stages"][0]["state"]) == ("running", "pending")
        assert back["events"][-1]["action"] == "stage_requeued"
        assert "shutting down" in back["events"][-1]["reason"]


# --- 3. a plug-in shipped as an installed package -----------------------------------------------

# The venv's setuptools builds no wheel without the `wheel` package, so the package
# brings its own PEP 517 backend (backend-path): --no-build-isolation needs no index.
BACKEND = r"""
import base64, hashlib, tomllib, zipfile
from pathlib import Path

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    name, version = project["name"].replace("-", "_"), project["version"]
    info = f"{name}-{version}.dist-info"
    files = {
        "pkgmod.py": Path("pkgmod.py").read_text(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "".join(
            f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items())
            for group, points in project["entry-points"].items()
        ),
    }
    wheel, record = f"{name}-{version}-py3-none-any.whl", ""
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as zf:
        for path, text in files.items():
            data = text.encode()
            zf.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record += f"{path},sha256={digest.decode()},{len(data)}\n"
        zf.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return wheel
"""

PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "taskdeck-greeter"
version = "1.0"

[project.entry-points."taskdeck.pipelines"]
greeter = "pkgmod:pipeline_object"
"""


def install_package(tmp_path: Path, module: str) -> Path:
    """pip-install a package whose entry point is `pkgmod:pipeline_object`; its site folder."""
    package, site = tmp_path / "package", tmp_path / "site"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "backend.py").write_text(BACKEND)
    (package / "pkgmod.py").write_text(textwrap.dedent(module))
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", str(site), str(package)], check=True, capture_output=True)
    assert (site / "taskdeck_greeter-1.0.dist-info" / "entry_points.txt").exists()
    return site


GREETER = """
    from tasks.pipelines import Params, Pipeline


    class Greeting(Params):
        name: str = "world"


    pipeline_object = Pipeline("greeter", title="Greets from a package", params=Greeting)


    @pipeline_object.stage(isolated=True)
    def greet(ctx, params):
        ctx.log(f"greeting {params.name}")
        return {"greeting": f"hello {params.name}"}
"""


def on_python_path(monkeypatch, site: Path) -> None:
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


def test_a_pipeline_from_an_installed_package_s_entry_point_runs(tmp_path, monkeypatch):
    on_python_path(monkeypatch, install_package(tmp_path, GREETER))
    with running_server(tmp_path) as (http, _):
        status, types = http.call("GET", "/task-types")
        assert status == 200
        (greeter,) = [t for t in types["items"] if t["name"] == "greeter"]
        assert (greeter["title"], greeter["stages"]) == ("Greets from a package", ["greet"])
        assert "name" in greeter["params_schema"]["properties"]
        status, task = http.call("POST", "/tasks", {"type": "greeter", "params": {"name": "世界"}})
        assert status == 201, task

        def finished():
            body = http.call("GET", f"/tasks/{task['id']}")[1]
            return body["state"] in ("succeeded", "failed") and body

        done = wait_for(finished, 30)
        assert done["state"] == "succeeded", done
        assert done["stages"][0]["output"] == {"greeting": "hello 世界"}


# --- 4. a broken plug-in stops start-up ---------------------------------------------------------


def start(command: str, env: dict) -> subprocess.CompletedProcess:
    argv = [TASKDECK, command]
    if command in ("web", "serve"):
        argv += ["--port", str(free_port())]
    # A command that got past the check would keep running: the timeout fails the test.
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def assert_one_line(result: subprocess.CompletedProcess, *named: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1, output
    for text in named:
        assert text in output, output
    return output


@pytest.fixture
def env(tmp_path):
    settings = process_env(tmp_path)
    yield settings
    backends.drop_database(settings["TASKDECK_DATABASE_URL"])


BROKEN = {
    "raises": ("import os\n\nraise RuntimeError('no licence key')\n", "RuntimeError"),
    "syntax": ("def stage(:\n    pass\n", "SyntaxError"),
    "exits": ("import sys\n\nsys.exit('plugin gave up')\n", "SystemExit"),
}


@pytest.mark.parametrize(
    "command, breakage",
    [(command, "raises") for command in ("web", "worker", "serve")]
    + [("worker", breakage) for breakage in BROKEN if breakage != "raises"],
)
def test_a_plugin_that_fails_to_import_stops_start_up_naming_its_file(
    command, breakage, env, tmp_path
):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "fine.py").write_text("from tasks.pipelines import Pipeline\n")
    source, error = BROKEN[breakage]
    (folder / "broken.py").write_text(source)
    env["TASKDECK_PIPELINES_PATH"] = str(folder)
    output = assert_one_line(start(command, env), str(folder / "broken.py"), error)
    if breakage == "raises":
        assert "no licence key" in output and "(line 3)" in output


def test_a_broken_entry_point_stops_start_up_naming_it(env, tmp_path):
    site = install_package(tmp_path, "raise ImportError('needs libgreet.so')\n")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    assert_one_line(start("worker", env), "pkgmod:pipeline_object", "greeter", "libgreet.so")
