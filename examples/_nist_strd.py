"""Two nonlinear regression problems of NIST's Statistical Reference Datasets (StRD).

Source: NIST/ITL StRD, nonlinear regression, https://www.itl.nist.gov/div898/strd/nls/
(``data/Thurber.dat`` and ``data/BoxBOD.dat``; public domain, U.S. Government work). The
numbers are NIST's as printed in those files: the data, the two starting points, the
certified parameter values and the certified residual sum of squares. Both problems are
of NIST's "higher level of difficulty". The model lines are NIST's, with ``b1..bn`` as
``b[0]..b[n-1]``.
"""

from __future__ import annotations

from typing import NamedTuple


class Problem(NamedTuple):
    name: str
    description: str
    model: str  # NIST's model line
    x: list[float]
    y: list[float]
    start1: list[float]
    start2: list[float]
    certified: list[float]
    certified_rss: float


THURBER = Problem(
    name="Thurber",
    description="semiconductor electron mobility (y) against the log of the density (x)",
    model="y = (b1 + b2 x + b3 x^2 + b4 x^3) / (1 + b5 x + b6 x^2 + b7 x^3)",
    x=[-3.067, -2.981, -2.921, -2.912, -2.84, -2.797, -2.702, -2.699, -2.633, -2.481,
       -2.363, -2.322, -1.501, -1.46, -1.274, -1.212, -1.1, -1.046, -0.915, -0.714,
       -0.566, -0.545, -0.4, -0.309, -0.109, -0.103, 0.01, 0.119, 0.377, 0.79, 0.963,
       1.006, 1.115, 1.572, 1.841, 2.047, 2.2],
    y=[80.574, 84.248, 87.264, 87.195, 89.076, 89.608, 89.868, 90.101, 92.405, 95.854,
       100.696, 101.06, 401.672, 390.724, 567.534, 635.316, 733.054, 759.087, 894.206,
       990.785, 1090.109, 1080.914, 1122.643, 1178.351, 1260.531, 1273.514, 1288.339,
       1327.543, 1353.863, 1414.509, 1425.208, 1421.384, 1442.962, 1464.35, 1468.705,
       1447.894, 1457.628],
    start1=[1000.0, 1000.0, 400.0, 40.0, 0.7, 0.3, 0.03],
    start2=[1300.0, 1500.0, 500.0, 75.0, 1.0, 0.4, 0.05],
    certified=[1288.13968, 1491.0792535, 583.23836877, 75.416644291, 0.96629502864,
               0.39797285797, 0.049727297349],
    certified_rss=5642.7082397,
)  # fmt: skip

BOX_BOD = Problem(
    name="BoxBOD",
    description="biochemical oxygen demand (y, mg/l) against incubation time (x, days)",
    model="y = b1 (1 - exp(-b2 x))",
    x=[1.0, 2.0, 3.0, 5.0, 7.0, 10.0],
    y=[109.0, 149.0, 149.0, 191.0, 213.0, 224.0],
    start1=[1.0, 1.0],
    start2=[100.0, 0.75],
    certified=[213.80940889, 0.54723748542],
    certified_rss=1168.0088766,
)
