"""The platform event stream delivered to webhooks (docs/server.md, "Event stream").

``envelope`` (pure) turns an event of the log into a CloudEvents 1.0 structured JSON
request; ``signing`` (pure) signs and verifies it the Standard Webhooks way;
``delivery`` is the I/O edge: claim a webhook, send the events after its cursor in id
order, move the cursor after each 2xx, back off on failure.
"""
