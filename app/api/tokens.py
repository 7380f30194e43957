"""API token routes: the JSON twin of the tokens page."""

from flask_login import current_user

from app.api import bp, schemas
from app.api.operations import operation
from app.services import accounts


@operation(bp, "/tokens", "GET", response=schemas.TokenList)
def list_tokens():
    """List your API tokens (never their secret), live ones first."""
    return {"items": [token.to_dict() for token in accounts.list_tokens(current_user)]}


@operation(
    bp, "/tokens", "POST", body=schemas.TokenCreate, response=schemas.TokenCreated, status=201
)
def create_token(data):
    """Create an API token; the response is the only time its secret is shown."""
    token, plain = accounts.create_token(current_user, data["name"])
    return {**token.to_dict(), "token": plain}


@operation(
    bp, "/tokens/<int:token_id>/revoke", "POST", response=schemas.TokenRevoked, errors=(404,)
)
def revoke_token(token_id):
    """Revoke one of your tokens; requests using it get 401 from then on."""
    token = accounts.revoke_token(current_user, token_id)
    return {"success": True, "message": "Token revoked", "token": token.to_dict()}
