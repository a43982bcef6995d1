"""Interactive widgets for studying in JupyterLab (notebooks 02, 03 and 04).

Each widget is a small class: its controls are attributes, ``update()`` redraws from their values,
and ``state`` holds what was last drawn, so a test can move a slider and check the result without a
browser. Build with ``.widget`` (an ipywidgets box) and display it, or just leave the object last in a cell.
"""
from __future__ import annotations

# --- notebook 03: softmax explorer (helpers.losses) ---------------------------------------------

# --- notebook 02: presizing explorer (helpers.augment) ------------------------------------------

# --- notebook 04: one-cycle schedule explorer (helpers.schedule) --------------------------------
