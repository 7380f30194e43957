"""The `taskdeck` command: a Flask CLI group with the app preset.

`serve` runs gunicorn and one worker as child processes in the foreground;
Ctrl-C (SIGINT to the whole process group) or SIGTERM stops both.
"""

import logging
import os
import signal
import subprocess
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup

from app import create_app
from app.services import accounts, lifecycle
from app.services.errors import ServiceError
from tasks.pipelines import coerce_params


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False)
def main():
    """Taskdeck: a control deck for long-running, multi-stage background tasks."""


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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
def web(host, port, web_workers):
    """Run the web server (gunicorn)."""
    argv = _gunicorn_argv(host, port, web_workers)
    os.execv(argv[0], argv)


@main.command()
@click.option("--workers", default=2, show_default=True, type=int, help="Stages run at once.")
def worker(workers):
    """Run a worker: executes stages and runs the reaper.

    SIGTERM or SIGINT: take no new stages, let running ones finish within
    TASKDECK_SHUTDOWN_GRACE seconds, hand back the rest (a second signal
    skips the wait).
    """
    from tasks.queue import huey
    from tasks.runner import bind_app
    from tasks.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = current_app._get_current_object()
    bind_app(app)
    run_worker(app, huey, workers)


def _stop_with_parent() -> None:
    """Child side: SIGTERM when `serve` dies, even by SIGKILL, so nothing is orphaned (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    default=lambda: int(os.environ.get("PORT", 8000)),
    type=int,
    show_default="$PORT or 8000",
)
@click.option("--workers", default=2, show_default=True, type=int)
def serve(host, port, workers):
    """Run the web server and one worker together until Ctrl-C."""
    worker_argv = [sys.executable, "-m", "app.cli", "worker", "--workers", str(workers)]
    children = [
        subprocess.Popen(argv, preexec_fn=_stop_with_parent)
        for argv in (_gunicorn_argv(host, port, 2), worker_argv)
    ]
    click.echo(f"Taskdeck on http://{host}:{port}/ with a worker; Ctrl-C stops both.")

    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    # Whichever child ends first (a signal, or a crash) takes the other down.
    while all(child.poll() is None for child in children):
        try:
            os.wait()
        except ChildProcessError:
            break
    forward(signal.SIGTERM, None)
    # A child ended by the stop signal we forwarded stopped as asked, even when
    # it was still finishing the first one (gunicorn after a worker that left first).
    asked = (-signal.SIGINT, -signal.SIGTERM)
    failures = [
        abs(code) for code in (child.wait() for child in children) if code not in (0, *asked)
    ]
    sys.exit(max(failures, default=0))


@main.command()
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
@click.option("--priority", default=6, show_default=True, type=click.IntRange(0, 11))
@click.option("--user", "username", default="admin", show_default=True, help="Owner.")
def submit(task_type, param, priority, username):
    """Submit a task and print its id."""
    raw = {}
    for item in param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        raw[key] = value
    owner = _user_or_fail(username)
    try:
        task = lifecycle.submit(
            owner, task_type, coerce_params(task_type, raw), priority, actor=owner.username
        )
    except ServiceError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(task.id)


def _user_or_fail(username: str):
    found = accounts.find_user(username)
    if found is None:
        raise click.ClickException(f"No user named '{username}'")
    return found


if __name__ == "__main__":
    main()
