"""The live dashboard (SPEC §8): its own process, pushing the state of the system to the page."""
