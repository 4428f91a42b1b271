"""The application layer: what a user can do, called by every interface.

The CLI, the HTTP API (through ``app.service``), ``pixdex serve`` and the Lambda handlers
translate their input into calls on these modules and nothing else; only this layer (and
below it ``storage``) knows how an operation is carried out. Kept empty so that importing
one use case never loads the others (a Lambda handler loads ``app.bucket_ingest`` alone).
"""
