"""Users, browser logins and API tokens: creation, password and token checks."""

import functools
import hashlib
import hmac
import secrets
from datetime import timedelta

from flask_babel import gettext
from sqlalchemy import delete, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.constants import ACTOR_SYSTEM, ACTOR_WORKER
from app.extensions import db
from app.models import ApiToken, LoginSession, User, utcnow
from app.services.errors import InvalidRequest, NotFound

TOKEN_PREFIX = "tdk_"
TOKEN_NAME_MAX = 100
MIN_PASSWORD_LENGTH = 8
# Writing last_used_at on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# A login unused this long is over: as long as a remember-me cookie lasts.
LOGIN_IDLE_LIMIT = timedelta(days=365)


def _check_password_length(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            gettext("Password must be at least %(n)d characters", n=MIN_PASSWORD_LENGTH)
        )


def create_user(username: str, password: str, is_admin: bool = False) -> User:
    """Raise InvalidRequest for a taken name or a short password."""
    username = username.strip()
    if not username or len(username) > 80:
        raise InvalidRequest(gettext("Username must be 1 to 80 characters"))
    _check_password_length(password)
    if find_user(username) is not None or username in (ACTOR_WORKER, ACTOR_SYSTEM):
        # (the worker and the reaper sign events with these names)
        raise InvalidRequest(gettext("User '%(name)s' already exists", name=username))
    user = User(username=username, is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def check_login(username: str, password: str) -> User | None:
    """The user, if the password is theirs. An unknown name costs the same hash check.

    Otherwise a wrong password (one scrypt, ~0.1 s) and an unknown name (no
    hash at all) would tell an attacker by timing which names exist.
    """
    user = find_user(username)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if user.check_password(password) else None


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password nobody knows, made like real ones (same method and cost)."""
    return generate_password_hash(secrets.token_urlsafe(32))


def set_password(user: User, password: str) -> None:
    """Change the password and end every browser login of the user (API tokens stay)."""
    _check_password_length(password)
    user.set_password(password)
    db.session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    db.session.commit()


def start_login(user: User) -> str:
    """Record a new browser login and return its token, which is never stored.

    The user's logins unused for LOGIN_IDLE_LIMIT are cleared out on the way.
    """
    plain = secrets.token_urlsafe(32)
    db.session.execute(
        delete(LoginSession).where(
            LoginSession.user_id == user.id,
            LoginSession.last_seen_at < utcnow() - LOGIN_IDLE_LIMIT,
        )
    )
    db.session.add(LoginSession(user_id=user.id, token_hash=_hash(plain)))
    db.session.commit()
    user.login_token = plain
    return plain


def user_for_login(plain: str) -> User | None:
    """The user of a live browser login, carrying its token; None once it has ended."""
    login = db.session.scalar(select(LoginSession).where(LoginSession.token_hash == _hash(plain)))
    now = utcnow()
    if login is None or now - login.last_seen_at > LOGIN_IDLE_LIMIT:
        return None
    user = login.user
    if now - login.last_seen_at > LAST_USED_RESOLUTION:
        login.last_seen_at = now
        db.session.commit()
    user.login_token = plain
    return user


def end_login(plain: str) -> None:
    """Forget a browser login, so its cookies name nothing; ending it twice is harmless."""
    db.session.execute(delete(LoginSession).where(LoginSession.token_hash == _hash(plain)))
    db.session.commit()


def ensure_admin(password: str | None) -> str | None:
    """Create the `admin` user on first run; return the generated password, if one was."""
    if find_user("admin") is not None:
        return None
    generated = None if password else secrets.token_urlsafe(12)
    create_user("admin", password or generated, is_admin=True)
    return generated


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user: User, name: str = "") -> tuple[ApiToken, str]:
    """Return the stored token row and the plain token, which is never stored."""
    name = name.strip()
    if len(name) > TOKEN_NAME_MAX:
        raise InvalidRequest(
            gettext("Token name must be at most %(n)d characters", n=TOKEN_NAME_MAX)
        )
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=_hash(plain), prefix=plain[:10])
    db.session.add(token)
    db.session.commit()
    return token, plain


def list_tokens(user: User) -> list[ApiToken]:
    """The user's tokens, live ones first, newest first within each group."""
    return db.session.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == user.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())
    ).all()


def revoke_token(user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens; revoking it twice is harmless.

    Another user's token is reported as missing, so ids reveal nothing.
    """
    if not 0 < token_id < 2**31:  # beyond any id an INTEGER column holds (PostgreSQL: 32 bits)
        raise NotFound(gettext("Token not found"))
    db.session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            ApiToken.user_id == user.id,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    db.session.commit()
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(gettext("Token not found"))
    return token


def user_for_token(plain: str) -> User | None:
    """The owner of a live token, or None. Tokens are random, so a SHA-256 lookup is safe."""
    digest = _hash(plain)
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if token is None or token.revoked_at is not None:
        return None
    if not hmac.compare_digest(token.token_hash, digest):
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return token.user
