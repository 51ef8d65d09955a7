"""Erasure on request (GDPR art. 17): a customer and every trace of it, in one transaction."""
