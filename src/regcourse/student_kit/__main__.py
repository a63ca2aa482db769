"""``python -m regcourse.student_kit``: build the student kit (see the package's docstring)."""

import sys

from regcourse.student_kit import main

sys.exit(main())
