"""courier.v1: generated from protos/courier/v1/*.proto by `make protos`; never edited by hand."""
