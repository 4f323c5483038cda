"""beets-mcbr core: content-based music analysis and recommendation.

This package never imports beets, confuse or mediafile.
"""

__version__ = "0.1.0"
