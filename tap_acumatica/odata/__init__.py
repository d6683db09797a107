"""The OData dialect (DAC tables, Generic Inquiries): not built yet; see docs/architecture.md."""
