"""The flood season: key sites, the pre-season inspections and flood events (what a flood did,
gauge by gauge and case by case).

Other rooms use the modules of ``__all__``; the room's others are its own.
"""

__all__ = [
    "events",
    "key_sites",
    "season",
]
