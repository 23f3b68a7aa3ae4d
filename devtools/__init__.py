"""Developer and test support: the App Store Connect stand-in, the demo, runner file parsing.

Not part of the shipped package: `pip install .` installs only src/asc_token.
"""
