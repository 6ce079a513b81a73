"""The scanner side: device protocols, OpenCV vision, and a store-and-forward client of the gateway.

It shares the generated protobuf package (courier.v1) with gateway/, and nothing else.
"""
