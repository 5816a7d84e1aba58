"""The real app, plus a header naming the gunicorn worker that answered (tests only, to see both workers serve)."""

from __future__ import annotations

import os

from flask import Response

from app import create_app

app = create_app()


@app.after_request
def _name_the_worker(response: Response) -> Response:
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response
