"""What students receive: the student kit, the book's launch links, and stock nbgrader feedback.

The kit (``regcourse.student_kit``, ``make student-kit``) is built once per
session into a temporary folder, its chapters' outputs taken from the book's
execution cache (``make test`` builds the book first).

- :func:`test_the_kit_leaks_nothing`: every file of the kit scanned against
  ``solutions/`` (now and every committed version), the grading code,
  ``tests/`` and the grading holdout; :func:`test_the_leak_scan_finds_planted_leaks`
  shows that the scan finds each kind of leak it claims to.
- :func:`test_every_exercise_runs_in_an_environment_made_from_the_kit`: see its docstring
  for what the environment is and what that proves.
- :func:`test_every_launch_link_of_the_built_book_opens_a_kit_file`: the built
  HTML (``_build/html``), parsed.
- :func:`test_stock_generate_feedback_hides_hidden_tests`: stock nbgrader on
  the tiny ``mini`` course (``tests/grading_corpus``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import nbformat
import numpy as np
import pytest

from regcourse import student_kit
from regcourse.student_kit import (
    COLAB_CELL_TAG,
    STUDENT_MODULES,
    HoldoutScanner,
    LaunchSettings,
    assignment_path,
    chapter_path,
    distinctive_secrets,
    find_leaks,
    grading_holdout,
    instructor_notebook_secrets,
    kit_files,
    launch_links,
)

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
#: Set to 1 to build the fresh environment exactly as the kit's README says, from the
#: package index (pip install -r requirements.txt -e .): minutes, so not in every `make test`.
FULL_INSTALL = os.environ.get("REGCOURSE_KIT_FULL_INSTALL") == "1"


@pytest.fixture(scope="session")
def settings() -> LaunchSettings:
    return LaunchSettings.from_book_config(student_kit.load_book_config(ROOT))


@pytest.fixture(scope="session")
def kit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student-kit")
    return student_kit.build(ROOT, folder / "kit", zip_path=folder / "kit.zip", log=lambda m: print(m, file=sys.stderr))


@pytest.fixture(scope="session")
def secrets() -> dict[str, str]:
    return distinctive_secrets(ROOT)


@pytest.fixture(scope="session")
def holdout() -> HoldoutScanner:
    return HoldoutScanner(grading_holdout(ROOT))


def _rel_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in kit_files(folder)}


# -- what the kit holds ------------------------------------------------------------------------


def test_the_kit_holds_what_a_student_needs_and_its_zip_the_same(kit, settings):
    files = _rel_files(kit.folder)
    expected = {"README.md", "requirements.txt", "runtime.txt", "pyproject.toml", ".gitignore"}
    expected |= {f"src/regcourse/{m}.py" for m in STUDENT_MODULES}
    expected |= {assignment_path(a) for a in kit.assignments} | {chapter_path(c) for c in kit.chapters}
    assert files == expected
    assert len(kit.assignments) == 6 and len(kit.chapters) == 8
    with zipfile.ZipFile(kit.zip_path) as archive:
        names = archive.namelist()
        assert {n.split("/", 1)[1] for n in names} == files
        assert {n.split("/", 1)[0] for n in names} == {settings.repo_name}
        for name in names:
            assert archive.read(name) == (kit.folder / name.split("/", 1)[1]).read_bytes()
    assert (kit.folder / "runtime.txt").read_text().strip() == "python-3.11"


def test_requirements_pin_the_tested_versions_and_no_grading_package(kit):
    from importlib import metadata

    pins = dict(line.split("==") for line in (kit.folder / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    for name in ("tensorflow", "keras", "numpy", "mlxtend", "jupyterlab", "ipykernel"):
        assert pins[name] == metadata.version(name), name
    assert all(pins[name] == metadata.version(name) for name in pins)
    assert not {"nbgrader", "dask", "distributed", "regcourse"} & set(pins)  # keras needs rich, ipykernel psutil
    pyproject = (kit.folder / "pyproject.toml").read_text()
    assert "nbgrader" not in pyproject and "[project.scripts]" not in pyproject


def test_every_kit_notebook_starts_with_the_colab_cell_and_is_otherwise_the_course_s(kit):
    for assignment in kit.assignments:
        nb = nbformat.read(kit.folder / assignment_path(assignment), as_version=4)
        released = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
        assert nb.cells[0].metadata["tags"] == [COLAB_CELL_TAG]
        assert [(c.cell_type, c.source, c.metadata) for c in nb.cells[1:]] == [
            (c.cell_type, c.source, c.metadata) for c in released.cells]
    for chapter in kit.chapters:
        nb = nbformat.read(kit.folder / chapter_path(chapter), as_version=4)
        assert nb.cells[0].metadata["tags"] == [COLAB_CELL_TAG]
        code = [c for c in nb.cells[1:] if c.cell_type == "code"]
        assert sum(bool(c.outputs) for c in code) >= len(code) // 2, f"{chapter}: an executed chapter has outputs"
        assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
        assert "{doc}" not in "".join(c.source for c in nb.cells if c.cell_type == "markdown")


def _run_colab_cell(source: str, on_colab: bool, monkeypatch) -> list:
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kwargs: calls.append(args))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "<colab cell>", "exec"), {})
    return calls


def test_the_colab_cell_installs_the_course_package_on_colab_only(kit, settings, monkeypatch):
    source = nbformat.read(kit.folder / assignment_path(kit.assignments[0]), as_version=4).cells[0].source
    assert _run_colab_cell(source, on_colab=False, monkeypatch=monkeypatch) == []
    (args,) = _run_colab_cell(source, on_colab=True, monkeypatch=monkeypatch)
    assert args[1:4] == ["-m", "pip", "install"]
    assert f"regcourse @ git+{settings.repo_url}@{settings.branch}" in args
    assert "--no-deps" in args  # Colab keeps its own TensorFlow: no restart needed


# -- nothing secret ----------------------------------------------------------------------------


def test_the_kit_leaks_nothing(kit, secrets, holdout):
    """No file of the kit holds a line of a hidden test or a solution, anything from ``tests/``,
    a grading module or a holdout digit.

    Which lines count, exactly (``regcourse.student_kit.find_leaks`` says it too): the
    *secret lines* are the lines inside the ``BEGIN/END SOLUTION`` and ``BEGIN/END HIDDEN
    TESTS`` regions of every instructor notebook in ``solutions/`` (the working tree and
    every commit, so the long hidden tests of earlier versions count after they became a
    one-line ``hidden_check(...)``; a solution cell without markers counts whole), and every
    line of every file of ``src/regcourse/grading/`` and of ``tests/`` (working tree and
    HEAD; of a notebook there, e.g. an executed solution, its solution and hidden-test
    regions and its outputs), except ``tests/notebook_results/<chapter>.ipynb``, the
    reviewed outputs of the public chapters. One counts when, stripped, it has at least 12 characters and a letter
    (``)``, ``else:``, ``return x`` and numbers say nothing), is not an ``import`` statement
    (imports of the grading package are checked on their own), and does not also occur in
    what students see anyway: the released exercises, the chapters' sources and reviewed
    outputs, the student modules of ``regcourse``. Every string of every kit notebook
    (sources, outputs, metadata) and every line of every other file is compared. Also no
    nbgrader region marker, no import of ``regcourse.grading``, no package module outside
    ``STUDENT_MODULES``, and no holdout digit stored raw (uint8, float32 or float64; 0-255
    or scaled), also inside zip, npz or gzip files.
    """
    assert len(secrets) > 1000  # the scan has something to look for
    assert any("hidden_check(" in line for line in secrets)  # the new one-line hidden tests
    assert find_leaks(kit.folder, ROOT, secrets=secrets, holdout=holdout) == []


def _committed_hidden_line(secrets) -> str:
    """A line of a hidden test as it was committed (the old multi-line form, when there is one)."""
    log = subprocess.run(["git", "-C", str(ROOT), "log", "--format=%H", "--", "solutions"],
                         capture_output=True, text=True, check=True).stdout.split()
    for commit in log:
        for path in subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", commit, "--", "solutions"],
                                   capture_output=True, text=True, check=True).stdout.split():
            text = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
                                  capture_output=True, text=True, check=True).stdout
            nb = json.loads(text)
            for cell in nb["cells"]:
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                hidden = student_kit._regions(source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
                for line in sorted(hidden, key=len, reverse=True):
                    if line.strip() in secrets and "hidden_check" not in line:
                        return line
    pytest.skip("no committed multi-line hidden test")


def test_the_leak_scan_finds_planted_leaks(kit, secrets, holdout, tmp_path):
    """Each kind of leak, planted in a copy of the kit, is reported (so a clean scan means something)."""
    solution_line = next(line for line in instructor_notebook_secrets(nbformat.read(
        ROOT / "solutions" / "a1_bias_variance" / "a1_bias_variance.ipynb", as_version=4)) if line.strip() in secrets)
    variant = (ROOT / "tests" / "assignment_variants" / "a2_penalties.py").read_text().splitlines()
    variant_line = next(line for line in variant if line.strip() in secrets)
    new_hidden = next(line for line in secrets if line.startswith("hidden_check("))
    old_hidden = _committed_hidden_line(secrets)
    plants = {
        "an old, multi-line hidden test": old_hidden,
        "a one-line hidden test": new_hidden,
        "a solution line": solution_line,
        "a variant from tests/": variant_line,
        "an nbgrader marker": "### BEGIN SOLUTION",
        "an import of the grading package": "from regcourse.grading.judge import hidden_check",
    }
    copy = tmp_path / "kit"
    shutil.copytree(kit.folder, copy)
    chapter = copy / chapter_path(kit.chapters[0])
    for what, line in plants.items():
        target = copy / assignment_path(kit.assignments[0])
        nb = nbformat.read(target, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(f"# {what}\n{line}"))
        nbformat.write(nb, target)
        found = find_leaks(copy, ROOT, secrets=secrets, holdout=holdout)
        assert any(line.strip()[:60] in problem for problem in found) or (
            "marker" in what and any("marker" in p for p in found)) or (
            "grading package" in what and any("grading package" in p for p in found)), what
        nbformat.write(nbformat.read(kit.folder / assignment_path(kit.assignments[0]), as_version=4), target)
    # a secret in an output, not a source
    nb = nbformat.read(chapter, as_version=4)
    last_code = [c for c in nb.cells if c.cell_type == "code"][-1]
    last_code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"  {solution_line.strip()}\n")]
    nbformat.write(nb, chapter)
    assert any("line from" in p for p in find_leaks(copy, ROOT, secrets=secrets, holdout=holdout))
    shutil.copyfile(kit.folder / chapter_path(kit.chapters[0]), chapter)
    # holdout digits, raw and compressed, and a grading module
    digits = grading_holdout(ROOT)
    np.save(copy / "digits.npy", digits[3:5])
    np.savez_compressed(copy / "more.npz", x=np.rint(digits[7] * 255).astype(np.uint8))
    (copy / "src" / "regcourse" / "grading").mkdir()
    shutil.copyfile(ROOT / "src" / "regcourse" / "grading" / "judge.py", copy / "src" / "regcourse" / "grading" / "judge.py")
    found = find_leaks(copy, ROOT, secrets=secrets, holdout=holdout)
    assert any(p.startswith("digits.npy: holds 2 digit") for p in found), found
    assert any(p.startswith("more.npz!x.npy: holds 1 digit") for p in found), found
    assert any(p.startswith("src/regcourse/grading/judge.py: instructors' folder") for p in found), found
    assert any(p.startswith("src/regcourse/grading/judge.py:") and "line from src/regcourse/grading/judge.py" in p
               for p in found), found


# -- a fresh environment made from the kit -----------------------------------------------------


DRIVER = r'''
"""Runs in the kit's environment: an exercise to its first error, then (same kernel) with the solutions."""
import json, sys, nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

