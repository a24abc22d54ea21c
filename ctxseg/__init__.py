__version__ = "0.1.0"

# The two-line API (nbs/18_api): ctxseg.build_model(...), ctxseg.train(...), ctxseg.evaluate(...)
from .api import build_model, train, evaluate
