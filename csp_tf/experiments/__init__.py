"""The paper's evaluation protocol and its maps (``csp-tf experiment``, ``csp-tf map``).

* ``methods``  — the compared methods (Img. Only, Sup. Only with wrap / grid / theory /
  sphereM+, MSE, CSP-NCE, CSP-MC-BLD and variants) as config recipes.
* ``protocol`` — methods × label ratios × seeds, pre-training shared across ratios, resumable.
* ``results``  — ``results.csv`` rows and the mean ± std markdown tables.
* ``curves``   — learning-curve plots of runs made with ``--eval-every``.
* ``analysis`` — top-1 split by how many labels each class had (``python -m``).
* ``maps``     — PNG maps of P(y|loc) against the generated world's true ranges, and the
  location embedding as RGB.
* ``cli``      — the two sub-commands.

Importing this package does not import TensorFlow.
"""
