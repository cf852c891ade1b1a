"""Bindings of blocking SDKs that some APIs are spoken through (boto3 for S3).

A binding makes the SDK client of one lane (``connect``) and runs one ``SdkCall`` on it
(``invoke``), with the SDK's own retries off and its exceptions turned into the taxonomy.
The engine runs both in a thread pool (``accel_nb.engine.threads``); a binding is imported
only when its adapter is first used, so its SDK never loads with ``accel_nb``.
"""
