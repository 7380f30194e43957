"""Routes about the API itself: the pipelines on offer and the OpenAPI document."""

from flask import current_app

from app.api import bp, schemas
from app.api.operations import build_spec, operation
from tasks.pipelines import all_pipelines


@operation(bp, "/task-types", "GET", response=schemas.TaskTypeList)
def list_task_types():
    """List the pipelines with their stages and params schema."""
    return {"items": [pipeline.describe() for pipeline in all_pipelines()]}


@operation(bp, "/openapi.json", "GET", response=schemas.OpenApiDocument, public=True)
def openapi():
    """This document: every route of the API, generated from the code."""
    if "OPENAPI_SPEC" not in current_app.extensions:
        current_app.extensions["OPENAPI_SPEC"] = build_spec(prefix="/api/v1")
    return current_app.extensions["OPENAPI_SPEC"]
