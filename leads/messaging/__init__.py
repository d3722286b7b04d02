"""Everything that leaves the app: email (one renderer, idempotent delivery), the transactional
outbox, and the signed links that emails carry."""
