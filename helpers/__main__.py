"""``python -m helpers doctor``: check the install; ``python -m helpers clean``: clear leftovers (see helpers/doctor.py)."""
import sys

from helpers.doctor import main

sys.exit(main(sys.argv[1:]))
