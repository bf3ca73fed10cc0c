"""The demo: a synthetic one-stop desk, run through the real pipeline, summed up for a newcomer."""
