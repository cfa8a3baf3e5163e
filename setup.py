"""csp-tf: CSP contrastive spatial pre-training as a Keras/TensorFlow/TFX production system.

The pinned, tested dependency set is requirements/lock.txt (installed by `make venv`, which
also handles TFX 1.16's `Requires-Python <3.11` marker; see BUILD.md). The ranges below are
what the code needs; the lock is what CI runs.
"""

from setuptools import find_packages, setup

setup(
    name="csp-tf",
    version="0.1.0",
    description="CSP (Mai et al., ICML 2023) location-encoder pre-training in TensorFlow/Keras/TFX",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.12",
    packages=find_packages(include=["csp_tf", "csp_tf.*", "tfx_pipeline", "tfx_pipeline.*",
                                    "serving", "serving.*", "csp_cli"]),
    package_data={"tfx_pipeline": ["schema/*.pbtxt"], "serving": ["*.config", "deploy/*"],
                  # pre-trained location encoders: .keras, SavedModel, config, card, sources
                  "csp_tf": ["pretrained_models/*/*", "pretrained_models/*/saved_model/*",
                             "pretrained_models/*/saved_model/*/*"]},
    install_requires=[
        "tensorflow>=2.16,<2.17",
        "keras>=3.3,<3.6",
        "apache-beam[gcp]==2.59.0",
        "tfx==1.16.0",
        "tensorflow-serving-api>=2.16,<2.17",
        "numpy>=1.24,<2",
        "pandas>=1.5,<2",
        "pyarrow>=10,<11",
        "PyYAML>=6",
        "grpcio>=1.60",
        "tqdm>=4.60",
        "matplotlib>=3.8,<3.10",
        "global-land-mask==1.0.0",
        "scikit-learn>=1.3",  # the baselines of every experiment table
    ],
    extras_require={
        "gpu": ["tensorflow[and-cuda]>=2.16,<2.17"],
        "kfp": ["tfx[kfp]==1.16.0", "kfp>=2,<2.8"],
        "dev": ["pytest>=8", "pytest-timeout>=2"],
    },
    entry_points={"console_scripts": ["csp-tf=csp_cli:main"]},
)
