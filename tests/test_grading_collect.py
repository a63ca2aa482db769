"""Collecting submissions: nbgrader's layout, Canvas and Moodle exports, and what must be refused.

No notebook is executed here: each test lays files out in a copy of the
released ``mini`` course and checks the tree nbgrader will grade, and that
every file is either laid out or reported.
"""

from __future__ import annotations

import zipfile

import nbformat
import pytest

from grading_corpus import ASSIGNMENT, NOTEBOOK, canvas_export, moodle_export, student_notebook
from regcourse.grading.collect import collect, student_id_from_name
from regcourse.grading.course import CourseError
from regcourse.grading.model import SubmissionRef


def laid_out(course):
    """student -> sorted file names under submitted/<student>/mini/."""
    root = course / "submitted"
    return {
        d.name: sorted(p.name for p in (d / ASSIGNMENT).iterdir())
        for d in sorted(root.iterdir())
        if (d / ASSIGNMENT).is_dir()
    }


def problem_about(problems, *words):
    found = [p for p in problems if all(w in p for w in words)]
    assert found, f"no problem mentions {words}: {problems}"
    return found[0]


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_canvas_export_is_laid_out_by_user_id_and_latest_submission(mini_course, tmp_path, as_zip):
    export = canvas_export(mini_course)
    source = export.write_zip(tmp_path / "submissions.zip") if as_zip else export.write_folder(tmp_path / "export")
    result = collect(mini_course, ASSIGNMENT, source)

    expected = sorted({f.student for f in export.files if f.student})
    assert [r.student for r in result.refs] == expected
    assert all(r == SubmissionRef(r.student, ASSIGNMENT) for r in result.refs)
    assert laid_out(mini_course) == {s: [NOTEBOOK] for s in expected}
    assert result.late == ["1002"]
    # the resubmission (id 5010, "mini-1.ipynb") wins over 5003; the older one is reported by name
    graded = nbformat.read(mini_course / "submitted" / "1003" / ASSIGNMENT / NOTEBOOK, 4)
    assert graded == student_notebook(mini_course)
    assert "leeann_1003_5003_mini.ipynb" in problem_about(result.problems, "5003", "superseded")
    problem_about(result.problems, "leeann_1003_5010_notes.pdf", "not a notebook")
    problem_about(result.problems, "Untitled.ipynb", "graded", "as mini.ipynb")
    problem_about(result.problems, "mini-with-no-student.ipynb", "not understood", "Canvas", "Moodle")
    assert result.names["1001"] == "doejane"


def test_moodle_export_flat_and_in_folders(mini_course, tmp_path):
    export = moodle_export(mini_course)
    result = collect(mini_course, ASSIGNMENT, export.write_zip(tmp_path / "moodle.zip"))
    expected = sorted({f.student for f in export.files if f.student})
    assert [r.student for r in result.refs] == expected == ["elodie-martin", "jane-doe", "omar-haddad"]
    assert laid_out(mini_course) == {s: [NOTEBOOK] for s in expected}
    problem_about(result.problems, "data.csv", "not a notebook")
    problem_about(result.problems, "onlinetext", "not a notebook")
    assert result.names["elodie-martin"] == "Élodie Martin"


def test_names_are_kept_in_the_gradebook_for_the_export(mini_course, tmp_path):
    collect(mini_course, ASSIGNMENT, moodle_export(mini_course).write_folder(tmp_path / "m"))
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{mini_course / 'gradebook.db'}") as gb:
        student = gb.find_student("jane-doe")
        assert (student.first_name, student.last_name) == ("Jane", "Doe")


def test_same_moodle_name_twice_becomes_two_students(mini_course, tmp_path):
    nb = nbformat.writes(student_notebook(mini_course)).encode()
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "Sam Lee_401_assignsubmission_file_mini.ipynb").write_bytes(nb)
    (folder / "Sam Lee_402_assignsubmission_file_mini.ipynb").write_bytes(nb)
    result = collect(mini_course, ASSIGNMENT, folder)
    assert [r.student for r in result.refs] == ["sam-lee-401", "sam-lee-402"]
    problem_about(result.problems, "Sam Lee", "share this name")


def test_zip_slip_absolute_paths_and_links_are_rejected(mini_course, tmp_path):
    nb = nbformat.writes(student_notebook(mini_course)).encode()
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("doejane_1001_5001_mini.ipynb", nb)
        zf.writestr(zipfile.ZipInfo("../../escaped_1_2_mini.ipynb"), nb)
        zf.writestr(zipfile.ZipInfo("/tmp/absolute_1_2_mini.ipynb"), nb)
        link = zipfile.ZipInfo("linky_7_8_mini.ipynb")
        link.external_attr = (0o120777 << 16)  # a symbolic link to /etc/passwd
        zf.writestr(link, "/etc/passwd")
    result = collect(mini_course, ASSIGNMENT, archive)
    assert [r.student for r in result.refs] == ["1001"]
    problem_about(result.problems, "../../escaped", "rejected", "..")
    problem_about(result.problems, "/tmp/absolute", "rejected", "absolute")
    problem_about(result.problems, "linky", "rejected", "link")
    assert not (tmp_path / "escaped_1_2_mini.ipynb").exists() and not (mini_course.parent / "escaped_1_2_mini.ipynb").exists()
    assert not (tmp_path.parent / "escaped_1_2_mini.ipynb").exists()


