"""media_index over 2,000 small images and 500 text files, with a real consumer.

Figures (read from the stages' rows, so they time the stages, not the queue):
- preprocess files/s: files / (preprocess finished_at - started_at), on a
  first run (every file described) and on a re-run (every file unchanged).
  Goal: ≥ 200 files/s on the first run, on 2 cores.
- thumbnails/s: images / the thumbnails stage's duration (256 px JPEGs).
- search p50 / p95 over that index: 300 queries through the service layer
  (what the page and the API call), a third each of 1–2 character Chinese
  (a scan), 3+ character Chinese and English words (FTS5 trigrams).
"""

import io
import random
import time
from pathlib import Path

from harness import figure, make_app, percentiles, start_consumer
from PIL import Image

from app.extensions import db
from app.models import Task, TaskStage
from app.services import commands, search
from app.services.accounts import find_user

IMAGES, TEXTS, QUERIES = 2000, 500, 300
WORDS = [
    "会议",
    "预算",
    "季度预算",
    "招聘计划",
    "北京",
    "烤鸭很好吃",
    "sunset",
    "budget",
    "meeting",
]


def make_folder(root: Path) -> None:
    """photos/ of small distinct JPEGs and notes/ of Chinese and English words."""
    rng = random.Random(7)
    (root / "bench" / "photos").mkdir(parents=True)
    (root / "bench" / "notes").mkdir()
    bases = [Image.effect_noise((320, 240), 40 + 10 * i).convert("RGB") for i in range(8)]
    for n in range(IMAGES):
        out = io.BytesIO()
        image = bases[n % len(bases)].copy()
        image.paste((n % 256, n // 256, 99), (0, 0, 16, 16))  # every image distinct: its own thumb
        image.save(out, "JPEG", quality=80)
        (root / "bench" / "photos" / f"img-{n:05}.jpg").write_bytes(out.getvalue())
    for n in range(TEXTS):
        words = " ".join(rng.choice(WORDS) for _ in range(200))
        (root / "bench" / "notes" / f"note-{n:04}.md").write_text(f"# 笔记 {n}\n\n{words}\n")


def run_once(user, thumbnails: bool) -> Task:
    task_id = commands.submit(
        user, "media_index", {"folder": "bench", "thumbnails": thumbnails}, 6, actor="bench"
    ).id
    db.session.commit()
    give_up = time.monotonic() + 900
    while time.monotonic() < give_up:
        db.session.expire_all()
        task = db.session.get(Task, task_id)
        if task.state in ("succeeded", "partial_success", "failed", "cancelled"):
            return task
        time.sleep(0.5)
    raise SystemExit("media_index did not finish within 15 minutes")


def seconds(task: Task, name: str) -> float:
    stage = db.session.scalar(
        db.select(TaskStage).where(TaskStage.task_id == task.id, TaskStage.name == name)
    )
    return (stage.finished_at - stage.started_at).total_seconds()


def main() -> None:
    app, _ = make_app()
    make_folder(Path(app.config["FILES_ROOT"]))
    consumer = start_consumer(app, workers=1)
    try:
        with app.app_context():
            user = find_user("bench")
            first = run_once(user, thumbnails=True)
            assert first.state == "succeeded", (first.state, first.error_message)
            files = IMAGES + TEXTS
            pre, thumbs = seconds(first, "preprocess"), seconds(first, "thumbnails")
            again = run_once(user, thumbnails=False)
            figure(
                f"media_index: preprocess {files} files (2,000 JPEGs 320×240, 500 notes) "
                f"{files / pre:,.0f} files/s first run, "
                f"{files / seconds(again, 'preprocess'):,.0f} files/s re-run (unchanged); "
                f"thumbnails {IMAGES / thumbs:,.0f} images/s (256 px); 1 worker thread"
            )
            rng = random.Random(11)
            took = []
            for _ in range(QUERIES):
                query = rng.choice(WORDS)
                started = time.perf_counter()
                search.search(user, first.id, query, 20)
                took.append(time.perf_counter() - started)
            p50, p95, _ = percentiles(took)
            figure(
                f"media_index: search over {files} files, {QUERIES} queries "
                f"(Chinese and English): p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
            )
    finally:
        consumer.stop(graceful=True)


if __name__ == "__main__":
    main()
