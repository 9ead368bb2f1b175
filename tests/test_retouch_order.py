"""A person's retouch does not depend on who was retouched before in the same process.

GrabCut seeds its colour models with k-means on OpenCV's per-thread RNG, which every call advances; unseeded, the
same photo got another matte after another photo (max pixel difference 120–181 on real portraits), so a team run
on Ray (other people per worker) wrote other files than the local run. Known value: the matte of a photo is the
same before and after matting another photo; null: two different photos still get different mattes.
"""

from __future__ import annotations

import numpy as np

from headshot_lab.faces.mesh import selfie_mask
from headshot_lab.io import load_rgb
from headshot_lab.retouch import grabcut_mask


def test_the_matte_does_not_depend_on_the_photo_before(real_photos):
    first, other = (load_rgb(real_photos[name], min_side=0) for name in ("obama", "biden"))
    coarse_first, coarse_other = selfie_mask(first), selfie_mask(other)
    before = grabcut_mask(first, coarse_first)
    between = grabcut_mask(other, coarse_other)
    after = grabcut_mask(first, coarse_first)
    assert np.array_equal(before, after)
    assert before.shape != between.shape or not np.array_equal(before, between)
