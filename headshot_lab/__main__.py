import sys

from headshot_lab.cli import main

sys.exit(main())