def run(nb, km):
    try:
        NotebookClient(nb, km=km, timeout=600).execute()
    except CellExecutionError:
        failed = next(i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", [])))
        output = next(o for o in nb.cells[failed].outputs if o.get("output_type") == "error")
        return {"cell": failed, "grade_id": nb.cells[failed].metadata.get("nbgrader", {}).get("grade_id"),
                "ename": output.ename, "evalue": output.evalue[:300]}
    return None

exercise_path, solution_path, cwd = sys.argv[1:4]
km = KernelManager(kernel_name="kit")
km.start_kernel(cwd=cwd)
try:
    # the exercise first, in the fresh kernel; then the solved notebook from its first cell
    # (it redefines everything), which spares a second start and TensorFlow import
    outcome = {"exercise": run(nbformat.read(exercise_path, as_version=4), km),
               "with_solutions": run(nbformat.read(solution_path, as_version=4), km)}
finally:
    km.shutdown_kernel(now=True)
print(json.dumps(outcome))
'''


@pytest.fixture(scope="session")
def kit_python(kit, tmp_path_factory) -> Path:
    """A Python environment made from the kit's own files; see the test's docstring."""
    venv = tmp_path_factory.mktemp("kit-venv") / "venv"
    python = venv / "bin" / "python"
    if FULL_INSTALL:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", "requirements.txt", "-e", "."],
                       cwd=kit.folder, check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        # The third-party packages of the course's environment, as plain paths: Python does not
        # process the .pth files there, so the course's own (editable) regcourse is not on the path.
        (site / "kit_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(kit.folder)],
                       check=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    # ipykernel writes the spec to a temporary folder and leaves that folder's parent behind: in ours
    subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", str(venv), "--name", "kit"],
                   check=True, capture_output=True, env={**os.environ, "TMPDIR": str(venv.parent)})
    return python


def _with_reference_solutions(exercise, solution):
    """The kit's exercise with each solution cell replaced by the instructor's code, markers removed.

    The ungraded ``experiment`` cell (the last code cell of an assignment: training runs that
    no test reads) is left out, as for the variant submissions of ``tests/test_assignments.py``,
    which runs it in the instructor notebooks.
    """
    from grading_harness import EXPERIMENT_CELL

    reference = {c.metadata["nbgrader"]["grade_id"]: c for c in solution.cells if "nbgrader" in c.metadata}
    nb = nbformat.from_dict(json.loads(json.dumps(exercise)))
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("solution"):
            continue
        if meta["grade_id"] == EXPERIMENT_CELL:
            assert not any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells[index:] if c.cell_type == "code")
            cell.source = "# the experiment is not run here: no test reads it"
            continue
        lines = reference[meta["grade_id"]].source.split("\n")
        cell.source = "\n".join(line for line in lines if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)
    return nb


@pytest.mark.slow
def test_every_exercise_runs_in_an_environment_made_from_the_kit(kit, kit_python, tmp_path):
    """Every exercise of the kit stops at its first unimplemented function, with no other error,
    and with the reference solution cells pasted in (the ungraded experiment left out), every
    visible test passes.

    The environment: a new virtual environment whose ``regcourse`` is the kit's package,
    installed by pip from the kit's own ``pyproject.toml`` (``pip install -e <kit>``), and
    whose kernel is that environment's Python. Proven: the kit's package alone (no
    ``regcourse.grading``, no file of this repository's ``src/``) runs every exercise,
    with every visible test passing; the kit's pins are exactly what ran (checked below).
    Not proven by default: that ``pip install -r requirements.txt`` resolves from the index
    on a clean machine, since installing TensorFlow and the rest takes minutes; the
    third-party packages come from the course's environment, which those pins describe
    exactly. ``REGCOURSE_KIT_FULL_INSTALL=1`` builds the environment as the kit's README
    says instead, from the package index.
    """
    check = subprocess.run([str(kit_python), "-c", (
        "import importlib.util, importlib.metadata as md, json, regcourse, sys\n"
        "pins = dict(l.split('==') for l in open(sys.argv[1]).read().splitlines() if l and not l.startswith('#'))\n"
        "print(json.dumps({'package': regcourse.__file__, 'grading': importlib.util.find_spec('regcourse.grading') is not None,\n"
        "  'mismatched': {n: md.version(n) for n, v in pins.items() if md.version(n) != v}}))"),
        str(kit.folder / "requirements.txt")], capture_output=True, text=True, check=True)
    facts = json.loads(check.stdout)
    assert Path(facts["package"]).is_relative_to(kit.folder / "src"), facts
    assert facts["grading"] is False
    assert facts["mismatched"] == {}

    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)

    def run(assignment):
        exercise = kit.folder / assignment_path(assignment)
        solved = tmp_path / f"{assignment}-solved.ipynb"
        nbformat.write(_with_reference_solutions(
            nbformat.read(exercise, as_version=4),
            nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)), solved)
        env = {"PATH": f"{kit_python.parent}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
               "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONHASHSEED": "0"}
        result = subprocess.run([str(kit_python), str(driver), str(exercise), str(solved), str(exercise.parent)],
                                capture_output=True, text=True, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        return assignment, json.loads(result.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(max_workers=2) as pool:  # two kernels at a time: the reference machine has 2 cores
        results = dict(pool.map(run, kit.assignments))
    for assignment, outcome in results.items():
        first = outcome["exercise"]
        assert first is not None and first["ename"] == "NotImplementedError", (assignment, first)
        assert outcome["with_solutions"] is None, (assignment, outcome["with_solutions"])


# -- the built book's links --------------------------------------------------------------------


def _hrefs(page: Path) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', page.read_text(encoding="utf-8"))]


def _kit_path_of(url: str, settings: LaunchSettings) -> tuple[str, str] | None:
    """(service, path in the student repository) of a launch or file URL; None for other URLs."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    org_repo, branch = settings.org_repo, settings.branch
    if settings.binderhub_url and url.startswith(settings.binderhub_url + "/"):
        assert parsed.path == f"/v2/gh/{org_repo}/{branch}", url
        (urlpath,) = query["urlpath"]
        return "Binder", urlpath.removeprefix(settings.ui_prefix + "/")
    if settings.colab_url and url.startswith(settings.colab_url + "/"):
        prefix = f"/github/{org_repo}/blob/{branch}/"
        assert parsed.path.startswith(prefix), url
        return "Colab", parsed.path[len(prefix):]
    if "git-pull" in parsed.path:
        assert settings.jupyterhub_url and url.startswith(settings.jupyterhub_url + "/"), url
        assert query["repo"] == [settings.repo_url] and query["branch"] == [branch], url
        (urlpath,) = query["urlpath"]
        return "JupyterHub", urlpath.removeprefix(f"{settings.ui_prefix}/{settings.repo_name}/")
    if url.startswith(f"{settings.repo_url}/blob/"):
        assert url.startswith(f"{settings.repo_url}/blob/{branch}/"), url
        return "GitHub", url[len(f"{settings.repo_url}/blob/{branch}/"):]
    return None


def test_every_launch_link_of_the_built_book_opens_a_kit_file(kit, settings):
    if not (HTML / "index.html").is_file():
        pytest.skip("no built book: `make test` builds it first (`make book`)")
    kit_paths = _rel_files(kit.folder)
    opened: dict[str, set[str]] = {}
    for page in sorted(HTML.rglob("*.html")):
        rel = page.relative_to(HTML).as_posix()
        for url in _hrefs(page):
            if "github.com" in url:  # the repository and issues buttons too: the student repository only
                assert url == settings.repo_url or url.startswith(settings.repo_url + "/"), (rel, url)
            assert not re.search(r"(^|/)(solutions|tests|exercises)/", urlparse(url).path), (rel, url)
            target = _kit_path_of(url, settings)
            if target is not None:
                service, path = target
                assert path in kit_paths, (rel, service, url)
                opened.setdefault(rel, set()).add(f"{service}:{path}")
    for chapter in kit.chapters:
        assert {f"Binder:{chapter_path(chapter)}", f"Colab:{chapter_path(chapter)}"} <= opened.get(f"{chapter}.html", set()), chapter
    for assignment in kit.assignments:
        page = f"book/assignments/{assignment}.html"
        path = assignment_path(assignment)
        assert {f"Binder:{path}", f"Colab:{path}", f"GitHub:{path}"} <= opened.get(page, set()), page
    if not settings.jupyterhub_url:
        assert not any(s.startswith("JupyterHub:") for links in opened.values() for s in links)


def test_launch_links_with_a_hub_configured_open_the_file_through_nbgitpuller():
    settings = LaunchSettings.from_book_config({
        "repository": {"url": "https://github.com/org/kit.git", "branch": "spring"},
        "launch_buttons": {"binderhub_url": "https://mybinder.org/", "colab_url": "https://colab.research.google.com",
                           "jupyterhub_url": "https://hub.uni.edu/", "notebook_interface": "jupyterlab"}})
    links = dict(launch_links(settings, "assignments/a1/a1.ipynb"))
    assert links["Binder"] == "https://mybinder.org/v2/gh/org/kit/spring?urlpath=lab%2Ftree%2Fassignments%2Fa1%2Fa1.ipynb"
    assert links["Colab"] == "https://colab.research.google.com/github/org/kit/blob/spring/assignments/a1/a1.ipynb"
    hub = urlparse(links["JupyterHub"])
    assert (hub.netloc, hub.path) == ("hub.uni.edu", "/hub/user-redirect/git-pull")
    assert parse_qs(hub.query) == {"repo": ["https://github.com/org/kit"], "branch": ["spring"],
                                   "urlpath": ["lab/tree/kit/assignments/a1/a1.ipynb"]}
    no_hub = LaunchSettings.from_book_config({"repository": {"url": "https://github.com/org/kit"},
                                              "launch_buttons": {"jupyterhub_url": ""}})
    assert launch_links(no_hub, "x.ipynb") == []
    with pytest.raises(student_kit.KitError):
        LaunchSettings.from_book_config({"repository": {"url": "https://hub.example.edu/x"}})


# -- stock nbgrader feedback -------------------------------------------------------------------


#: Passes the visible test (two weights); in the hidden test (seven weights) it raises, so a
#: stock traceback would quote the hidden test (or the hidden check it calls) line by line.
RAISES_IN_HIDDEN = '''def l1_penalty(w, lam):
    if len(w) > 2:
        raise ValueError("only two weights, please")
    return lam * (abs(w[0]) + abs(w[1]))'''


def _page_text(path: Path) -> str:
    """The feedback page as a reader sees it: tags (and syntax highlighting) removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def _hidden_lines(course: Path) -> set[str]:
    """Every line of the mini assignment's hidden tests, and of the hidden checks they call."""
    nb = nbformat.read(course / "solutions" / "mini" / "mini.ipynb", as_version=4)
    hidden = [line for c in nb.cells for line in student_kit._regions(c.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")]
    released = {line.strip() for c in nbformat.read(course / "exercises" / "mini" / "mini.ipynb", as_version=4).cells
                for line in c.source.split("\n")}
    if any("hidden_check" in line for line in hidden):
        checks = ROOT / "src" / "regcourse" / "grading" / "checks" / "mini.py"
        hidden += [line for line in checks.read_text().splitlines() if student_kit.distinctive(line.strip())]
    return {line.strip() for line in hidden if len(line.strip()) >= 8 and line.strip() not in released}


def test_stock_generate_feedback_hides_hidden_tests(mini_course):
    """Stock ``nbgrader autograde`` and ``generate_feedback``, with the course's ``nbgrader_config.py``:
    each test's result is in the feedback, no line of a hidden test is; without the feedback setting
    of ``nbgrader_config.py`` the same page shows them (the check can fail)."""
    from grading_corpus import ONLY_TWO_WEIGHTS_L1, student_notebook
    from grading_harness import nbgrader

    students = {"fails-hidden": ONLY_TWO_WEIGHTS_L1, "raises-in-hidden": RAISES_IN_HIDDEN}
    for student, l1 in students.items():
        target = mini_course / "submitted" / student / "mini"
        target.mkdir(parents=True)
        nbformat.write(student_notebook(mini_course, l1_penalty=l1), target / "mini.ipynb")
    nbgrader(mini_course, "autograde", "mini")
    nbgrader(mini_course, "generate_feedback", "mini")
    hidden = _hidden_lines(mini_course)
    assert hidden
    for student in students:
        text = _page_text(mini_course / "feedback" / student / "mini" / "mini.html")
        assert not [line for line in hidden if line in text], student
        assert "hidden-probe" not in text
        assert "raised by a hidden test" in text, student  # the hidden test's result, without its source
        assert re.search(r"Score:\s*1\.0\s*/\s*3", text), student  # l2_norm's 1 point, l1's 2 lost
        assert re.search(r"test_l1_penalty.{0,80}?0(\.0)?\s*/\s*2|Points:\s*0(\.0)?\s*/\s*2", text, re.S), student

    config = mini_course / "nbgrader_config.py"
    config.write_text(re.sub(r"c\.GenerateFeedback\.preprocessors = \[.*?\]\n", "", config.read_text(), flags=re.S))
    nbgrader(mini_course, "generate_feedback", "mini", "--force")
    stock = _page_text(mini_course / "feedback" / "raises-in-hidden" / "mini" / "mini.html")
    assert [line for line in hidden if line in stock]


def test_stock_feedback_is_written_as_regcourse_grade_writes_it():
    """``nbgrader_config.py`` names the preprocessors ``regcourse grade`` uses for feedback (but its
    per-run notes), so the two cannot drift apart."""
    from traitlets.utils.importstring import import_item

    from regcourse.grading.course import Course, load_config
    from regcourse.grading.feedback import GraderNotes, feedback_config

    stock = load_config(ROOT)
    ours = feedback_config(Course.open(ROOT), {}, [])
    assert [import_item(name) for name in stock.GenerateFeedback.preprocessors] == [
        cls for cls in ours.GenerateFeedback.preprocessors if cls is not GraderNotes]
    assert stock.HTMLExporter.skip_svg_encoding == ours.HTMLExporter.skip_svg_encoding
