"""`/api/v1/queues`: the ACD's queues, read and changed through the provisioning rules."""
