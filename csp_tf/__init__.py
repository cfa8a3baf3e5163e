"""csp-tf: CSP (Mai et al., ICML 2023) contrastive spatial pre-training in TensorFlow/Keras.

Submodules are imported lazily by their users; importing ``csp_tf`` itself stays cheap
(no TensorFlow import) so the CLI's ``--help`` is instant.
"""

__version__ = "0.1.0"
