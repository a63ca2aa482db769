from regcourse.environment import apply as apply_course_environment

# Kernels started by the tests, and TensorFlow in the tests' own processes, see the course's
# environment (regcourse.environment), whatever the shell that runs pytest sets.
apply_course_environment()


def pytest_addoption(parser):
    parser.addoption(
        "--regen-results",
        action="store_true",
        help="overwrite the stored notebook regression results with the new execution",
    )


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mini_course_template(tmp_path_factory):
    """A course with the tiny ``mini`` assignment released (tests/grading_corpus): copy it, never change it."""
    from grading_corpus import make_course

    return make_course(tmp_path_factory.mktemp("mini-template") / "course")


@pytest.fixture
def mini_course(mini_course_template, tmp_path):
    """A fresh copy of the released ``mini`` course (gradebook included), for one test."""
    import shutil

    return shutil.copytree(mini_course_template, tmp_path / "course")
