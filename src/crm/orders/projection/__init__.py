"""What each customer has ordered, kept in the CRM's own database.

A per-order row (the latest state seen of each Order Service order) and a per-customer
figures row derived from it. Both are written only by `service.apply_order_state`, which the
live consumer (events), the sync (the Order Service's list) and the demo data all call.
"""
