"""API token routes: the JSON twin of the tokens page."""

from flask_login import current_user

from app.api import bp
from app.api.spec import answers, body, posted, spec
from app.schemas import inputs, outputs
from app.services import accounts


@bp.get("/tokens")
@spec.validate(resp=answers(200, outputs.TokenList))
def list_tokens():
    """List your API tokens (never their secret), live ones first."""
    return outputs.TokenList(items=accounts.list_tokens(current_user))


@bp.post("/tokens")
@posted(inputs.TokenCreate, outputs.TokenCreated, status=201)
def create_token():
    """Create an API token; the response is the only time its secret is shown."""
    token, plain = accounts.create_token(current_user, body().name)
    shown = outputs.Token.model_validate(token)
    return outputs.TokenCreated(**dict(shown), token=plain), 201


@bp.post("/tokens/<int:token_id>/revoke")
@posted(inputs.NoBody, outputs.TokenRevoked, 404)
def revoke_token(token_id):
    """Revoke one of your tokens; requests using it get 401 from then on."""
    token = accounts.revoke_token(current_user, token_id)
    return outputs.TokenRevoked(message="Token revoked", token=token)
