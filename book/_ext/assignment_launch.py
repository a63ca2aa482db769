"""``{assignment-launch} <id>``: launch links that open an assignment's *exercise* notebook.

Jupyter Book's own launch buttons open the page being read; an assignment
page must instead open ``exercises/<id>/<id>.ipynb``. The links are built from
the same ``repository`` and ``launch_buttons`` settings of ``_config.yml``, so
the repository address is written in one place only.
"""

from __future__ import annotations

from urllib.parse import quote

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def launch_links(theme_options: dict, assignment: str) -> list[tuple[str, str]]:
    repo_url = theme_options.get("repository_url", "").rstrip("/")
    branch = theme_options.get("repository_branch", "main")
    launch = theme_options.get("launch_buttons", {})
    path = f"exercises/{assignment}/{assignment}.ipynb"
    org_repo = repo_url.split("github.com/")[-1]
    repo_name = org_repo.split("/")[-1]
    links = []
    if launch.get("binderhub_url"):
        binder = launch["binderhub_url"].rstrip("/")
        links.append(("Binder", f"{binder}/v2/gh/{org_repo}/{branch}?urlpath={quote('lab/tree/' + path, safe='')}"))
    if launch.get("colab_url"):
        links.append(("Colab", f"{launch['colab_url'].rstrip('/')}/github/{org_repo}/blob/{branch}/{path}"))
    if launch.get("jupyterhub_url"):
        hub = launch["jupyterhub_url"].rstrip("/")
        pull = (
            f"repo={quote(repo_url, safe='')}&branch={branch}"
            f"&urlpath={quote(f'lab/tree/{repo_name}/{path}', safe='')}"
        )
        links.append(("JupyterHub", f"{hub}/hub/user-redirect/git-pull?{pull}"))
    return links


class AssignmentLaunch(SphinxDirective):
    required_arguments = 1

    def run(self):
        assignment = self.arguments[0]
        links = launch_links(self.config.html_theme_options, assignment)
        if not links:
            raise self.error("no launch_buttons configured in _config.yml")
        paragraph = nodes.paragraph(text="Open the exercise in: ")
        for index, (label, url) in enumerate(links):
            if index:
                paragraph += nodes.Text(" · ")
            paragraph += nodes.reference(text=label, refuri=url)
        return [paragraph]


def setup(app):
    app.add_directive("assignment-launch", AssignmentLaunch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
