"""shoplens: an analytics warehouse for e-commerce user behaviour."""

__version__ = "0.1.0"
