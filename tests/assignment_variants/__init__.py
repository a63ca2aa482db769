"""Alternative submissions, one module per assignment.

Each module defines
  GRADED:  solution cell grade id -> the test cell that grades it
  CORRECT: name -> {solution cell grade id: replacement source}; must get full marks
  WRONG:   name -> ({solution cell grade id: source}, [test cells that must lose points])
Cells not replaced keep the instructor's reference code.
"""
