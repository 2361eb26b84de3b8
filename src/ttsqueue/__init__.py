"""tts-queue: spoken messages delivered by phone."""

__version__ = "0.1.0"
