"""Images for posts: upload a PNG, JPEG or WebP (checked, re-encoded, stored in sizes) with its description."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import StringField
from wtforms.validators import Length

from admin.blueprint import bp
from core.db import db
from studio.media import ImageRefused, all_images, images_by_key, store_image

# Room for a 5 MB picture and the form around it; a larger file still gets the words saying why, up to this.
UPLOAD_LIMIT = 12 * 1024 * 1024


class ImageForm(FlaskForm):
    """A picture and what it shows."""

    file = FileField("Picture (PNG, JPEG or WebP, up to 5 MB)")
    alt = StringField("What it shows (alt text, read aloud to people who cannot see it)", validators=[Length(max=300)])


@bp.url_value_preprocessor
def _allow_uploads(endpoint: str | None, _values: dict | None) -> None:
    # Before any before_request hook: the CSRF check reads the body, and the site-wide limit is 64 KB.
    if endpoint == "admin.images" and request.method == "POST" and current_user.is_authenticated:
        request.max_content_length = UPLOAD_LIMIT


@bp.route("/images", methods=["GET", "POST"])
def images() -> str | tuple[str, int] | Response:
    """Uploaded images with the name to use in a post, and the upload form."""
    form = ImageForm()
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        if upload is None or not getattr(upload, "filename", ""):
            form.file.errors = ["choose a picture to upload"]
        else:
            try:
                with db.write_transaction() as session:
                    stored = store_image(
                        session, upload.read(), upload.filename, form.alt.data or "", current_user.email
                    )
                    key = stored.key
            except ImageRefused as exc:
                target = form.alt if "alt text" in str(exc) or "description" in str(exc) else form.file
                target.errors = [f"Not uploaded: {exc}."]
            else:
                flash(f"Uploaded: use media:{key} as a post's image.", "success")
                return redirect(url_for("admin.images"))
    if form.errors or (form.is_submitted() and (form.file.errors or form.alt.errors)):
        status = 400
    found = images_by_key(db.session)
    rows = [(image, found[image.key]) for image in all_images(db.session)]
    return render_template("admin/images.html", form=form, rows=rows), status
