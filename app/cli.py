"""The `taskdeck` command: a Flask CLI group with the app preset.

`serve` runs gunicorn and one worker as child processes in the foreground;
Ctrl-C or SIGTERM stops both (the worker gracefully, see tasks/worker.py).
"""

import functools
import logging
import os
import signal
import subprocess
import sys
from datetime import timedelta

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from app import create_app, preflight
from app.constants import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN
from app.schemas import inputs
from app.services import accounts, commands, retention
from app.services.errors import ServiceError

# Nothing imported here opens the queue or the database (the app factory
# does), so `preflight_first` can check them before anything touches them.


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False)
def main():
    """Taskdeck: a control deck for long-running, multi-stage background tasks."""


def preflight_first(command):
    """Check the data folder and SQLite files (app/preflight.py), then build the app as usual."""
    in_app = with_appcontext(command)

    @functools.wraps(command)
    def checked(*args, **kwargs):
        try:
            preflight.check()
        except preflight.PreflightError as exc:
            raise click.ClickException(str(exc)) from None
        return in_app(*args, **kwargs)

    return checked


def _gunicorn_argv(host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        "4",
        # Pages poll every 1.5-2 s: keep their connections open longer than
        # that (gunicorn's default of 2 s closed them just as the next poll came).
        "--keep-alive",
        "10",
        "--access-logfile",
        "-",
        "--no-control-socket",  # a fixed socket path would clash between instances
        "app:create_app()",
    ]


@main.command(with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
@preflight_first
def web(host, port, web_workers):
    """Run the web server (gunicorn)."""
    argv = _gunicorn_argv(host, port, web_workers)
    os.execv(argv[0], argv)


@main.command(with_appcontext=False)
@click.option("--workers", default=2, show_default=True, type=int, help="Stages run at once.")
@preflight_first
def worker(workers):
    """Run a worker: executes stages and runs the reaper.

    SIGTERM: take no new stages, let running ones finish within
    TASKDECK_SHUTDOWN_GRACE seconds, hand back the rest (a second SIGTERM
    ends the wait). SIGINT: hand running stages back at once.
    """
    from tasks.worker import run_worker  # the entry point is the one place app/ meets tasks/

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_worker(current_app._get_current_object(), workers)


def _stop_with_parent() -> None:
    """Child side: SIGTERM when `serve` dies, even by SIGKILL, so nothing is orphaned (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@main.command(with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    default=lambda: int(os.environ.get("PORT", 8000)),
    type=int,
    show_default="$PORT or 8000",
)
@click.option("--workers", default=2, show_default=True, type=int)
@preflight_first
def serve(host, port, workers):
    """Run the web server and one worker together until Ctrl-C."""
    worker_argv = [sys.executable, "-m", "app.cli", "worker", "--workers", str(workers)]
    # In sessions of their own, the children hear Ctrl-C only through `forward`:
    # the worker always gets SIGTERM, its graceful signal, so a running stage
    # may finish; a second Ctrl-C is a second SIGTERM, which hands it back.
    web, worker = children = [
        subprocess.Popen(argv, preexec_fn=_stop_with_parent, start_new_session=True)
        for argv in (_gunicorn_argv(host, port, 2), worker_argv)
    ]
    click.echo(f"Taskdeck on http://{host}:{port}/ with a worker; Ctrl-C stops both.")

    stopping: set[int] = set()  # children asked to stop, by pid

    def forward(signum, _frame):
        stop_web = signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM
        for child, stop in ((web, stop_web), (worker, signal.SIGTERM)):
            if child.poll() is None:
                child.send_signal(stop)
                stopping.add(child.pid)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    # Whichever child ends first (a signal, or a crash) takes the other down.
    while all(child.poll() is None for child in children):
        try:
            os.wait()
        except ChildProcessError:
            break
    for child in children:
        # Not twice: a second SIGTERM would cut the worker's grace period short.
        if child.poll() is None and child.pid not in stopping:
            child.send_signal(signal.SIGTERM)
    # A child ended by the stop signal we forwarded stopped as asked, even when
    # it was still finishing the first one (gunicorn after a worker that left first).
    asked = (-signal.SIGINT, -signal.SIGTERM)
    failures = [
        abs(code) for code in (child.wait() for child in children) if code not in (0, *asked)
    ]
    sys.exit(max(failures, default=0))


@main.command(with_appcontext=False)
@preflight_first
def init():
    """Create or migrate the database and create the admin user on first run."""
    from flask_migrate import upgrade

    upgrade()
    generated = accounts.ensure_admin(os.environ.get("TASKDECK_ADMIN_PASSWORD"))
    if generated:
        click.echo(f"Created user 'admin' with password: {generated}")
        click.echo("(shown once; set TASKDECK_ADMIN_PASSWORD to choose it yourself)")


@main.group()
def user():
    """Manage users."""


@user.command("create")
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="May see and act on every task.")
def user_create(name, password, admin):
    """Create a user."""
    try:
        accounts.create_user(name, password, is_admin=admin)
    except ServiceError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"Created user '{name}'{' (admin)' if admin else ''}")


@user.command("password")
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def user_password(name, password):
    """Set a user's password; every browser login of theirs ends (API tokens stay)."""
    found = _user_or_fail(name)
    try:
        accounts.set_password(found, password)
    except ServiceError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"Changed the password of '{name}'; their browser logins have ended")


@main.group()
def token():
    """Manage API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="A label to recognise it by.")
def token_create(username, name):
    """Create an API token; it is printed once, alone on the last line."""
    owner = _user_or_fail(username)
    _, plain = accounts.create_token(owner, name)
    click.echo(f"API token for '{username}' (store it now; it is not shown again):")
    click.echo(plain)


@main.command()
@click.argument("task_type")
@click.option("--param", "-p", multiple=True, metavar="KEY=VALUE", help="Repeat for each param.")
@click.option(
    "--priority",
    default=str(PRIORITY_DEFAULT),
    show_default=True,
    help=f"{PRIORITY_MIN} (most urgent) to {PRIORITY_MAX} (lowest).",
)
@click.option("--user", "username", default="admin", show_default=True, help="Owner.")
def submit(task_type, param, priority, username):
    """Submit a task and print its id (read like the JSON API's and the form's input)."""
    given: dict[str, list[str]] = {}
    for item in param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        given.setdefault(f"params.{key}", []).append(value)
    # One value is text; several are refused by name, as a repeated form field is.
    fields = {name: values[0] if len(values) == 1 else values for name, values in given.items()}
    fields.update(type=task_type, priority=priority)
    owner = _user_or_fail(username)
    try:
        data = inputs.parse(inputs.TaskCreate, fields)
        task = commands.submit(owner, data.type, data.params, data.priority, actor=owner.username)
    except ServiceError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(task.id)


@main.command()
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    required=True,
    metavar="DAYS",
    help="Delete tasks that finished more than DAYS days ago.",
)
def prune(days):
    """Delete finished tasks older than DAYS, with their logs, items, artifacts and uploads."""
    done = retention.prune(timedelta(days=days))
    click.echo(
        f"Deleted {done['tasks']} task(s), {done['files']} artifact file(s) "
        f"and {done['uploads']} upload folder(s)"
    )


def _user_or_fail(username: str):
    found = accounts.find_user(username)
    if found is None:
        raise click.ClickException(f"No user named '{username}'")
    return found


if __name__ == "__main__":
    main()
