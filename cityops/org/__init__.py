"""The district's organisation in space: the grid cells and their hierarchy (district, streets,
responsibility grids, communities) and distances on the Earth.

Other rooms use the modules of ``__all__``; the room's others are its own.
"""

__all__ = [
    "geo",
    "grids",
]
