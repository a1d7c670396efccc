"""What the sensors say: the readings store ingest writes to, streaming detection, alerts and
their lifecycle, device health, hourly rollups and retention, water meters' history, cameras near
a place, and households marked away (no water alerts meanwhile). A new alert is handed to an
opener the composition root wires in (the alert→case policy of ``cityops.cases``).

Other rooms use the modules of ``__all__``; the room's others are its own.
"""

__all__ = [
    "alerts",
    "away",
    "cameras",
    "detection",
    "device_health",
    "messages",
    "readings",
    "retention",
    "store",
    "water_history",
]
