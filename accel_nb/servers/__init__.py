"""Per-server namespaces on the client (``client.ollama``, ``client.llvm``, ``client.opea``).

Their calls are ordinary requests of the engine (kind ``"admin"``, ``"retrieve"``,
``"rerank"``…): they share the queue, retries, breaker and ledger with everything else.
"""
