"""``python -m helpers doctor``: check the install (see helpers/doctor.py)."""
import sys

from helpers.doctor import main

sys.exit(main(sys.argv[1:]))
