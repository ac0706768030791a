"""placeholder"""
def records(function, fmt_name):
    return {}
