"""At import, crashes the process that imports it."""

import ctypes

ctypes.string_at(0)
