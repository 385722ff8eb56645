from .rmsprop_tf import RMSpropTF  # noqa: F401
