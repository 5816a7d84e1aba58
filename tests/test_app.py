"""The app starts, reports its health and answers errors as pages."""

from __future__ import annotations


def test_healthz_reports_database(client, backend):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] == {"ok": True, "backend": backend}


def test_unknown_page_is_a_helpful_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert b"Page not found" in response.data


def test_an_unexpected_error_is_a_calm_500_page_and_logs_where_not_what(make_config, caplog):
    from app import create_app

    application = create_app(make_config())

    @application.get("/boom")
    def boom():
        from flask import request

        raise ValueError(request.args["message"])  # a message may quote what the visitor typed

    response = application.test_client().get("/boom?message=knee+pain+since+March")
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.data
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "unhandled ValueError on GET /boom" in logged
    assert "test_app.py" in logged  # the frames, so an operator can find the line
    assert "knee pain" not in logged
