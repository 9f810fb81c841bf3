"""How plugins plug in: the hook specifications, the plugin manager that loads entry
points into typed registries, and the contract each registered entry is checked against.

Import from the modules: ``hookspecs`` (``Register``, the hooks), ``manager``
(``get_plugins``, ``KINDS``, ``call_each``), ``registry`` (``Registry``), ``contract``
(``CHECKS``) and ``weight_sources`` (``source_for``). A plugin itself needs only
``sbirbench.hookimpl`` and :mod:`sbirbench.interfaces`. Nothing here imports the
pipeline, the command line or the runtime.
"""
