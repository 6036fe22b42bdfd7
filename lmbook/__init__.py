"""lmbook: the small torch package behind *Large Language Models and Dynamic Interaction*.

Each module matches a concept of the book; importing lmbook never trains,
downloads or prints anything.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
