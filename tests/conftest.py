"""Suite-wide settings: hypothesis draws the same examples on every run (derandomize), with no
example database, so two runs test the same cases and a failure reproduces."""
from hypothesis import settings

settings.register_profile("mpq-deterministic", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile("mpq-deterministic")
