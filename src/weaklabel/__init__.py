"""weaklabel: labeled image data sets by weak supervision from post captions."""

__version__ = "0.1.0"
