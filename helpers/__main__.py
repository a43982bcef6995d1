"""The course's commands: ``python -m helpers doctor|clean|progress|lab|test``.

``doctor`` checks the install and ``clean`` clears the data cache's leftovers (helpers/doctor.py); ``progress
[--reset]`` shows the exercises solved in each notebook (helpers/progress_report.py); ``lab|test`` do what ``make
lab|test`` do (helpers/launch.py).
"""
import sys

if sys.argv[1:2] == ["progress"]:
    # Imported only here: the doctor must run even when torch, which the exercise sets need, is broken.
    from helpers.progress_report import main as progress_main

    sys.exit(progress_main(sys.argv[2:]))

from helpers.doctor import main

if sys.argv[1:2] in (["lab"], ["test"]):  # make lab / make test without make (helpers/launch.py)
    from helpers.launch import main as launch

    sys.exit(launch(sys.argv[1:]))
sys.exit(main(sys.argv[1:]))
