"""/docs/: the documentation site, as `make docs` built it (MkDocs, into HELDOUT_DOCS_DIR).

A view rather than WhiteNoise: WhiteNoise indexes its folders when the process starts, and
the site may be built (or rebuilt) while the server runs, as `make demo` and the tests do.
The pages are small static files; no login is needed, as for the repository's docs/ folder.
Where the site has not been built, /docs/ says how to build it.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import escape
from django.views.decorators.http import require_safe

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Documentation not built</title></head>
<body><h1>The documentation has not been built here</h1>
<p>Build it from the checkout with <code>make docs</code> (or
<code>.venv/bin/mkdocs build --strict</code>); it is written to <code>{folder}</code> and
served here at once. The same guides are Markdown files in the repository's
<code>docs/</code> folder.</p></body></html>
"""


def _root() -> Path:
    return Path(settings.HELDOUT_DOCS_DIR).resolve()


def _target(root: Path, path: str) -> Path | None:
    """The file `path` names inside the built site, or None (absent, or outside it)."""
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        return None
    if target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None


def _file(target: Path, status: int = 200) -> FileResponse:
    content_type, encoding = mimetypes.guess_type(target.name)
    if encoding or not content_type:  # sitemap.xml.gz: a file to download, as it is
        content_type = "application/octet-stream"
    return FileResponse(target.open("rb"), status=status, content_type=content_type)


@require_safe
def docs_page(request: HttpRequest, path: str = "") -> HttpResponse:
    root = _root()
    if not (root / "index.html").is_file():
        return HttpResponse(NOT_BUILT.format(folder=escape(str(root))), status=404)
    target = _target(root, path)
    if target is None:
        missing = root / "404.html"
        return _file(missing, 404) if missing.is_file() else HttpResponse(status=404)
    if target.name == "index.html" and path and not path.endswith(("/", ".html")):
        # A folder named without its slash: the page's relative links need the slash.
        return HttpResponseRedirect(request.path + "/")
    return _file(target)
