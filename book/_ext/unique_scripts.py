"""Each script once on a page.

In the book's build, sphinx-thebe and sphinx-togglebutton register their inline
configuration scripts twice, so every page declared ``const THEBE_JS_URL`` twice
and the browser raised "Identifier 'THEBE_JS_URL' has already been declared"
(tests/test_book_browser.py fails on any console error). This drops the repeats.
"""

from __future__ import annotations


def _script_key(script) -> tuple:
    attributes = getattr(script, "attributes", None) or {}
    # an inline script is registered once with filename None and once with "": the same script
    return getattr(script, "filename", str(script)) or "", tuple(sorted((k, str(v)) for k, v in attributes.items()))


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # in place: it is the builder's list, to which later handlers (MathJax's) still add
    scripts[:] = unique


def setup(app):
    # Early: the event stops at the first handler that returns a template name, and the
    # repeated scripts are registered before any page is written.
    app.connect("html-page-context", drop_repeated_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
