"""Routes about the API itself: the pipelines on offer and the OpenAPI document."""

from flask import current_app

from app.api import bp
from app.api.spec import answers, document, spec
from app.schemas import outputs
from app.services.catalog import all_pipelines


@bp.get("/task-types")
@spec.validate(resp=answers(200, outputs.TaskTypeList))
def list_task_types():
    """List the pipelines with their stages and params schema."""
    return outputs.TaskTypeList(items=[pipeline.describe() for pipeline in all_pipelines()])


@bp.get("/openapi.json")
@spec.validate(resp=answers(200, None, public=True), security={})
def openapi():
    """This document: every route of the API, generated from the code."""
    if "taskdeck.openapi" not in current_app.extensions:
        current_app.extensions["taskdeck.openapi"] = document()
    return current_app.json.response(current_app.extensions["taskdeck.openapi"])
