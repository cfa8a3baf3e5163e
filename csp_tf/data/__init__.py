"""Data for csp-tf: Beam ingest (with a dead letter), a generated world, and a tf.data reader.

Modules, one job each (docs/data.md):

* ``schema``     tf.Example encode / parse specs of the csp-tf schema (``csp_tf.features``).
* ``validation`` per-row checks of a manifest row, each failure a (field, reason).
* ``regions``    coarse continent-like lon/lat boxes for the ``region`` feature.
* ``splits``     stable hash splits, class ranks and the label-ratio rule.
* ``backbone``   frozen image backbone (keras.applications or a ``.keras`` file) as a Beam DoFn.
* ``ingest``     the Beam pipeline: manifests -> sharded gzip TFRecords + dead letter + summary.
* ``world``      the generated world (look-alike species, land ranges, observer bias).
* ``reader``     tf.data input pipelines and in-memory arrays from a data root.
* ``cli``        ``csp-tf generate`` and ``csp-tf ingest`` sub-commands.

Importing this package is cheap: TensorFlow and Beam load only with the modules that need them.
"""

from csp_tf.data.errors import DataError

__all__ = ["DataError"]
