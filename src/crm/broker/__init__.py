"""RabbitMQ connections for every feature that talks to the broker (order events in, CRM events out).

`supervise` keeps one connection alive for a long-running job: it connects, lets the job set up
its channels, waits until the connection or one of its channels is lost, and starts over with
exponential back-off (with jitter, capped) for as long as it runs. A broker that is down never
stops the service: the job just waits for it.
"""

from crm.broker.connection import Backoff, Session, supervise

__all__ = ["Backoff", "Session", "supervise"]
