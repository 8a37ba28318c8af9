"""The de-identification evaluation set: synthetic files that plant identifying values where
real hospital files carry them (generate.py), and a scorer in the MIDI-B challenge's
categories (score.py). No patient data: every value is invented."""
