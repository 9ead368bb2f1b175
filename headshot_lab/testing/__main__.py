"""``python -m headshot_lab.testing``: cache the real test photos and print their paths."""

from headshot_lab.testing.photos import main

main()
