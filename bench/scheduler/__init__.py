"""The scheduler benchmark: dts's beat against django-celery-beat's; `python -m bench.scheduler`.

`__main__` reads the options and sets Django up, `runner` plans and runs the trials (`trial`), on
each scheduler's adapter (`peers`), counts what arrived (`stats`) and writes the report (`report`).
"""
