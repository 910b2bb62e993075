"""The exact grid's column at the largest MOS, where zero-std images (floored) weigh: the image log weights are
formed centred, -(Q - y)²/(2s²), as the definition writes them. The expanded c0 + c1·Q + c2·Q² they replaced cancels
terms of ~u²/s² (1e12 at the floor) and put that column's coefficients ~1e-8 off the definition on SPAQ."""
import numpy as np

from gmc_nb.gmc.correlation import gmc_point, METHODS
from gmc_nb.gmc.inputs import gmc_inputs
from gmc_nb.gmc.points import gmc_grid


def test_grid_zero_std_column_matches_the_definition():
    rng = np.random.default_rng(4)
    mos = rng.uniform(0, 100, 400); mos[:2] = 100.; mos[2:4] = 0.
    inp = gmc_inputs(mos, (mos + rng.normal(0, 15, 400))[:, None])       # estimated std: 0 at both ends, floored
    Q = np.array([0., 50., 100.]); D = np.array([0., 30., 60.])
    g = gmc_grid(inp, Qs=Q, Ds=D)
    for m in METHODS:
        for c in range(3):
            for r in range(3):
                assert abs(g.values['model0', m][r, c] - gmc_point(inp, Q[c], D[r], 0, m)) < 1e-12, (m, c, r)