def test_nbgrader_layout_in_place_reports_broken_and_renamed_notebooks(mini_course):
    submitted = mini_course / "submitted"
    good = student_notebook(mini_course)
    for student, name in [("ok", NOTEBOOK), ("renamed", "mini (1).ipynb"), ("broken", NOTEBOOK), ("empty", None)]:
        (submitted / student / ASSIGNMENT).mkdir(parents=True)
        if name:
            nbformat.write(good, submitted / student / ASSIGNMENT / name)
    (submitted / "broken" / ASSIGNMENT / NOTEBOOK).write_text('{"cells": [')
    (submitted / "ok" / ASSIGNMENT / "scratch.csv").write_text("1,2\n")
    (submitted / "ok" / ASSIGNMENT / "timestamp.txt").write_text("2025-01-01 10:00:00 UTC")
    (submitted / "other-assignment-only" / "a2_penalties").mkdir(parents=True)

    result = collect(mini_course, ASSIGNMENT)
    # every student folder of the assignment is graded, even one that will score zero
    assert [r.student for r in result.refs] == ["broken", "empty", "ok", "renamed"]
    problem_about(result.problems, "broken", "broken JSON")
    problem_about(result.problems, "empty", "no mini.ipynb", "zero")
    problem_about(result.problems, "renamed", "mini (1).ipynb", "as mini.ipynb")
    problem_about(result.problems, "ok", "extra files", "scratch.csv")
    assert not any("timestamp.txt" in p for p in result.problems)
    assert (submitted / "renamed" / ASSIGNMENT / NOTEBOOK).exists()


def test_a_folder_in_nbgrader_layout_is_copied_with_its_timestamp(mini_course, tmp_path):
    folder = tmp_path / "elsewhere" / "alice" / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(student_notebook(mini_course), folder / NOTEBOOK)
    (folder / "timestamp.txt").write_text("2025-01-01 10:00:00 UTC")
    result = collect(mini_course, ASSIGNMENT, tmp_path / "elsewhere")
    assert [r.student for r in result.refs] == ["alice"]
    assert (mini_course / "submitted" / "alice" / ASSIGNMENT / "timestamp.txt").read_text().startswith("2025-01-01")


def test_student_ids_from_names_are_stable_ascii():
    assert student_id_from_name("Élodie  Martin-Roy") == "elodie-martin-roy"
    assert student_id_from_name("Ana María O'Neil") == "ana-maria-o-neil"


@pytest.mark.parametrize(
    "assignment, words",
    [("nope", ["unknown assignment", "nope", "mini"]), ],
)
def test_unknown_assignment_is_an_error_for_people(mini_course, assignment, words):
    with pytest.raises(CourseError) as error:
        collect(mini_course, assignment)
    assert all(w in str(error.value) for w in words)


def test_assignment_not_released_says_to_generate_it(mini_course):
    (mini_course / "solutions" / "later").mkdir()
    nbformat.write(student_notebook(mini_course), mini_course / "solutions" / "later" / "later.ipynb")
    with pytest.raises(CourseError, match="nbgrader generate_assignment later"):
        collect(mini_course, "later")


def test_not_a_course_folder(tmp_path):
    with pytest.raises(CourseError, match="nbgrader_config.py"):
        collect(tmp_path, ASSIGNMENT)


def test_unreadable_source(mini_course, tmp_path):
    with pytest.raises(CourseError, match="no such file"):
        collect(mini_course, ASSIGNMENT, tmp_path / "missing.zip")
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(CourseError, match="fake.zip: is not a zip archive"):
        collect(mini_course, ASSIGNMENT, tmp_path / "fake.zip")
    (tmp_path / "grades.csv").write_text("student,score\n")
    with pytest.raises(CourseError, match="grades.csv: expected a folder or a .zip file"):
        collect(mini_course, ASSIGNMENT, tmp_path / "grades.csv")


def test_an_export_grades_its_own_students_only(mini_course, tmp_path):
    nbformat.write(student_notebook(mini_course), _folder(mini_course, "from-an-earlier-export") / NOTEBOOK)
    result = collect(mini_course, ASSIGNMENT, moodle_export(mini_course).write_folder(tmp_path / "m"))
    assert "from-an-earlier-export" not in [r.student for r in result.refs]
    assert "from-an-earlier-export" in [r.student for r in collect(mini_course, ASSIGNMENT).refs]


def test_a_roster_name_in_the_gradebook_is_kept(mini_course, tmp_path):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{mini_course / 'gradebook.db'}") as gb:
        gb.update_or_create_student("1001", first_name="Jane", last_name="Doe")
    collect(mini_course, ASSIGNMENT, canvas_export(mini_course).write_folder(tmp_path / "c"))
    with Gradebook(f"sqlite:///{mini_course / 'gradebook.db'}") as gb:
        assert (gb.find_student("1001").first_name, gb.find_student("1001").last_name) == ("Jane", "Doe")
        assert gb.find_student("1002").last_name == "smithjohn"


def _folder(course, student):
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    return folder


def test_links_in_an_export_folder_are_reported_not_followed(mini_course, tmp_path):
    folder = moodle_export(mini_course).write_folder(tmp_path / "m")
    (folder / "Eve Evil_399_assignsubmission_file_mini.ipynb").symlink_to(mini_course / "solutions" / ASSIGNMENT / NOTEBOOK)
    result = collect(mini_course, ASSIGNMENT, folder)
    assert "eve-evil" not in [r.student for r in result.refs]
    problem_about(result.problems, "Eve Evil", "symbolic link", "not followed")
