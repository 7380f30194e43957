"""Task counts per type and state, read from the deltas the database's triggers keep.

`COUNT(*) ... GROUP BY type, state` over a million tasks took seconds
(bench/million.py); the sums of `task_counts` (app/models.py, TaskCount)
take a few milliseconds. They stay right under races because the
database writes them: every INSERT, DELETE or change of state on `tasks`,
by any statement, adds its +1/-1 rows in the same transaction, and a
rolled-back change takes its rows with it.
"""

from sqlalchemy import delete, func, insert, select

from app.extensions import db
from app.models import TaskCount, User

COUNTS = TaskCount.__table__
_GROUP = (COUNTS.c.owner_id, COUNTS.c.type, COUNTS.c.state)


def by_type_and_state(actor: User, states=None) -> list[tuple[str, str, int]]:
    """(type, state, count) of the tasks `actor` may see (admins: all), non-zero only."""
    total = func.sum(COUNTS.c.delta)
    query = select(COUNTS.c.type, COUNTS.c.state, total).group_by(COUNTS.c.type, COUNTS.c.state)
    if not actor.is_admin:
        query = query.where(COUNTS.c.owner_id == actor.id)
    if states is not None:
        query = query.where(COUNTS.c.state.in_(states))
    return [(t, s, int(n)) for t, s, n in db.session.execute(query.having(total != 0))]


FOLD_CHUNK = 20_000


def fold() -> int:
    """Replace the deltas with one row per owner, type and state; how many rows it took away.

    One transaction: the rows it deletes are exactly those it sums
    (DELETE ... RETURNING), so deltas that other transactions add meanwhile
    are neither lost nor counted twice, on SQLite and on PostgreSQL. It
    deletes FOLD_CHUNK rows at a time, so a backlog (a bulk import, a long
    time without a worker) costs no more memory than a small one.
    """
    oldest = select(COUNTS.c.id).order_by(COUNTS.c.id).limit(FOLD_CHUNK).scalar_subquery()
    take = delete(COUNTS).where(COUNTS.c.id.in_(oldest)).returning(*_GROUP, COUNTS.c.delta)
    sums: dict[tuple, int] = {}
    taken = 0
    while True:
        rows = db.session.execute(take).all()
        taken += len(rows)
        for owner_id, task_type, state, delta in rows:
            key = (owner_id, task_type, state)
            sums[key] = sums.get(key, 0) + delta
        if len(rows) < FOLD_CHUNK:
            break
    folded = [
        {"owner_id": o, "type": t, "state": s, "delta": n} for (o, t, s), n in sums.items() if n
    ]
    if folded:
        db.session.execute(insert(COUNTS), folded)
    db.session.commit()
    return taken - len(folded)
