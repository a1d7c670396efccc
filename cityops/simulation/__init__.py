"""Building blocks of the district simulator (the runner is :mod:`cityops.simulation.simulator`).

``clock``          simulated time (catch-up from a past start, then real time)
``seeding``        reproducible randomness keyed by seed, device and time
``water_use``      the daily water-use rhythm of a household
``sensors``        street sensors at rest (flood-gauge noise and spikes, cover tilt) and batteries
``incidents``      incident plans, their defaults and how they change readings
``telemetry``      which readings a device sends when, and their MQTT payloads

Everything here is pure: no database, no MQTT, no clock reads. Time is always passed in.
"""
