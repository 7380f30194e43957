"""remote_job: what mirroring jobs on a second Taskdeck costs, 5 at once, with a real consumer.

The other deck is tests/live.py's Deck (`taskdeck web` + one `taskdeck
worker` with a thread per job, its own data dir, database and queue); its
admin token is the secret "there" in a secrets file (chmod 600), as in
tests/integration/test_remote_job.py. This deck's consumer runs in this
process with one worker thread per task. Each task mirrors a demo job of
4 stages × 15 s there. Figures:

- Polls per minute per task: the stage output's `polls` / the stage's
  minutes (started → finished), and the requests the other deck served
  (its gunicorn access log, from the first submit to the last task's end).
  A warm-up job there first makes sure its worker takes jobs at once.
- The local worker's CPU seconds per task-minute: this process's CPU time
  less the main thread's (which only waits for the tasks), over the run,
  divided by the tasks' summed stage minutes.
- Remote end → local end: the local task's finished_at less the remote
  one's (both decks on this machine's clock).
- Cancel here → cancelled there: 5 more tasks whose jobs run 120 s there,
  cancelled here (the API) once every job runs; the remote task's
  finished_at less the moment the cancel was asked (goal ≤ 3 s).
"""

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import figure, make_app, start_consumer

from app.extensions import db
from app.services import accounts, commands
from tests.live import Deck

TASKS = 5
JOB = {"type": "demo", "params": {"stages": 4, "seconds": 15}}
LONG_JOB = {"type": "demo", "params": {"stages": 1, "seconds": 120}}
TIMEOUT = 240


def seconds(started: str, finished: str) -> float:
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


def served(log: Path) -> int:
    """API requests in the other deck's access log so far."""
    return sum(" /api/v1/" in line for line in log.read_text().splitlines())


def worker_cpu() -> float:
    """CPU seconds of every thread of this process but the main one (the consumer's)."""
    return time.process_time() - time.thread_time()


def cancelled_there(app, client, headers, there, params) -> list[float]:
    """Seconds from a cancel asked here to the job's end there, for TASKS jobs running there."""
    with app.app_context():
        user = accounts.find_user("bench")
        ids = [
            commands.submit(user, "remote_job", params, 6, actor="bench").id for _ in range(TASKS)
        ]
        db.session.commit()
    jobs: dict[str, str] = {}
    give_up = time.monotonic() + 60
    while len(jobs) < TASKS or any(there.task(j)["state"] != "running" for j in jobs.values()):
        if time.monotonic() > give_up:
            raise SystemExit("the long jobs did not all start there within 60 s")
        for task_id in set(ids) - set(jobs):
            lines = client.get(f"/api/v1/tasks/{task_id}/logs", headers=headers).get_json()
            said = [i["line"] for i in lines["items"] if i["line"].startswith("submitted to ")]
            if said:
                jobs[task_id] = said[0].rsplit(" ", 1)[1]
        time.sleep(0.2)
    asked = {}
    for task_id in ids:
        asked[task_id] = datetime.now(UTC)
        client.post(f"/api/v1/tasks/{task_id}/cancel", headers=headers, json={"reason": "bench"})
    give_up = time.monotonic() + 60
    while not all(there.task(j)["finished_at"] for j in jobs.values()):
        if time.monotonic() > give_up:
            raise SystemExit("the jobs there were not cancelled within 60 s")
        time.sleep(0.2)
    ended = {task_id: there.task(job) for task_id, job in jobs.items()}
    assert all(job["state"] == "cancelled" for job in ended.values()), ended
    return [
        (datetime.fromisoformat(ended[i]["finished_at"]) - asked[i]).total_seconds() for i in ids
    ]


def main() -> None:
    app, token = make_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory(prefix="taskdeck-remote-") as folder:
        there = Deck(Path(folder))
        consumer = None
        try:
            there.start_worker(threads=TASKS)
            warm_up = there.submit(stages=1, seconds=0)  # the jobs then start as they come
            give_up = time.monotonic() + 60
            while there.task(warm_up)["state"] != "succeeded":
                if time.monotonic() > give_up:
                    raise SystemExit("the other deck's worker ran no job within 60 s")
                time.sleep(0.2)
            secrets = Path(folder) / "secrets.toml"
            secrets.write_text(f'[there]\nkey = "{there.http.token}"\nurl = "{there.http.base}"\n')
            os.chmod(secrets, 0o600)
            os.environ["TASKDECK_SECRETS_FILE"] = str(secrets)
            consumer = start_consumer(app, workers=TASKS)
            params = {"adapter": "taskdeck", "url": there.http.base, "secret": "there"}
            params["input"] = JOB
            requests_before, cpu_before = served(Path(folder) / "web.log"), worker_cpu()
            with app.app_context():
                user = accounts.find_user("bench")
                ids = [
                    commands.submit(user, "remote_job", params, 6, actor="bench").id
                    for _ in range(TASKS)
                ]
                db.session.commit()
            give_up = time.monotonic() + TIMEOUT
            while True:
                tasks = [client.get(f"/api/v1/tasks/{i}", headers=headers).get_json() for i in ids]
                if all(t["finished_at"] for t in tasks):
                    break
                if time.monotonic() > give_up:
                    raise SystemExit(f"the remote_job tasks did not finish within {TIMEOUT} s")
                time.sleep(1)
            cpu = worker_cpu() - cpu_before
            time.sleep(0.2)  # gunicorn writes the last access lines
            requests = served(Path(folder) / "web.log") - requests_before
            bad = [(t["state"], t["error_message"]) for t in tasks if t["state"] != "succeeded"]
            assert not bad, bad
            jobs = [there.task(t["stages"][0]["output"]["job"]) for t in tasks]
            long_jobs = {**params, "input": LONG_JOB}
            cancel_lags = cancelled_there(app, client, headers, there, long_jobs)
        finally:
            if consumer is not None:
                consumer.stop(graceful=True)
            there.close()
    stages = [t["stages"][0] for t in tasks]
    minutes = [seconds(s["started_at"], s["finished_at"]) / 60 for s in stages]
    polls = [s["output"]["polls"] for s in stages]
    rates = [p / m for p, m in zip(polls, minutes, strict=True)]
    lags = [
        seconds(job["finished_at"], t["finished_at"]) for job, t in zip(jobs, tasks, strict=True)
    ]
    job_seconds = statistics.mean(seconds(j["started_at"], j["finished_at"]) for j in jobs)
    figure(
        f"remote_job: {TASKS} tasks at once, each mirroring a demo job of 4 stages × 15 s "
        f"({job_seconds:.0f} s there) on a second Taskdeck: {statistics.mean(rates):.0f} polls "
        f"per minute per task (min {min(rates):.0f}, max {max(rates):.0f}; "
        f"{sum(polls)} polls in all); the other deck served {requests} API requests, "
        f"{requests / sum(minutes):.0f} per task-minute ({requests / sum(polls):.2f} per poll)"
    )
    figure(
        f"remote_job: local worker CPU {cpu:.1f} s over {sum(minutes):.1f} task-minutes: "
        f"{cpu / sum(minutes):.2f} CPU s per task-minute ({cpu / sum(minutes) / 60:.1%} of a core "
        f"per task); remote end → local end p50 {statistics.median(lags) * 1000:.0f} ms, "
        f"max {max(lags) * 1000:.0f} ms"
    )
    figure(
        f"remote_job: cancel here → job cancelled there (goal ≤ 3 s), {TASKS} jobs running there: "
        f"p50 {statistics.median(cancel_lags) * 1000:.0f} ms, max {max(cancel_lags) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
