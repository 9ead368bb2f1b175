"""headshot-lab: AI professional headshots that measure their own bias.

Heavy libraries (torch, diffusers, gradio, dlib, mediapipe) are imported lazily inside the
functions that need them, so ``import headshot_lab`` and the CLI stay fast.
"""

__version__ = "0.1.0"
