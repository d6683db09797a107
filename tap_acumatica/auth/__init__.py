"""Authentication: cookie sessions and OAuth 2.0 grants, with a durable token store.

Entry point: ``auth.factory.build_authenticator``. Layout in docs/architecture.md.
"""
