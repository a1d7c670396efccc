"""The synthetic district and its simulator.

``district``       the district generated from a seed (cells, households, devices, workers,
                   rosters, needs data) and loaded into the database
``simulator``      the runner: the devices in the database send telemetry over MQTT
``clock``          simulated time (catch-up from a past start, then real time)
``devices``        the devices the simulator speaks for
``seeding``        reproducible randomness keyed by seed, device and time
``water_use``      the daily water-use rhythm of a household
``sensors``        street sensors at rest (flood-gauge noise and spikes, cover tilt) and batteries
``incidents``      incident plans, their defaults and how they change readings
``telemetry``      which readings a device sends when, and their MQTT payloads

All but ``district`` and ``simulator`` are pure: no database, no MQTT, no clock reads.

Other rooms use the modules of ``__all__``; the room's others are its own.
"""

__all__ = [
    "clock",
    "district",
    "incidents",
    "simulator",
    "telemetry",
]
