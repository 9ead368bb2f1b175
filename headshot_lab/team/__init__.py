"""Teams: an organisation's roster through one versioned style guide (``headshot-lab team ...``).

Modules: :mod:`~headshot_lab.team.layout` (the output folder contract), and the roster, guide, run, report,
review and export modules built on it.
"""
