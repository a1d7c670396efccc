"""The read models the pages show, each read in one transaction: the wall, a ticket, the worker's
phone, civil affairs' households, the administrator's figures, a water meter's day and the
activity summary of ``cityops demo`` and ``cityops status``.

Other rooms use the modules of ``__all__``; the room's others are its own.
"""

__all__ = [
    "activity",
    "admin",
    "civil",
    "phone",
    "tickets",
    "wall",
]
