"""Generated protobuf code of the courier.v1 API (`make protos`); shared by gateway/ and inspection/."""
