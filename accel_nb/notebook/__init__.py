"""The notebook faces of accel_nb: the ``%%accel`` / ``%accel`` magics and their rendering.

Nothing here is imported by ``import accel_nb``; ``%load_ext accel_nb`` imports only
``accel_nb.notebook.magics``, which defers the engine (aiohttp, tenacity) to first use.
"""
