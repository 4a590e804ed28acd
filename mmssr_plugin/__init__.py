"""mmSSR data selection for LLaMA-Factory.

Importing this package is cheap: it never imports torch or transformers.
"""

__version__ = "0.1.0"
