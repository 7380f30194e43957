"""Files posted with a submit, read the same way for the JSON API and the new-task form.

A multipart submit carries each file as a field named `params.<name>`,
beside the `params.<name>` text fields; the service decides whether the
param takes a file (UploadParam). A file input left empty (a browser sends
it with no file name) is no file, so the form's path field is used instead.
"""

from flask import request
from flask_babel import gettext

from app.services.errors import InvalidRequest
from app.services.uploads import Upload

PREFIX = "params."


def sent_files() -> dict[str, Upload]:
    """The request's files by param name; InvalidRequest for a field of another name."""
    found: dict[str, Upload] = {}
    for field, storage in request.files.items(multi=True):
        name = (field or "").removeprefix(PREFIX)
        if not field or not field.startswith(PREFIX) or not name:
            raise InvalidRequest(
                gettext("A file must be sent as params.<name>, not %(field)s", field=repr(field))
            )
        if not storage.filename:
            continue
        if name in found:
            raise InvalidRequest(gettext("Only one file can be sent for %(name)s", name=name))
        found[name] = Upload(storage.filename, storage.stream)
    return found
