"""The evidence log's pure parts: the Merkle tree, signed checkpoints, canonical records, EPCIS, bundles."""
