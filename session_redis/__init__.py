from .http import post_load
