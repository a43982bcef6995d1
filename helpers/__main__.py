"""``python -m helpers doctor``: check the install (see helpers/doctor.py)."""
import sys

from helpers.doctor import main

if sys.argv[1:2] in (["lab"], ["test"]):  # make lab / make test without make (helpers/launch.py)
    from helpers.launch import main as launch

    sys.exit(launch(sys.argv[1:]))
sys.exit(main(sys.argv[1:]))
