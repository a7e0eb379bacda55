from . import cli
from .http import post_load
