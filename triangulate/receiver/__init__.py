"""The webhook and event receiver: verified HTTP deliveries in, durable landing files out.

Pure request checks live in :mod:`.validation`, durable group-committed appends in
:mod:`.landing_writer`, the ASGI app in :mod:`.app` (build it with
``create_app(ReceiverSettings(...))``), and ``triangulate serve`` in :mod:`.cli`.
"""
