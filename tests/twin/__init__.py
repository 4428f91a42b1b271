"""A Lambda-shaped twin of the AWS stack (see :mod:`tests.twin.stack`)."""
