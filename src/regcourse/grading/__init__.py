"""Batch grading on top of nbgrader's own API: parallel, observable, hostile-input safe.

Stock ``nbgrader autograde`` grades one submission at a time, prints no
progress, lets one dead kernel abort a run and has no sandbox. This package
adds those around nbgrader (it never re-implements grading): ``collect`` lays
submissions out in nbgrader's tree, ``engine`` grades each one in a limited,
isolated subprocess of stock nbgrader, locally in parallel or on a Dask
cluster, and ``report`` writes the summary, ``grades.csv``, feedback and plots.
"""
