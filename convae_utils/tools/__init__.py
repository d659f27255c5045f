"""The command-line tools beside the lessons: ``python -m convae_utils {train,download,bench,series}``.

They call the library with plain arguments; nothing in the library imports them.
"""
