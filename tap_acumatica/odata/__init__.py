"""The OData dialect: DAC tables (``dac_<DAC>``), Generic Inquiries (``gi_<GI>``), deletions.

``service`` finds the instance's GI and DAC services and reads ``$metadata`` streamed
(``metadata``); ``catalog`` builds the streams from the settings or ``--catalog`` (``entry``:
what a catalog entry carries) and attaches deletion feeds (``deletions``, ``registry``) to DAC
and REST streams; ``dac`` and ``gi`` read rows, typed by ``values``. docs/acumatica-api.md §8,
§10; layout: docs/architecture.md.
"""
