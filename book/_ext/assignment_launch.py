"""Launch buttons and links that open the *student kit's* notebooks, never this repository.

The book's ``repository.url`` (``_config.yml``) is the student repository, the
public one ``make student-kit``'s folder is pushed to. There, each chapter is
``chapters/<chapter>.ipynb`` (executed) and each exercise is
``assignments/<id>/<id>.ipynb``; the paths and URLs come from
``regcourse.student_kit``, which writes the kit, so the two always agree.

- The theme's launch buttons (the rocket at the top of a page) would open the
  page's own source, ``book/<chapter>.md``, which Colab cannot open and the
  student repository does not hold: on a chapter page they are rebuilt to open
  the chapter's kit notebook, and an assignment page gets buttons that open
  its exercise. A JupyterHub button appears only when ``jupyterhub_url`` is set.
- ``{assignment-launch} <id>`` writes an assignment page's links: the exercise
  in Binder, Colab (and JupyterHub), on GitHub, and the whole kit.
- ``{student-kit}`` writes where the kit is and what it holds.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from regcourse.student_kit import (
    LaunchSettings,
    archive_url,
    assignment_path,
    book_chapters,
    chapter_path,
    course_assignments,
    file_url,
    launch_links,
)

_ICONS = {
    "Binder": "_static/images/logo_binder.svg",
    "Colab": "_static/images/logo_colab.png",
    "JupyterHub": "_static/images/logo_jupyterhub.svg",
}
ASSIGNMENT_PAGES = "book/assignments/"


def _settings(app) -> LaunchSettings:
    return LaunchSettings.from_theme_options(app.config.html_theme_options)


def _kit_notebooks(app) -> dict[str, str]:
    """docname -> the kit notebook its launch buttons open."""
    if not hasattr(app, "_student_kit_notebooks"):  # on the app, not the pickled environment
        root = Path(app.srcdir)
        notebooks = {docname: chapter_path(docname) for docname in book_chapters(root)}
        notebooks.update({f"{ASSIGNMENT_PAGES}{a}": assignment_path(a) for a in course_assignments(root)})
        app._student_kit_notebooks = notebooks
    return app._student_kit_notebooks


def _reference(label: str, url: str) -> nodes.reference:
    return nodes.reference(text=label, refuri=url)


def _join(paragraph: nodes.paragraph, links: list[tuple[str, str]]) -> None:
    for index, (label, url) in enumerate(links):
        if index:
            paragraph += nodes.Text(" · ")
        paragraph += _reference(label, url)


class AssignmentLaunch(SphinxDirective):
    """The links of an assignment page: launch the exercise, view it on GitHub, get the whole kit."""

    required_arguments = 1

    def run(self):
        assignment = self.arguments[0]
        if assignment not in course_assignments(Path(self.env.srcdir)):
            raise self.error(f"{assignment} is not in ASSIGNMENTS of nbgrader_config.py")
        settings = _settings(self.env.app)
        path = assignment_path(assignment)
        links = launch_links(settings, path)
        if not links:
            raise self.error("no launch_buttons configured in _config.yml")
        launch = nodes.paragraph(text="Open the exercise in: ")
        _join(launch, links)
        local = nodes.paragraph(text="Or work on your own computer: get the ")
        local += _reference("student kit", settings.repo_url)
        local += nodes.Text(" (")
        local += _reference("as a zip", archive_url(settings))
        local += nodes.Text(") and follow its README (two commands); the notebook is ")
        local += nodes.literal(text=path)
        local += nodes.Text(" (")
        local += _reference("view or download it on GitHub", file_url(settings, path))
        local += nodes.Text("). Submit it under the same file name.")
        return [launch, local]


class StudentKit(SphinxDirective):
    """Where the student kit is: every chapter and assignment notebook, and how to run them."""

    def run(self):
        settings = _settings(self.env.app)
        paragraph = nodes.paragraph(text="The ")
        paragraph += _reference("student kit", settings.repo_url)
        paragraph += nodes.Text(" (")
        paragraph += _reference("as a zip", archive_url(settings))
        paragraph += nodes.Text(
            ") holds every chapter as an executed notebook and every assignment. Its README says how to run "
            "them on your computer (two commands), on Binder, on Colab"
            + (" or on the course's JupyterHub." if settings.jupyterhub_url else ".")
        )
        return [paragraph]


def launch_buttons(app, pagename, templatename, context, doctree):
    """After the theme (priority 501): the page's launch buttons open its kit notebook, or are removed."""
    buttons = context.get("header_buttons")
    if buttons is None:
        return
    theirs = [i for i, b in enumerate(buttons) if b.get("label") == "launch-buttons"]
    position = theirs[0] if theirs else 0  # where the theme puts them: first
    buttons[:] = [b for b in buttons if b.get("label") != "launch-buttons"]
    path = _kit_notebooks(app).get(pagename)
    links = launch_links(_settings(app), path) if path else []
    if not links:
        return
    buttons.insert(position, {
        "type": "group",
        "tooltip": "Launch interactive content",
        "icon": "fas fa-rocket",
        "label": "launch-buttons",
        "buttons": [
            {"type": "link", "text": label, "tooltip": f"Launch on {label}", "icon": _ICONS[label], "url": url}
            for label, url in links
        ],
    })


def setup(app):
    app.add_directive("assignment-launch", AssignmentLaunch)
    app.add_directive("student-kit", StudentKit)
    app.connect("html-page-context", launch_buttons, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
