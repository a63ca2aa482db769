"""One module per assignment: the hidden tests as probes and judges (see ``regcourse.grading.judge``).

Each module defines ``CHECKS``: test cell grade id -> ``Check(probe, judge, contract)``.
A probe calls the student's objects and records what they return; a judge
compares that record with the reference record. Every tolerance a judge uses
is a named constant with its reason; every check names the lines of the
notebook's contract that it grades (``tests/test_judge.py`` finds each one in
the notebook). ``mini`` is the tiny NumPy assignment of the grading tests.
"""
