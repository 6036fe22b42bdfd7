"""lmbook: the small torch package behind *Large Language Models and Dynamic Interaction*.

Each module matches a concept of the book; importing lmbook never trains,
downloads or prints anything.
"""

__version__ = "0.1.0"
