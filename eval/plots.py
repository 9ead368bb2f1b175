"""Moved to :mod:`headshot_lab.audit.plots` (the audit's plots live with the audit); kept for old imports."""

from headshot_lab.audit.plots import *  # noqa: F403
from headshot_lab.audit.plots import write_plots  # noqa: F401
